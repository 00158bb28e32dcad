"""`authpipe keys list` on SQLite and PostgreSQL, and the cheap record of a key's last use that
it shows (projects.KeyUseRecorder)."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from authpipe_server import projects
from authpipe_server.config import load_settings
from authpipe_server.runtime import Runtime
from authpipe_server.store.db import Database
from authpipe_server.store.models import SecretKey
from authpipe_server.tokens import token_hash
from tests.conftest import new_master_key
from tests.test_cli import one_line_error, run

LINE = re.compile(
    r"^(?P<prefix>ap_sk_\S{8})…  created (?P<created>\d{4}-\d\d-\d\d \d\d:\d\d UTC)  "
    r"last used (?P<used>never|\d{4}-\d\d-\d\d \d\d:\d\d UTC) *  (?P<state>active|revoked \d{4}-\d\d-\d\d \d\d:\d\d UTC)$"
)


async def last_used(runtime: Runtime, secret: str) -> datetime | None:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(SecretKey.last_used_at).where(SecretKey.key_hash == token_hash(secret)))


def test_keys_list_shows_prefix_dates_use_and_revocation(database_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": database_url, "AUTHPIPE_MASTER_KEY": new_master_key()}
    created = run("projects", "create", "acme", env=env)
    assert created.returncode == 0, created.stderr
    first = re.search(r"secret key: (ap_sk_\S+)", created.stdout).group(1)  # type: ignore[union-attr]
    second = run("keys", "create", "--project", "acme", env=env).stdout.strip()
    assert run("projects", "create", "other", env=env).returncode == 0  # its key is not acme's
    assert run("keys", "revoke", first[:14], env=env).returncode == 0

    async def use_second() -> None:
        runtime = await Runtime.open(load_settings(env))
        try:
            await projects.KeyUseRecorder().touch(runtime.db, token_hash(second))
        finally:
            await runtime.close()

    asyncio.run(use_second())
    listed = run("keys", "list", "--project", "acme", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2, listed.stdout
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    old, new = [m.groupdict() for m in matches if m]
    assert old["prefix"] == first[:14] and old["used"] == "never" and old["state"].startswith("revoked ")
    assert new["prefix"] == second[:14] and new["used"] != "never" and new["state"] == "active"
    assert first not in listed.stdout and second not in listed.stdout  # prefixes only, never a key


def test_keys_list_bad_input(sqlite_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url}
    assert "no project named 'nope'" in one_line_error(run("keys", "list", "--project", "nope", env=env))
    assert "the following arguments are required: --project" in one_line_error(run("keys", "list", env=env))


def test_keys_list_of_a_project_without_keys_says_how_to_make_one(sqlite_url: str) -> None:
    async def empty_project() -> None:
        db = Database.connect(load_settings({"AUTHPIPE_DATABASE_URL": sqlite_url}).database_url)
        try:
            async with db.writing() as session:
                await projects.create_project(session, "bare")
        finally:
            await db.dispose()

    asyncio.run(empty_project())
    listed = run("keys", "list", "--project", "bare", env={"AUTHPIPE_DATABASE_URL": sqlite_url})
    assert listed.returncode == 0 and listed.stdout == ""
    assert "authpipe keys create --project bare" in listed.stderr


# -- recording the last use -------------------------------------------------------------------


async def test_touch_writes_at_most_once_per_interval_per_process(runtime: Runtime, project: tuple[str, str]) -> None:
    _, secret = project
    recorder = projects.KeyUseRecorder()
    await recorder.touch(runtime.db, token_hash(secret))
    assert await last_used(runtime, secret) is not None
    async with runtime.db.writing() as session:
        await session.execute(update(SecretKey).values(last_used_at=None))
    await recorder.touch(runtime.db, token_hash(secret))  # remembered: no write
    assert await last_used(runtime, secret) is None


async def test_other_processes_do_not_rewrite_a_fresh_mark(runtime: Runtime, project: tuple[str, str]) -> None:
    _, secret = project
    await projects.KeyUseRecorder(interval=60).touch(runtime.db, token_hash(secret))
    marked = await last_used(runtime, secret)
    await projects.KeyUseRecorder(interval=60).touch(runtime.db, token_hash(secret))  # another process, same minute
    assert await last_used(runtime, secret) == marked


async def test_a_mark_older_than_the_interval_is_renewed(runtime: Runtime, project: tuple[str, str]) -> None:
    _, secret = project
    recorder = projects.KeyUseRecorder(interval=0.05)
    await recorder.touch(runtime.db, token_hash(secret))
    marked = await last_used(runtime, secret)
    await asyncio.sleep(0.1)
    await recorder.touch(runtime.db, token_hash(secret))
    renewed = await last_used(runtime, secret)
    assert marked is not None and renewed is not None and renewed > marked


async def test_an_unknown_key_changes_nothing(runtime: Runtime, project: tuple[str, str]) -> None:
    _, secret = project
    await projects.KeyUseRecorder().touch(runtime.db, token_hash("ap_sk_unknown"))
    assert await last_used(runtime, secret) is None


async def test_a_failed_write_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    db = Database.connect(make_url("postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    recorder = projects.KeyUseRecorder()
    caplog.set_level(logging.WARNING, logger="authpipe_server.projects")
    try:
        await recorder.touch(db, token_hash("ap_sk_whatever"))
        await recorder.touch(db, token_hash("ap_sk_whatever"))  # not remembered after a failure: tried again
    finally:
        await db.dispose()
    failures = [r for r in caplog.records if "could not record a secret key's last use" in r.getMessage()]
    assert len(failures) == 2
    assert "ap_sk_whatever" not in caplog.text
