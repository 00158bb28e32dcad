"""The outbox: a webhook delivery is written in the same transaction as its event, so it exists
exactly when the state change does (no change without its message, no message without its
change), and survives any restart until the delivery worker has sent it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.store.models import Event, WebhookDelivery, WebhookEndpoint

WEBHOOK_TYPES = frozenset(
    {
        "connection.created",
        "connection.refresh_failed",
        "connection.revoked",
        "connection.recovered",
        "connection.deleted",
        "connection.account_changed",
    }
)
"""The event types the contract sends as webhooks; other events are only in the event log."""


async def enqueue(session: AsyncSession, event: Event) -> WebhookDelivery | None:
    """Queue `event` for the project's enabled endpoint (if it has one and the type is sent).

    Called with the session of the event's own write transaction; flushes nothing by itself.
    """
    if event.type not in WEBHOOK_TYPES:
        return None
    endpoint_id = await session.scalar(
        select(WebhookEndpoint.id).where(WebhookEndpoint.project_id == event.project_id, WebhookEndpoint.disabled_at.is_(None))
    )
    if endpoint_id is None:
        return None
    return queue_delivery(session, event, endpoint_id)


def queue_delivery(session: AsyncSession, event: Event, endpoint_id: str) -> WebhookDelivery:
    """Add the outbox row that sends `event` to endpoint `endpoint_id`, due now."""
    delivery = WebhookDelivery(
        project_id=event.project_id,
        endpoint_id=endpoint_id,
        event_id=event.id,
        connection_id=event.connection_id,
        status="pending",
        attempts=0,
        next_attempt_at=event.created_at,
        created_at=event.created_at,
    )
    session.add(delivery)
    return delivery
