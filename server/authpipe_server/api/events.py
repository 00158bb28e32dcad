"""The event log: `GET /v1/events`, newest first, the same events the webhooks carry (and a few
more, such as `connection.refreshed`, that are only logged)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from authpipe_server.api.deps import ProjectDep, SessionDep
from authpipe_server.api.errors import responses
from authpipe_server.api.params import Limit
from authpipe_server.connections.views import iso
from authpipe_server.store.models import Event

router = APIRouter(prefix="/v1", tags=["events"])

EVENT_ID_PATTERN = r"^evt_[0-9A-Z]{26}$"
CONNECTION_ID_PATTERN = r"^conn_[0-9A-Z]{26}$"
TYPE_PATTERN = r"^[a-z][a-z_]{0,30}\.[a-z][a-z_]{0,30}$"


def event_view(event: Event) -> dict[str, Any]:
    """`data` is the webhook body's `data` ({"connection": {…}}): never a secret."""
    return {
        "id": event.id,
        "type": event.type,
        "created_at": iso(event.created_at),
        "connection_id": event.connection_id,
        "data": (event.data or {}).get("data", {}),
    }


@router.get("/events", summary="The event log, newest first (cursor: the last id of the previous page)", responses=responses(400, 401))
async def list_events(
    project_id: ProjectDep,
    session: SessionDep,
    connection_id: Annotated[str | None, Query(pattern=CONNECTION_ID_PATTERN)] = None,
    type: Annotated[str | None, Query(pattern=TYPE_PATTERN)] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(pattern=EVENT_ID_PATTERN)] = None,
) -> dict[str, Any]:
    query = select(Event).where(Event.project_id == project_id)
    if connection_id is not None:
        query = query.where(Event.connection_id == connection_id)
    if type is not None:
        query = query.where(Event.type == type)
    if cursor is not None:
        query = query.where(Event.id < cursor)
    rows = (await session.scalars(query.order_by(Event.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return {"events": [event_view(e) for e in page], "next_cursor": page[-1].id if len(rows) > limit else None}
