"""Recording an event. Called inside the write transaction of the state change itself, so an
event exists exactly when its change does; so does its webhook delivery (webhooks.outbox), for
the types the contract sends."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.connections.views import connection_view, iso
from authpipe_server.store.models import Connection, Event
from authpipe_server.store.types import utcnow
from authpipe_server.webhooks.outbox import WEBHOOK_TYPES, enqueue

CREATED = "connection.created"
REFRESH_FAILED = "connection.refresh_failed"
REVOKED = "connection.revoked"
RECOVERED = "connection.recovered"
DELETED = "connection.deleted"
REFRESHED = "connection.refreshed"
UPDATED = "connection.updated"
"""The account's name or resources changed (found by a health check), or a reconnect brought
another provider account (then with `previous_account`, like ACCOUNT_CHANGED)."""
ACCOUNT_CHANGED = "connection.account_changed"
"""A reconnect brought another provider account than the stored one; `data.previous_account`
is the one it replaced."""


async def record_event(session: AsyncSession, connection: Connection, type_: str, extra: dict[str, Any] | None = None) -> Event:
    """Record `type_` for `connection`; `extra` adds fields beside `connection` in `data`."""
    now = utcnow()
    event = Event(
        project_id=connection.project_id,
        connection_id=connection.id,
        type=type_,
        data={"type": type_, "timestamp": iso(now), "data": {"connection": connection_view(connection)} | (extra or {})},
        created_at=now,
    )
    session.add(event)
    await session.flush()
    if type_ in WEBHOOK_TYPES and await enqueue(session, event) is not None:
        await session.flush()  # the outbox row commits (or rolls back) with the event
    return event
