"""One refresh at a time per connection across processes, without holding a pooled database
connection while a provider answers.

PostgreSQL: a session-level advisory lock per connection id, taken on ONE dedicated connection
per process (`pg_try_advisory_lock` never blocks; a waiter polls). However many refreshes a
process runs, it holds one extra database connection, so a slow provider can no longer exhaust
the pool that requests need. A process that dies closes that connection and PostgreSQL releases
its locks at once (the kill test relies on it). Should the lock connection itself break, its
locks are gone: the refresh's final write is a compare-and-set on the sealed secrets it started
from (credentials.refresh), so a lost lock can cost a wasted provider call, never a lost token.

SQLite serves one process, whose in-process single flight is the lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

POLL_FIRST, POLL_MAX = 0.02, 0.25
"""Seconds between tries while another process holds the lock (growing from first to max)."""


def lock_key(connection_id: str) -> int:
    """A signed 64-bit advisory-lock key for a connection id (a collision only serialises two
    unrelated refreshes)."""
    return int.from_bytes(hashlib.sha256(b"authpipe-refresh:" + connection_id.encode()).digest()[:8], "big", signed=True)


class RefreshLocks:
    """No cross-process lock (SQLite: one process)."""

    @asynccontextmanager
    async def hold(self, connection_id: str, wait: float) -> AsyncIterator[bool]:
        yield True

    async def close(self) -> None:
        return None


class AdvisoryLocks(RefreshLocks):
    def __init__(self, url: URL) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: asyncpg.Connection | None = None
        self._use = asyncio.Lock()  # one statement at a time on the one connection

    async def _query(self, sql: str, key: int) -> bool:
        async with self._use:
            for attempt in (1, 2):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._dsn, timeout=10)
                try:
                    return bool(await self._conn.fetchval(sql, key, timeout=10))
                except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError, TimeoutError):
                    # The connection broke, and every lock it held went with it (see above).
                    log.warning("refresh lock connection lost; reconnecting")
                    self._conn = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def hold(self, connection_id: str, wait: float) -> AsyncIterator[bool]:
        """Hold the connection's lock for the block; yields False if another process held it
        for longer than `wait` seconds (the caller then uses the row as it is)."""
        key = lock_key(connection_id)
        deadline, pause = time.monotonic() + wait, POLL_FIRST
        while not await self._query("SELECT pg_try_advisory_lock($1)", key):
            if time.monotonic() >= deadline:
                yield False
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_MAX)
        try:
            yield True
        finally:
            try:
                await asyncio.shield(self._query("SELECT pg_advisory_unlock($1)", key))
            except Exception:  # the connection broke: the lock went with it
                log.warning("could not release the refresh lock of %s; it went with its connection", connection_id)

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()


def refresh_locks(url: URL) -> RefreshLocks:
    return RefreshLocks() if url.get_backend_name() == "sqlite" else AdvisoryLocks(url)
