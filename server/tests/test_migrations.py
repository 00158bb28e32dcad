"""Migrations upgrade an empty database to head on both backends, and agree with the models."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from authpipe_server.store.db import Database, current_revision, head_revision, upgrade
from authpipe_server.store.models import Base
from tests import conftest


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: object) -> object:
    if request.param == "sqlite":
        yield make_url(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
        return
    request.getfixturevalue("pg_template")  # skips or fails as PostgreSQL's availability says
    name = f"authpipe_e_{uuid.uuid4().hex[:12]}"
    asyncio.run(conftest._pg_execute(f'CREATE DATABASE "{name}"'))
    yield make_url(conftest._pg_dsn(name)).set(drivername="postgresql+asyncpg")
    asyncio.run(conftest._pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_upgrade_from_empty_and_models_match(empty_database: object) -> None:
    db = Database.connect(empty_database)  # type: ignore[arg-type]
    try:
        assert await current_revision(db.engine) is None
        await upgrade(db.engine)
        assert await current_revision(db.engine) == head_revision()
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata)
            )
        assert diff == [], f"models and migrations disagree (run alembic revision --autogenerate): {diff}"
        await upgrade(db.engine)  # a second run is a no-op
    finally:
        await db.dispose()
