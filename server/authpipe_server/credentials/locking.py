"""Holding a connection while it is refreshed.

PostgreSQL: the row is locked (`SELECT … FOR UPDATE`) in a transaction that also writes the
result, so across any number of processes one refresh runs at a time; a process that dies
releases the lock with its connection. SQLite serves one process, whose in-process single flight
is the lock; the result is written in a short transaction of its own.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.store.db import Database
from authpipe_server.store.models import Connection

Mutation = Callable[[AsyncSession, Connection], Awaitable[None]]


class Locked:
    def __init__(self, db: Database, session: AsyncSession | None, row: Connection | None) -> None:
        self._db, self._session, self.row = db, session, row

    async def save(self, mutate: Mutation) -> Connection:
        """Apply `mutate` to the connection and commit it (with the lock, where there is one).
        Seal secrets before calling: on SQLite this opens the write transaction."""
        assert self.row is not None
        if self._session is not None:
            await mutate(self._session, self.row)
            await self._session.flush()
            return self.row
        async with self._db.writing() as session:
            row = await session.get(Connection, self.row.id)
            if row is None:
                raise LookupError("the connection was deleted during its refresh")
            await mutate(session, row)
        self.row = row
        return row


@asynccontextmanager
async def locked_connection(db: Database, connection_id: str) -> AsyncIterator[Locked]:
    if db.is_sqlite:
        async with db.sessions() as session:  # read and let go: no connection is held meanwhile
            row = await session.get(Connection, connection_id, populate_existing=True)
        yield Locked(db, None, row)
        return
    async with db.writing() as session:
        # FOR NO KEY UPDATE: excludes other refreshers, yet lets refresh_attempts (a foreign key to
        # this row) be written by our own second connection without waiting on us.
        row = await session.get(Connection, connection_id, with_for_update={"key_share": True}, populate_existing=True)
        yield Locked(db, session, row)
