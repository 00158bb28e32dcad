"""Connections: list and read (the public view only; never a secret)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from authpipe_server.api.deps import ProjectDep, SessionDep
from authpipe_server.api.errors import ApiError, responses
from authpipe_server.api.params import ID_PATTERN, PROVIDER_PATTERN, ConnectionIdPath, Cursor, Limit
from authpipe_server.connections.views import connection_view
from authpipe_server.store.models import Connection

router = APIRouter(prefix="/v1", tags=["connections"])

Status = Literal["active", "error", "revoked"]


def not_found(connection_id: str) -> ApiError:
    return ApiError(404, "connection_not_found", f"no connection {connection_id} in this project")


@router.get("/connections", summary="List connections, newest first", responses=responses(400, 401))
async def list_connections(
    project_id: ProjectDep,
    session: SessionDep,
    tenant_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    user_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    provider: Annotated[str | None, Query(pattern=PROVIDER_PATTERN)] = None,
    status: Status | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    query = select(Connection).where(Connection.project_id == project_id)
    for column, value in (
        (Connection.tenant_id, tenant_id),
        (Connection.user_id, user_id),
        (Connection.provider, provider),
        (Connection.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    if cursor:
        query = query.where(Connection.id < cursor)
    rows = (await session.scalars(query.order_by(Connection.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return {
        "connections": [connection_view(c) for c in page],
        "next_cursor": page[-1].id if len(rows) > limit else None,
    }


@router.get("/connections/{connection_id}", summary="One connection", responses=responses(400, 401, 404))
async def get_connection(connection_id: ConnectionIdPath, project_id: ProjectDep, session: SessionDep) -> dict[str, Any]:
    connection = await session.get(Connection, connection_id)
    if connection is None or connection.project_id != project_id:
        raise not_found(connection_id)
    return connection_view(connection)
