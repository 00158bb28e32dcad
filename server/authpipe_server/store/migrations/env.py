"""Alembic environment. Runs on the connection the caller passes (`store.db.upgrade`), so the same
migrations serve SQLite and PostgreSQL, synchronously inside an async engine's `run_sync`."""

from __future__ import annotations

from alembic import context

from authpipe_server.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `authpipe migrate` (authpipe_server.store.db.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
