"""Claiming due background work so that any number of workers share it, each row done once.

One statement leases up to `batch` due rows to the caller: an UPDATE of the lease column over
rows selected `FOR UPDATE SKIP LOCKED` (PostgreSQL; on SQLite one process runs the work and the
clause is omitted). A worker that dies leaves its rows to be taken again when the lease ends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from authpipe_server.store.db import Database
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow


async def claim_due_connections(
    db: Database,
    due: InstrumentedAttribute[Any],
    lease_column: InstrumentedAttribute[Any],
    *,
    batch: int,
    lease: float,
    where: ColumnElement[bool] | None = None,
) -> list[tuple[str, str]]:
    """Lease up to `batch` connections whose `due` time has come: (id, provider) pairs."""
    now = utcnow()
    conditions = [due <= now, or_(lease_column.is_(None), lease_column < now)]
    if where is not None:
        conditions.append(where)
    candidates = select(Connection.id).where(*conditions).order_by(due).limit(batch).with_for_update(skip_locked=True)
    async with db.writing() as session:
        claimed = await session.execute(
            update(Connection)
            .where(Connection.id.in_(candidates.scalar_subquery()))
            .values({lease_column.key: now + timedelta(seconds=lease)})
            .returning(Connection.id, Connection.provider)
            .execution_options(synchronize_session=False)
        )
        return [(row.id, row.provider) for row in claimed]
