"""The delivery worker: sends the outbox (webhooks.outbox) to each project's endpoint.

- Claimed, not broadcast (as credentials.scheduler): due deliveries are leased to one worker
  (`claimed_until`) in one UPDATE over rows taken `FOR UPDATE SKIP LOCKED`, so any number of
  workers share the outbox; a worker that dies leaves its claims to be retaken when the lease
  runs out.
- In order per connection: a delivery is claimable only while no earlier delivery of the same
  connection (to the same endpoint) is still pending, so a connection has at most one message in
  flight and a receiver never sees `connection.deleted` before that connection's `created`.
- Standard Webhooks: `webhook-id` is the delivery id (the receiver's idempotency key, the same on
  every retry), `webhook-timestamp` the attempt's Unix time, `webhook-signature` `v1,…` signed by
  the `standardwebhooks` library (two signatures for a day after a secret rotation).
- Only 2xx is success. 410 Gone disables the endpoint (its other pending deliveries fail with it).
  Anything else, a timeout or a refused connection is retried with exponential backoff and
  jitter over about a day, then the delivery is `failed`. Every try is a WebhookAttempt row.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from authpipe_server import __version__
from authpipe_server.egress import EgressError, EgressRefused
from authpipe_server.background.pool import JobPool, run_claimed
from authpipe_server.store.models import (
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from authpipe_server.store.types import utcnow
from authpipe_server.webhooks.signing import open_keys, signature

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

log = logging.getLogger(__name__)

RETRY_SCHEDULE: tuple[float, ...] = (5, 60, 300, 1800, 7200, 18000, 36000, 36000)
"""Seconds to wait after the 1st, 2nd, … failed attempt (±jitter); about 27 hours in all. After
the last one fails, the delivery is `failed`."""

TIMEOUT = 15.0
MAX_RESPONSE_BYTES = 64 * 1024
"""Read at most this much of a receiver's answer (we only need its status)."""
USER_AGENT = f"Authpipe-Webhooks/{__version__}"


class DeliveryWorker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        schedule: Sequence[float] = RETRY_SCHEDULE,
        jitter: float = 0.2,
        timeout: float = TIMEOUT,
        batch: int = 100,
        concurrency: int = 16,
        per_endpoint: int = 4,
        lease: float | None = None,
        idle: float = 0.5,
    ) -> None:
        self.runtime = runtime
        self.schedule = tuple(float(s) for s in schedule)
        self.jitter, self.timeout, self.batch, self.idle = jitter, timeout, batch, idle
        # Longer than one attempt can take (the HTTP timeout plus two short transactions), so a
        # live worker's claim never runs out under it.
        self.lease = lease if lease is not None else 2 * timeout + 30.0
        # One endpoint (one project) gets at most `per_endpoint` of the slots: a receiver that
        # times out delays only its own project's messages (background.pool).
        self.pool = JobPool(total=concurrency, per_key=per_endpoint, deadline=timeout + 30.0, name="webhooks")

    # -- claiming ------------------------------------------------------------------------------

    def _due(self, now: datetime) -> tuple[Any, Select[Any]]:
        d = aliased(WebhookDelivery, name="d")
        earlier = aliased(WebhookDelivery, name="earlier")
        earlier_pending = exists().where(
            earlier.endpoint_id == d.endpoint_id,
            earlier.connection_id == d.connection_id,
            earlier.status == "pending",
            or_(earlier.created_at < d.created_at, and_(earlier.created_at == d.created_at, earlier.id < d.id)),
        )
        endpoint_enabled = exists().where(WebhookEndpoint.id == d.endpoint_id, WebhookEndpoint.disabled_at.is_(None))
        return d, select(d.id).where(
            d.status == "pending",
            d.next_attempt_at <= now,
            or_(d.claimed_until.is_(None), d.claimed_until < now),
            endpoint_enabled,
            ~earlier_pending,
        )

    async def claim(self, limit: int | None = None, busy: Iterable[Hashable] = ()) -> list[tuple[str, str]]:
        """Lease up to `limit` (default `batch`) due deliveries to this worker, leaving out busy
        endpoints; returns (delivery id, endpoint id) pairs."""
        now = utcnow()
        d, due = self._due(now)
        skipped = [key for key in busy if isinstance(key, str)]
        if skipped:
            due = due.where(d.endpoint_id.not_in(skipped))
        async with self.runtime.db.sessions() as session:  # a cheap read first: idle polls take no write lock
            if (await session.scalar(due.limit(1))) is None:
                return []
        due = due.order_by(d.next_attempt_at).limit(limit or self.batch).with_for_update(skip_locked=True, of=d)
        async with self.runtime.db.writing() as session:
            claimed = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(due.scalar_subquery()))
                .values(claimed_until=now + timedelta(seconds=self.lease))
                .returning(WebhookDelivery.id, WebhookDelivery.endpoint_id)
                .execution_options(synchronize_session=False)
            )
            return [(row.id, row.endpoint_id) for row in claimed]

    async def _jobs(self, limit: int, busy: set[Hashable]) -> list[tuple[Hashable, str, Callable[[], Awaitable[object]]]]:
        return [(endpoint_id, delivery_id, functools.partial(self.deliver, delivery_id)) for delivery_id, endpoint_id in await self.claim(limit, busy)]

    async def run_once(self) -> int:
        """Claim one batch, try each delivery once and wait for them all (tests, benchmarks);
        returns how many were claimed. `run` is the long-running form."""
        return await self.pool.run_batch(await self._jobs(self.batch, set()))

    async def run(self, stop: asyncio.Event) -> None:
        await run_claimed(self.pool, self._jobs, stop, idle=self.idle, name="webhook delivery")

    # -- one attempt ---------------------------------------------------------------------------

    async def deliver(self, delivery_id: str) -> str | None:
        """Try one claimed delivery once and record the outcome (delivered, retry, failed,
        disabled), or None when there was nothing to send."""
        async with self.runtime.db.sessions() as session:
            row = (
                await session.execute(
                    select(WebhookDelivery, WebhookEndpoint, Event)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .outerjoin(Event, Event.id == WebhookDelivery.event_id)
                    .where(WebhookDelivery.id == delivery_id)
                )
            ).first()
        if row is None:  # the endpoint was deleted, and its outbox with it
            return None
        delivery, endpoint, event = row
        if delivery.status != "pending" or endpoint.disabled_at is not None:
            return None
        started_at = utcnow()
        if event is None:
            return await self._record(delivery_id, endpoint, started_at, None, "the event no longer exists", 0, final=True)
        try:
            keys = await open_keys(self.runtime.vault, endpoint.project_id, endpoint.id, endpoint.secret)
        except Exception as exc:  # noqa: BLE001 - a vault problem: retry later, like a receiver problem
            log.warning("webhook delivery %s: cannot open the signing secret (%s)", delivery_id, type(exc).__name__)
            return await self._record(delivery_id, endpoint, started_at, None, "signing secret unavailable", 0)

        body = json.dumps(event.data, separators=(",", ":"))
        sent_at = datetime.fromtimestamp(int(time.time()), UTC)
        headers = {
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature(keys, delivery.id, sent_at, body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        status_code, error = None, None
        clock = time.monotonic()
        try:
            # Only the status matters: a long answer is cut at MAX_RESPONSE_BYTES, not refused.
            response = await self.runtime.egress.request(
                "POST", endpoint.url, content=body.encode(), headers=headers,
                deadline=self.timeout, max_bytes=MAX_RESPONSE_BYTES, truncate=True,
            )
            status_code = response.status_code
        except EgressRefused as exc:
            error = f"refused by the egress policy: {exc}"
        except EgressError as exc:
            error = exc.message
        latency_ms = int((time.monotonic() - clock) * 1000)
        return await self._record(delivery_id, endpoint, started_at, status_code, error, latency_ms)

    def _delay(self, attempts: int) -> float:
        base = self.schedule[attempts - 1]
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    async def _record(
        self,
        delivery_id: str,
        endpoint: WebhookEndpoint,
        started_at: datetime,
        status_code: int | None,
        error: str | None,
        latency_ms: int,
        *,
        final: bool = False,
    ) -> str | None:
        now = utcnow()
        async with self.runtime.db.writing() as session:
            current = await session.scalar(
                select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
            )
            if current is None or current.status != "pending":
                return None
            session.add(
                WebhookAttempt(
                    delivery_id=delivery_id, attempted_at=started_at, status_code=status_code,
                    latency_ms=latency_ms, error=error[:1024] if error else None,
                )
            )
            current.attempts += 1
            current.last_status_code = status_code
            current.last_error = (error or f"HTTP {status_code}")[:1024]
            current.claimed_until = None
            if status_code is not None and 200 <= status_code < 300:
                outcome = "delivered"
                current.status, current.delivered_at, current.last_error = "delivered", now, None
            elif status_code == 410:
                outcome = "disabled"
                current.status = "failed"
                await session.flush()
                await self._disable(session, endpoint, now)
            elif final or current.attempts > len(self.schedule):
                outcome = "failed"
                current.status = "failed"
            else:
                outcome = "retry"
                current.next_attempt_at = now + timedelta(seconds=self._delay(current.attempts))
            attempts = current.attempts
        self.runtime.metrics.webhook_deliveries.labels(outcome=outcome).inc()
        what = f"HTTP {status_code}" if status_code is not None else error
        if outcome == "delivered":
            log.debug("webhook %s delivered (attempt %d, %s)", delivery_id, attempts, what)
        elif outcome == "retry":
            log.info("webhook %s not delivered (attempt %d, %s); retrying", delivery_id, attempts, what)
        elif outcome == "failed":
            log.warning("webhook %s failed for good after %d attempts (%s)", delivery_id, attempts, what)
        else:
            log.warning("webhook endpoint %s disabled: the receiver answered 410 Gone", endpoint.id)
        return outcome

    @staticmethod
    async def _disable(session: AsyncSession, endpoint: WebhookEndpoint, now: datetime) -> None:
        """410 Gone: the receiver asks us to stop. Disable the endpoint (unless it was meanwhile
        pointed elsewhere) and fail what is still queued for it; PUT /v1/webhook enables it again."""
        disabled = await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.url == endpoint.url, WebhookEndpoint.disabled_at.is_(None))
            .values(disabled_at=now)
            .returning(WebhookEndpoint.id)
            .execution_options(synchronize_session=False)
        )
        if disabled.first() is None:
            return
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
            .values(status="failed", claimed_until=None, last_error="endpoint disabled: the receiver answered 410 Gone")
            .execution_options(synchronize_session=False)
        )
