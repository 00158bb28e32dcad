"""Proactive refresh: connections are refreshed `AUTHPIPE_REFRESH_MARGIN` seconds before they
expire, by whichever worker claims them.

Work is claimed, not broadcast (store.claims): any number of workers share it, each connection
refreshed by one of them. Concurrency is bounded per provider so no provider sees a burst from us.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from authpipe_server.credentials.refresh import ConnectionGone
from authpipe_server.polling import poll
from authpipe_server.store.claims import claim_due_connections
from authpipe_server.store.models import Connection

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

log = logging.getLogger(__name__)


class RefreshScheduler:
    def __init__(
        self,
        runtime: "Runtime",
        *,
        batch: int = 500,
        concurrency: int = 16,
        per_provider: int = 8,
        lease: float = 300.0,
        idle: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.batch, self.lease, self.idle = batch, lease, idle
        # Each refresh holds a database connection (PostgreSQL: the row lock) while the provider
        # answers, so the total is bounded below the pool size as well as per provider.
        self._total = asyncio.Semaphore(concurrency)
        self._limits: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_provider))

    async def claim(self) -> list[tuple[str, str]]:
        """Take up to `batch` due connections: (id, provider) pairs, leased to this worker."""
        return await claim_due_connections(
            self.runtime.db,
            Connection.refresh_due_at,
            Connection.refresh_claimed_until,
            batch=self.batch,
            lease=self.lease,
            where=Connection.status.in_(("active", "error")),
        )

    async def run_once(self) -> int:
        """Claim one batch and refresh it; returns how many were claimed."""
        claimed = await self.claim()
        if claimed:
            await asyncio.gather(*(self._refresh(connection_id, provider) for connection_id, provider in claimed))
        return len(claimed)

    async def _refresh(self, connection_id: str, provider: str) -> None:
        async with self._limits[provider], self._total:
            try:
                await self.runtime.refresher.refresh(connection_id)
            except ConnectionGone:
                pass
            except Exception:  # one connection's bug must not stop everyone's refreshes
                log.exception("proactive refresh of %s failed unexpectedly", connection_id)

    async def run(self, stop: asyncio.Event) -> None:
        await poll(self.run_once, stop, batch=self.batch, idle=self.idle, name="refresh scheduler")
