"""Claiming due background work so that any number of workers share it, each row done once.

One statement leases up to `limit` due rows to the caller: an UPDATE of the lease column over
rows selected `FOR UPDATE SKIP LOCKED` (PostgreSQL; on SQLite one process runs the work and the
clause is omitted). A worker that dies leaves its rows to be taken again when the lease ends; a
worker that finishes a row clears its lease (`release`), so the row's next due time alone decides
when it runs again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import ColumnElement, or_, select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute

from authpipe_server.store.db import Database
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow

AppKey = tuple[str, str]
"""(project id, provider name): one project's provider app, the unit of fairness and rate limits."""


@dataclass(frozen=True)
class Claimed:
    id: str
    project_id: str
    provider: str

    @property
    def app(self) -> AppKey:
        return (self.project_id, self.provider)


async def claim_due_connections(
    db: Database,
    due: InstrumentedAttribute[Any],
    lease_column: InstrumentedAttribute[Any],
    *,
    limit: int,
    lease: float,
    where: ColumnElement[bool] | None = None,
    exclude: Iterable[AppKey] = (),
) -> list[Claimed]:
    """Lease up to `limit` connections whose `due` time has come, leaving out the apps in
    `exclude` (busy or paused ones): their rows stay due for a later claim."""
    now = utcnow()
    conditions = [due <= now, or_(lease_column.is_(None), lease_column < now)]
    if where is not None:
        conditions.append(where)
    skipped = list(exclude)
    if skipped:
        conditions.append(tuple_(Connection.project_id, Connection.provider).not_in(skipped))
    candidates = select(Connection.id).where(*conditions).order_by(due).limit(limit).with_for_update(skip_locked=True)
    async with db.writing() as session:
        claimed = await session.execute(
            update(Connection)
            .where(Connection.id.in_(candidates.scalar_subquery()))
            .values({lease_column.key: now + timedelta(seconds=lease)})
            .returning(Connection.id, Connection.project_id, Connection.provider)
            .execution_options(synchronize_session=False)
        )
        return [Claimed(row.id, row.project_id, row.provider) for row in claimed]
