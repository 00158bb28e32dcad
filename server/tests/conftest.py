"""Shared fixtures. Store and vault tests run against both databases: SQLite (a temp file) and
PostgreSQL (a fresh database per test, cloned from a migrated template).

PostgreSQL comes from AUTHPIPE_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test).
Where none answers, its tests skip with the reason; with AUTHPIPE_REQUIRE_POSTGRES=1 they fail.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import uuid
from pathlib import Path
from typing import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from authpipe_server.api.app import create_app
from authpipe_server.config import Settings, load_settings
from authpipe_server.runtime import Runtime
from authpipe_server.store.db import Database, upgrade

PG_URL = os.environ.get("AUTHPIPE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("AUTHPIPE_REQUIRE_POSTGRES") == "1"


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# -- PostgreSQL: one migrated template per run, one clone per test ------------------------------


def _pg_admin_dsn() -> str:
    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_dsn(database: str) -> str:
    return make_url(PG_URL).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


async def _pg_execute(*statements: str) -> None:
    conn = await asyncpg.connect(_pg_admin_dsn(), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database to clone, or a skip (a failure when PostgreSQL is required)."""
    name = f"authpipe_tpl_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        reason = f"PostgreSQL not reachable at {make_url(PG_URL).render_as_string()}: {exc}"
        if REQUIRE_PG:
            pytest.fail(reason + " (AUTHPIPE_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)

    async def migrate() -> None:
        db = Database.connect(make_url(_pg_dsn(name)).set(drivername="postgresql+asyncpg"))
        try:
            await upgrade(db.engine)
        finally:
            await db.dispose()

    asyncio.run(migrate())
    yield name
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"

    async def migrate() -> None:
        db = Database.connect(make_url(f"sqlite+aiosqlite:///{path}"))
        try:
            await upgrade(db.engine)
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await db.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A contract-style URL of an empty, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "authpipe.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"authpipe_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_dsn(name)
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (skips or fails as PostgreSQL's availability says)."""
    name = f"authpipe_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _pg_dsn(name)
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "authpipe.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def master_key() -> str:
    return new_master_key()


@pytest.fixture
def settings(database_url: str, master_key: str) -> Settings:
    return load_settings({"AUTHPIPE_DATABASE_URL": database_url, "AUTHPIPE_MASTER_KEY": master_key, "AUTHPIPE_EGRESS": "loopback"})


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = await Runtime.open(settings)
    yield rt
    await rt.close()


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (for request/response rules; end-to-end tests use real servers)."""
    app = create_app(runtime, auth_cache_ttl=0.0001)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://authpipe.test") as client:
        yield client


@pytest.fixture
async def project(runtime: Runtime) -> tuple[str, str]:
    """A project and one of its secret keys: (project_id, secret)."""
    from authpipe_server import projects

    async with runtime.db.writing() as session:
        created = await projects.create_project(session, f"p-{uuid.uuid4().hex[:8]}")
        key = await projects.create_key(session, created)
    return created.id, key.secret


def make_project(env: dict[str, str], name: str) -> tuple[str, str]:
    """Create a project and a secret key in the database `env` names: (project_id, secret)."""
    from authpipe_server import projects

    async def create() -> tuple[str, str]:
        runtime = await Runtime.open(load_settings(env))
        try:
            async with runtime.db.writing() as session:
                project = await projects.create_project(session, name)
                key = await projects.create_key(session, project)
            return project.id, key.secret
        finally:
            await runtime.close()

    return asyncio.run(create())
