"""Proactive refresh: connections are refreshed `AUTHPIPE_REFRESH_MARGIN` seconds before they
expire, by whichever worker claims them.

Work is claimed, not broadcast (store.claims): any number of workers share it, each connection
refreshed by one of them. Jobs run in a bounded, fair pool (background.pool): a hard deadline per
refresh, a cap per project's provider app, and new claims as soon as a slot frees, so one
project's slow provider never holds up another project's refresh.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Awaitable, Callable, Hashable

from authpipe_server.background.pool import JobPool, run_claimed
from authpipe_server.credentials.refresh import ConnectionGone
from authpipe_server.store.claims import Claimed, claim_due_connections
from authpipe_server.store.models import Connection

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

Job = tuple[Hashable, str, Callable[[], Awaitable[object]]]


class RefreshScheduler:
    def __init__(
        self,
        runtime: "Runtime",
        *,
        concurrency: int = 32,
        per_app: int = 8,
        lease: float = 300.0,
        idle: float = 1.0,
        deadline: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.lease, self.idle = lease, idle
        # A refresh is one or two provider calls, each under the egress deadline, plus short
        # database writes; the job deadline is the backstop above them (and below the lease).
        job_deadline = deadline if deadline is not None else min(3 * runtime.settings.egress_timeout + 10.0, lease / 2)
        self.pool = JobPool(total=concurrency, per_key=per_app, deadline=job_deadline, name="refresh")

    async def claim(self, limit: int, busy: set[Hashable]) -> list[Job]:
        """Lease up to `limit` due connections of apps that are not busy."""
        claimed = await claim_due_connections(
            self.runtime.db,
            Connection.refresh_due_at,
            Connection.refresh_claimed_until,
            limit=limit,
            lease=self.lease,
            where=Connection.status.in_(("active", "error")),
            exclude=[key for key in busy if isinstance(key, tuple)],
        )
        return [(row.app, row.id, functools.partial(self._refresh, row)) for row in claimed]

    async def _refresh(self, row: Claimed) -> None:
        try:
            await self.runtime.refresher.refresh(row.id)
        except ConnectionGone:
            pass

    async def run_once(self) -> int:
        """Claim what is due (up to the pool's size) and run it to the end: one round, for
        benchmarks and tests. `run` is the long-running form."""
        return await self.pool.run_batch(await self.claim(self.pool.total, set()))

    async def run(self, stop: asyncio.Event) -> None:
        await run_claimed(self.pool, self.claim, stop, idle=self.idle, name="refresh scheduler")
