"""Scheduled health checks: every active connection every AUTHPIPE_HEALTH_INTERVAL seconds
(±10 % jitter, set when it is saved or checked), claimed like refresh work (store.claims),
rate-limited per provider, and paused for a provider that answered 429 for as long as it asked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from authpipe_server.credentials.refresh import ConnectionGone
from authpipe_server.polling import poll
from authpipe_server.monitor.checks import HealthChecker
from authpipe_server.store.claims import claim_due_connections
from authpipe_server.store.models import Connection

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

log = logging.getLogger(__name__)


class RateLimit:
    """At most `rate` starts per second (a token bucket of `rate` tokens), and pauses on demand."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.updated = rate, rate, time.monotonic()
        self.paused_until = 0.0

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            if now < self.paused_until:
                await asyncio.sleep(self.paused_until - now)
                continue
            self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


class CheckScheduler:
    def __init__(
        self, runtime: "Runtime", *, batch: int = 500, rate_per_provider: float = 20.0, concurrency: int = 16,
        lease: float = 300.0, idle: float = 1.0,
    ) -> None:
        self.runtime, self.batch, self.lease, self.idle = runtime, batch, lease, idle
        self.checker = HealthChecker(runtime)
        self._total = asyncio.Semaphore(concurrency)
        self._limits: defaultdict[str, RateLimit] = defaultdict(lambda: RateLimit(rate_per_provider))

    async def run_once(self) -> int:
        claimed = await claim_due_connections(
            self.runtime.db,
            Connection.check_due_at,
            Connection.check_claimed_until,
            batch=self.batch,
            lease=self.lease,
            where=Connection.status.in_(("active", "error")),
        )
        if claimed:
            await asyncio.gather(*(self._check(connection_id, provider) for connection_id, provider in claimed))
        return len(claimed)

    async def _check(self, connection_id: str, provider: str) -> None:
        limit = self._limits[provider]
        await limit.acquire()
        async with self._total:
            try:
                checked = await self.checker.check(connection_id)
            except ConnectionGone:
                return
            except Exception:  # one connection's bug must not stop everyone's checks
                log.exception("health check of %s failed unexpectedly", connection_id)
                return
        if checked.last_error_code == "rate_limited" and checked.check_due_at is not None and checked.last_checked_at is not None:
            limit.pause((checked.check_due_at - checked.last_checked_at).total_seconds())

    async def run(self, stop: asyncio.Event) -> None:
        await poll(self.run_once, stop, batch=self.batch, idle=self.idle, name="health-check scheduler")
