"""Request-scoped dependencies: the runtime, a database session, the authenticated project."""

from __future__ import annotations

from typing import Annotated, AsyncIterator

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.sessions() as session:
        yield session


async def get_project_id(request: Request) -> str:
    project_id: str = request.scope["state"]["project_id"]
    return project_id


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ProjectDep = Annotated[str, Depends(get_project_id)]
