"""The event log: `GET /v1/events`, newest first, the same events the webhooks carry (and a few
more, such as `connection.refreshed`, that are only logged)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from authpipe_server.api import examples
from authpipe_server.api.connections import AccountView, ConnectionView
from authpipe_server.api.deps import ProjectDep, SessionDep
from authpipe_server.api.errors import responses
from authpipe_server.api.params import Limit
from authpipe_server.connections.views import iso
from authpipe_server.store.models import Event

router = APIRouter(prefix="/v1", tags=["events"])

EVENT_ID_PATTERN = r"^evt_[0-9A-Z]{26}$"
CONNECTION_ID_PATTERN = r"^conn_[0-9A-Z]{26}$"
TYPE_PATTERN = r"^[a-z][a-z_]{0,30}\.[a-z][a-z_]{0,30}$"


class RevocationView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ok: bool = Field(description="Whether revoking the grant at the provider succeeded")
    code: str | None = Field(description="Why not (or `already_revoked`)")


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connection: ConnectionView = Field(description="The connection as it was right after the change")
    previous_account: AccountView | None = Field(
        default=None, description="`connection.account_changed` and its `connection.updated`: the account a reconnect replaced"
    )
    revocation: RevocationView | None = Field(default=None, description="`connection.deleted`: how revoking at the provider went")


class EventView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="`evt_…`")
    type: str = Field(description="`connection.created`, `.refreshed`, `.refresh_failed`, `.revoked`, `.recovered`, `.updated`, `.account_changed`, `.deleted`")
    created_at: AwareDatetime
    connection_id: str | None
    data: EventData = Field(description="The webhook body's `data`: never a secret")


class EventList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last page")


def event_view(event: Event) -> dict[str, Any]:
    """`data` is the webhook body's `data` ({"connection": {…}}): never a secret."""
    return {
        "id": event.id,
        "type": event.type,
        "created_at": iso(event.created_at),
        "connection_id": event.connection_id,
        "data": (event.data or {}).get("data", {}),
    }


@router.get(
    "/events",
    summary="List events",
    description="""The project's event log, newest first: the events webhooks deliver, plus some that are only logged
(`connection.refreshed`, `connection.updated`). Filter by `connection_id` and `type`; pages of `limit` (default 50,
at most 100), with `next_cursor` passed back as `cursor`.

Errors: 400 `invalid_request` (a `connection_id`, `type` or `cursor` of the wrong shape, a `limit` outside 1–100).""",
    response_model=None,
    responses={200: examples.success("Events, newest first", examples.EVENT_LIST, EventList), **responses(400, 401)},
)
async def list_events(
    project_id: ProjectDep,
    session: SessionDep,
    connection_id: Annotated[str | None, Query(pattern=CONNECTION_ID_PATTERN, description="Only this connection's events")] = None,
    type: Annotated[
        str | None,
        Query(pattern=TYPE_PATTERN, description="Only events of this type", openapi_examples=examples.EVENT_TYPE_EXAMPLES),
    ] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(pattern=EVENT_ID_PATTERN, description="`next_cursor` of the previous page")] = None,
) -> dict[str, Any]:
    query = select(Event).where(Event.project_id == project_id, Event.type != "webhook.test")  # the dashboard's test deliveries change nothing
    if connection_id is not None:
        query = query.where(Event.connection_id == connection_id)
    if type is not None:
        query = query.where(Event.type == type)
    if cursor is not None:
        query = query.where(Event.id < cursor)
    rows = (await session.scalars(query.order_by(Event.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return {"events": [event_view(e) for e in page], "next_cursor": page[-1].id if len(rows) > limit else None}
