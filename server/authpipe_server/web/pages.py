"""The landing page at `/`, the favicon and the stylesheet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection, Project
from authpipe_server.web.render import HERE, render

router = APIRouter(include_in_schema=False)
static = StaticFiles(directory=HERE / "static")
SANDBOX_CONNECTIONS_SHOWN = 20


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    sandbox = request.app.state.sandbox
    connections = await sandbox_connections(runtime) if sandbox else []
    return render(request, "landing.html", sandbox=sandbox, public_url=runtime.settings.public_url, connections=connections)


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """Browsers ask for it on every page they didn't render themselves (JSON, /docs)."""
    return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


async def sandbox_connections(runtime: Runtime) -> list[dict[str, Any]]:
    """Project `default`'s newest connections, for the sandbox's start page."""
    from authpipe_server.sandbox import DEFAULT_PROJECT

    async with runtime.db.sessions() as session:
        rows = (
            await session.scalars(
                select(Connection)
                .join(Project, Project.id == Connection.project_id)
                .where(Project.name == DEFAULT_PROJECT)
                .order_by(Connection.id.desc())
                .limit(SANDBOX_CONNECTIONS_SHOWN)
            )
        ).all()
    return [{"id": c.id, "provider": c.provider, "account": c.account_name or c.account_id, "status": c.status} for c in rows]
