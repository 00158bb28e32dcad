"""The credential read path's one query: a connection by its owner, through the unique index
(project_id, tenant_id, user_id, provider), without the ORM's per-call overhead.

On SQLite the query runs on a plain `sqlite3` connection on the event loop's thread: in WAL mode
a read never waits for a writer, an indexed point read takes tens of microseconds, and that is
far cheaper than the several thread hops an async driver spends on the same query. Written by
hand because no library offers a synchronous fast path beside an async engine.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text

from authpipe_server.store.db import Database

COLUMNS = (
    "id", "project_id", "tenant_id", "user_id", "provider", "status", "secrets", "expires_at", "scopes",
    "refresh_failures", "refresh_due_at", "last_error_code", "last_error_message",
)
SQL = (
    f"SELECT {', '.join(COLUMNS)} FROM connections "
    "WHERE project_id = :project_id AND tenant_id = :tenant_id AND user_id = :user_id AND provider = :provider"
)
_TIMES = {"expires_at", "refresh_due_at"}


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


@dataclass(slots=True)
class ConnectionRecord:
    """The columns the read path needs, named as on `store.models.Connection` (a plain object:
    building an ORM instance would cost more than the query)."""

    id: str
    project_id: str
    tenant_id: str
    user_id: str
    provider: str
    status: str
    secrets: bytes | None
    expires_at: datetime | None
    scopes: list[str]
    refresh_failures: int
    refresh_due_at: datetime | None
    last_error_code: str | None
    last_error_message: str | None

    def __repr__(self) -> str:
        return f"ConnectionRecord(id={self.id!r}, provider={self.provider!r}, status={self.status!r})"


def _record(values: tuple[Any, ...]) -> ConnectionRecord:
    fields = dict(zip(COLUMNS, values))
    for name in _TIMES:
        fields[name] = _utc(fields[name])
    if isinstance(fields["scopes"], str):
        fields["scopes"] = json.loads(fields["scopes"])
    if isinstance(fields["secrets"], memoryview):
        fields["secrets"] = bytes(fields["secrets"])
    return ConnectionRecord(**fields)


class ConnectionLookup:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite: sqlite3.Connection | None = None

    async def by_owner(self, project_id: str, tenant_id: str, user_id: str, provider: str) -> ConnectionRecord | None:
        params = {"project_id": project_id, "tenant_id": tenant_id, "user_id": user_id, "provider": provider}
        if self.db.is_sqlite:
            row = self._sqlite_connection().execute(SQL, params).fetchone()
        else:
            async with self.db.engine.connect() as conn:
                row = (await conn.execute(text(SQL), params)).first()
        return _record(tuple(row)) if row is not None else None

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            path = self.db.engine.url.database
            self._sqlite = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            self._sqlite.execute("PRAGMA busy_timeout=2000")
        return self._sqlite

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
