"""Retention: deleting what Authpipe no longer needs, a little at a time.

Once an hour (the first run a minute after start) the job deletes:

- OAuth states and connect sessions that expired more than a day ago (the day of grace lets a
  late callback still be told "expired" rather than "unknown");
- webhook deliveries that are finished (`delivered` or `failed`) and older than
  AUTHPIPE_RETENTION_DELIVERIES_DAYS; their attempts go with them (ON DELETE CASCADE);
- events older than AUTHPIPE_RETENTION_EVENTS_DAYS that no pending delivery still has to send.

Each kind goes in batches of at most `batch` rows, one short write transaction per batch, so
neither PostgreSQL nor SQLite holds a long write lock and other writers get their turn between
batches. Several processes running the job at once only repeat each other's work.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select

from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ConnectSession, Event, OAuthState, WebhookDelivery
from authpipe_server.store.types import utcnow

log = logging.getLogger(__name__)

EXPIRED_GRACE = timedelta(hours=24)
INTERVAL = 3600.0
FIRST_RUN_DELAY = 60.0
BATCH = 1000
FINISHED_DELIVERY_STATUSES = ("delivered", "failed")

Purged = type[OAuthState] | type[ConnectSession] | type[WebhookDelivery] | type[Event]


class RetentionJob:
    def __init__(
        self,
        runtime: Runtime,
        *,
        batch: int = BATCH,
        interval: float = INTERVAL,
        first_run_delay: float = FIRST_RUN_DELAY,
    ) -> None:
        self.runtime, self.batch = runtime, batch
        self.interval, self.first_run_delay = interval, first_run_delay

    async def run(self, stop: asyncio.Event) -> None:
        """Purge every `interval` seconds until `stop` is set. A failed run is logged and the
        next one tries again: what it did not delete is still there."""
        delay = self.first_run_delay
        while not await _rest(stop, delay):
            try:
                await self.purge(stop)
            except Exception:
                log.exception("retention: a run failed; the next one tries again")
            delay = self.interval

    async def purge(self, stop: asyncio.Event | None = None) -> dict[str, int]:
        """One run: delete everything past its retention; returns the rows deleted per kind."""
        now = utcnow()
        settings = self.runtime.settings
        still_to_send = select(WebhookDelivery.event_id).where(WebhookDelivery.status == "pending")
        # States before sessions: a session's states would otherwise go by cascade, uncounted.
        plan: list[tuple[str, Purged, list[ColumnElement[bool]]]] = [
            ("oauth_states", OAuthState, [OAuthState.expires_at < now - EXPIRED_GRACE]),
            ("connect_sessions", ConnectSession, [ConnectSession.expires_at < now - EXPIRED_GRACE]),
            (
                "webhook_deliveries",
                WebhookDelivery,
                [
                    WebhookDelivery.status.in_(FINISHED_DELIVERY_STATUSES),
                    WebhookDelivery.created_at < now - timedelta(days=settings.retention_deliveries_days),
                ],
            ),
            (
                "events",
                Event,
                [Event.created_at < now - timedelta(days=settings.retention_events_days), Event.id.not_in(still_to_send)],
            ),
        ]
        purged: dict[str, int] = {}
        for kind, model, conditions in plan:
            if stop is not None and stop.is_set():
                break
            purged[kind] = await self._drain(model, conditions, stop)
            if purged[kind]:
                self.runtime.metrics.retention_purged.labels(kind).inc(purged[kind])
        if any(purged.values()):
            log.info("retention: deleted %s", ", ".join(f"{count} {kind}" for kind, count in purged.items()))
        return purged

    async def _drain(self, model: Purged, conditions: list[ColumnElement[bool]], stop: asyncio.Event | None) -> int:
        """Delete the rows matching `conditions`, `batch` at a time, oldest first (ids sort by
        creation time). Each batch is found by a plain read, which takes no lock, and deleted
        by id in its own short write transaction (which checks the conditions again): SQLite
        has one writer, and a scan inside the write would hold everyone else up."""
        oldest = select(model.id).where(*conditions).order_by(model.id).limit(self.batch)
        total = 0
        while True:
            async with self.runtime.db.sessions() as session:
                ids = list(await session.scalars(oldest))
            if ids:
                async with self.runtime.db.writing() as session:
                    result: Any = await session.execute(
                        delete(model).where(model.id.in_(ids), *conditions).execution_options(synchronize_session=False)
                    )
                total += result.rowcount
            if len(ids) < self.batch or (stop is not None and stop.is_set()):
                return total


async def _rest(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop` is set; True when it was set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
    return stop.is_set()
