"""Engine and sessions for SQLite (embedded, WAL) and PostgreSQL, plus schema migrations."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection as SyncConnection
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver emits no BEGIN; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: SyncConnection) -> None:
    """Write transactions take SQLite's write lock up front (BEGIN IMMEDIATE), so they wait for
    each other through busy_timeout instead of failing when a read snapshot turns into a write
    after another connection committed. Read transactions stay deferred: in WAL mode they never
    block or wait."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


WRITE = "authpipe_write"


def make_engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        if url.database:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Connections to a local file are cheap; a roomy pool keeps background work and requests
        # from queueing behind each other.
        engine = create_async_engine(url, pool_size=20, max_overflow=40)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # pool_timeout: a process whose pool is exhausted answers 503 `unavailable` after 10 s, not 30.
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, pool_timeout=10)


@dataclass
class Database:
    """`sessions()` for reading; `writing()` for a transaction that writes (committed on exit).

    On SQLite a process must not open a write transaction while it holds another (the second
    waits for the first): seal secrets with the vault *before* opening the write that stores them.
    """

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    _writes: async_sessionmaker[AsyncSession]
    _write_lock: asyncio.Lock | None = None

    @classmethod
    def connect(cls, url: URL) -> "Database":
        engine = make_engine(url)
        return cls(
            engine,
            async_sessionmaker(engine, expire_on_commit=False),
            async_sessionmaker(engine.execution_options(**{WRITE: True}), expire_on_commit=False),
        )

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        if not self.is_sqlite:
            async with self._writes() as session, session.begin():
                yield session
            return
        # SQLite has one writer at a time. Waiting for it here, in order, beats SQLite's own busy
        # handler, which sleeps in growing steps (up to 100 ms) and collapses under contention.
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock, self._writes() as session, session.begin():
            yield session

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: SyncConnection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "authpipe_server.store:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
