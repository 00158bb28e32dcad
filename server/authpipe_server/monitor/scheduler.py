"""Scheduled health checks: every active connection every AUTHPIPE_HEALTH_INTERVAL seconds
(±10 % jitter, set when it is saved or checked), claimed like refresh work (store.claims), run in
the bounded, fair job pool (background.pool), rate-limited per project's provider app, and paused
for an app whose provider answered 429 for as long as it asked (at most an hour: the Retry-After
is clamped where it is parsed). A pause or a slow provider holds up only that project's app.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING, Awaitable, Callable, Hashable

from sqlalchemy import update

from authpipe_server.background.pool import JobPool, run_claimed
from authpipe_server.credentials.refresh import ConnectionGone
from authpipe_server.monitor.checks import HealthChecker
from authpipe_server.store.claims import AppKey, Claimed, claim_due_connections
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

Job = tuple[Hashable, str, Callable[[], Awaitable[object]]]


class RateLimit:
    """At most `rate` starts per second (a token bucket of `rate` tokens), and pauses on demand."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.updated = rate, rate, time.monotonic()
        self.paused_until = 0.0

    @property
    def paused_for(self) -> float:
        return max(0.0, self.paused_until - time.monotonic())

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
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
        self,
        runtime: "Runtime",
        *,
        rate_per_app: float = 20.0,
        concurrency: int = 32,
        per_app: int = 8,
        lease: float = 300.0,
        idle: float = 1.0,
        deadline: float | None = None,
    ) -> None:
        self.runtime, self.lease, self.idle = runtime, lease, idle
        self.checker = HealthChecker(runtime)
        # A check may refresh first and list a user's Pages: several provider calls, each under
        # the egress deadline; the job deadline bounds them all (and stays below the lease).
        job_deadline = deadline if deadline is not None else min(4 * runtime.settings.egress_timeout + 10.0, lease / 2)
        self.pool = JobPool(total=concurrency, per_key=per_app, deadline=job_deadline, name="health checks")
        self._limits: defaultdict[AppKey, RateLimit] = defaultdict(lambda: RateLimit(rate_per_app))

    def paused(self) -> list[AppKey]:
        return [app for app, limit in self._limits.items() if limit.paused_for > 0]

    async def claim(self, limit: int, busy: set[Hashable]) -> list[Job]:
        claimed = await claim_due_connections(
            self.runtime.db,
            Connection.check_due_at,
            Connection.check_claimed_until,
            limit=limit,
            lease=self.lease,
            where=Connection.status.in_(("active", "error")),
            exclude=[key for key in busy if isinstance(key, tuple)] + self.paused(),
        )
        return [(row.app, row.id, functools.partial(self._check, row)) for row in claimed]

    async def _check(self, row: Claimed) -> None:
        limit = self._limits[row.app]
        if limit.paused_for > 0:  # claimed just before its app was paused: check it after the pause
            await self._postpone(row.id, limit.paused_for)
            return
        await limit.acquire()
        try:
            checked = await self.checker.check(row.id)
        except ConnectionGone:
            return
        if checked.last_error_code == "rate_limited" and checked.check_due_at is not None and checked.last_checked_at is not None:
            limit.pause((checked.check_due_at - checked.last_checked_at).total_seconds())

    async def _postpone(self, connection_id: str, seconds: float) -> None:
        async with self.runtime.db.writing() as session:
            await session.execute(
                update(Connection)
                .where(Connection.id == connection_id)
                .values(check_due_at=utcnow() + timedelta(seconds=seconds), check_claimed_until=None)
                .execution_options(synchronize_session=False)
            )

    async def run_once(self) -> int:
        """Claim what is due (up to the pool's size) and run it to the end: one round, for
        benchmarks and tests. `run` is the long-running form."""
        return await self.pool.run_batch(await self.claim(self.pool.total, set()))

    async def run(self, stop: asyncio.Event) -> None:
        await run_claimed(self.pool, self.claim, stop, idle=self.idle, name="health-check scheduler")
