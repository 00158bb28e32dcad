"""What an operator does with the outbox (the dashboard's Webhook page): read the delivery log,
send a test event, redeliver a finished delivery. Each goes through the outbox and the delivery
worker like any other message, so it is signed, retried and logged the same way.

- A test event is an Event of type `webhook.test` (no connection) with one delivery to the
  project's endpoint. Its body, as every delivery's, is the event's `data`:
  `{"type": "webhook.test", "timestamp": "…", "data": {"project": {"id", "name"}, "message": "…"}}`.
- Redelivering puts a `delivered` or `failed` delivery back in the outbox as it is: the same row,
  so the same `webhook-id` (the receiver's idempotency key, per Standard Webhooks), due now, and
  one more WebhookAttempt when the worker sends it. The retry schedule carries on from the
  attempts already made, so a delivery that had used up its retries gets exactly one more try.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from authpipe_server.connections.views import iso
from authpipe_server.errors import AuthpipeError
from authpipe_server.store.models import Event, Project, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from authpipe_server.store.types import utcnow
from authpipe_server.webhooks.outbox import queue_delivery

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

TEST_EVENT = "webhook.test"
TEST_MESSAGE = "A test event sent from the Authpipe dashboard. No connection changed."
REDELIVERABLE = ("delivered", "failed")
LOG_PAGE = 25


class DeliveryRefused(AuthpipeError):
    """An operator's webhook action that cannot be done now; `code` names why (for a fixed,
    translated message on the page), the message says it in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def endpoint_disabled() -> DeliveryRefused:
    return DeliveryRefused("endpoint_disabled", "the endpoint is disabled (its receiver answered 410 Gone); set its URL again to enable it")


@dataclass(frozen=True)
class LoggedDelivery:
    delivery: WebhookDelivery
    event_type: str | None
    """None once retention has deleted the event."""
    attempts: tuple[WebhookAttempt, ...]
    """Oldest first."""

    @property
    def redeliverable(self) -> bool:
        return self.delivery.status in REDELIVERABLE and self.event_type is not None


@dataclass(frozen=True)
class DeliveryLog:
    deliveries: list[LoggedDelivery]
    older: str | None
    """The `before` of the next (older) page; None on the last page."""


async def delivery_log(runtime: Runtime, project_id: str, *, before: str | None = None, limit: int = LOG_PAGE) -> DeliveryLog:
    """The project's deliveries, newest first (ids are time-ordered), each with its attempts."""
    query = (
        select(WebhookDelivery, Event.type)
        .outerjoin(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.project_id == project_id)
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    async with runtime.db.sessions() as session:
        rows = (await session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1))).all()
        page = rows[:limit]
        attempts: dict[str, list[WebhookAttempt]] = {row[0].id: [] for row in page}
        if attempts:
            found = await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
            )
            for attempt in found:
                attempts[attempt.delivery_id].append(attempt)
    logged = [LoggedDelivery(delivery, event_type, tuple(attempts[delivery.id])) for delivery, event_type in page]
    return DeliveryLog(logged, page[-1][0].id if len(rows) > limit else None)


async def _enabled_endpoint(runtime: Runtime, project_id: str) -> WebhookEndpoint:
    async with runtime.db.sessions() as session:
        endpoint = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id))
    if endpoint is None:
        raise DeliveryRefused("no_endpoint", "this project has no webhook endpoint; set its URL first")
    if endpoint.disabled_at is not None:
        raise endpoint_disabled()
    return endpoint


async def send_test_event(runtime: Runtime, project_id: str) -> WebhookDelivery:
    """Record a `webhook.test` event and queue its delivery to the project's enabled endpoint, in
    one transaction; the delivery worker sends it like any other."""
    endpoint = await _enabled_endpoint(runtime, project_id)
    now = utcnow()
    async with runtime.db.writing() as session:
        project = await session.get(Project, project_id)
        if project is None:
            raise DeliveryRefused("no_endpoint", "the project no longer exists")
        event = Event(
            project_id=project_id,
            connection_id=None,
            type=TEST_EVENT,
            data={
                "type": TEST_EVENT,
                "timestamp": iso(now),
                "data": {"project": {"id": project.id, "name": project.name}, "message": TEST_MESSAGE},
            },
            created_at=now,
        )
        session.add(event)
        await session.flush()
        delivery = queue_delivery(session, event, endpoint.id)
        await session.flush()
    return delivery


async def redeliver(runtime: Runtime, project_id: str, delivery_id: str) -> WebhookDelivery:
    """Put a finished delivery of `project_id` back in the outbox, due now (see the module's
    docstring). DeliveryRefused when it is not the project's, still pending, its event is gone, or
    the endpoint is disabled."""
    async with runtime.db.writing() as session:
        delivery = await session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.project_id == project_id).with_for_update()
        )
        if delivery is None:
            raise DeliveryRefused("delivery_not_found", "no such delivery in this project")
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or endpoint.disabled_at is not None:
            raise endpoint_disabled()
        if delivery.status not in REDELIVERABLE:
            raise DeliveryRefused("already_pending", "this delivery is still queued; the worker sends it when it is due")
        # Locked, so retention cannot delete the event between this check and the commit.
        if await session.scalar(select(Event.id).where(Event.id == delivery.event_id).with_for_update()) is None:
            raise DeliveryRefused("event_gone", "the event is past its retention and no longer kept, so it cannot be sent again")
        delivery.status, delivery.next_attempt_at = "pending", utcnow()
        delivery.claimed_until = delivery.delivered_at = None
    return delivery
