"""Heartbeats of the processes that run background work, so `authpipe doctor` can tell whether
anything is refreshing tokens, checking connections and delivering webhooks.

Each such process (`authpipe serve` with workers on, `authpipe worker`) keeps one row in
`worker_heartbeats`: written at start, its `seen_at` renewed every `interval` seconds, deleted at
clean shutdown. A process that crashed leaves its row behind; any heartbeat deletes rows unseen
for `stale_after` seconds, so the table holds about one row per live process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from authpipe_server.ids import new_id
from authpipe_server.store.db import Database
from authpipe_server.store.models import WorkerHeartbeat
from authpipe_server.store.types import utcnow

log = logging.getLogger(__name__)

Kind = Literal["serve", "worker"]

INTERVAL = 30.0
"""Seconds between two beats of one process."""
STALE_AFTER = 600.0
"""Seconds after which a row no process renewed is deleted."""
LIVE_WINDOW = 90.0
"""Seconds within which a process must have beaten to count as running (three beats)."""
HOSTNAME_LENGTH = 255


class Heartbeat:
    """One process's row. `run(stop)` beats until `stop` is set, then deletes the row."""

    def __init__(self, db: Database, kind: Kind, *, interval: float = INTERVAL, stale_after: float = STALE_AFTER) -> None:
        self.db, self.kind = db, kind
        self.interval, self.stale_after = interval, stale_after
        self.id = new_id("proc")
        self.hostname = socket.gethostname()[:HOSTNAME_LENGTH]
        self.pid = os.getpid()
        self.started_at = utcnow()

    async def run(self, stop: asyncio.Event) -> None:
        """Beat now and every `interval` seconds. A failed beat is logged and the next one tries
        again (the database may be briefly away); it never stops the process's real work."""
        while not stop.is_set():
            try:
                await self.beat()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("heartbeat: could not record this process as alive (%s); retrying", type(exc).__name__)
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass
        await self.forget()

    async def beat(self) -> None:
        """Insert or renew this process's row, and delete rows gone stale."""
        now = utcnow()
        async with self.db.writing() as session:
            await session.merge(
                WorkerHeartbeat(
                    id=self.id, hostname=self.hostname, pid=self.pid, kind=self.kind, started_at=self.started_at, seen_at=now
                )
            )
            await session.execute(
                delete(WorkerHeartbeat)
                .where(WorkerHeartbeat.seen_at < now - timedelta(seconds=self.stale_after), WorkerHeartbeat.id != self.id)
                .execution_options(synchronize_session=False)
            )

    async def forget(self) -> None:
        """Delete this process's row (clean shutdown). If the database is away, the row stays
        until another heartbeat purges it as stale."""
        try:
            async with self.db.writing() as session:
                await session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.id == self.id))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("heartbeat: could not remove this process's row at shutdown (%s)", type(exc).__name__)


@dataclass(frozen=True)
class LiveProcesses:
    """Processes running background work that beat within a window, counted by kind."""

    by_kind: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


async def live_processes(db: Database, *, within: float = LIVE_WINDOW, now: datetime | None = None) -> LiveProcesses:
    """The processes seen in the last `within` seconds."""
    since = (now or utcnow()) - timedelta(seconds=within)
    async with db.sessions() as session:
        rows = await session.execute(
            select(WorkerHeartbeat.kind, func.count()).where(WorkerHeartbeat.seen_at >= since).group_by(WorkerHeartbeat.kind)
        )
        return LiveProcesses({kind: count for kind, count in rows.all()})
