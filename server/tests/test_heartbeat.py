"""Heartbeats of the processes running background work, on SQLite and PostgreSQL: a row per
process while it runs, renewed, removed at clean shutdown, stale rows purged; and the real
`authpipe worker` / `authpipe serve` commands keeping theirs."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from datetime import timedelta
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from authpipe_server.background.heartbeat import Heartbeat, live_processes
from authpipe_server.background.workers import background, run_worker
from authpipe_server.config import load_settings
from authpipe_server.runtime import Runtime
from authpipe_server.store.db import Database
from authpipe_server.store.models import WorkerHeartbeat
from authpipe_server.store.types import utcnow
from tests.conftest import new_master_key
from tests.processes import CLI, free_port, running_server


async def rows(runtime_or_db: Runtime | Database) -> list[WorkerHeartbeat]:
    db = runtime_or_db.db if isinstance(runtime_or_db, Runtime) else runtime_or_db
    async with db.sessions() as session:
        return list(await session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.started_at)))


async def add_row(runtime: Runtime, *, seen_ago: timedelta, kind: str = "worker") -> str:
    heartbeat = WorkerHeartbeat(hostname="elsewhere", pid=1, kind=kind, started_at=utcnow() - seen_ago, seen_at=utcnow() - seen_ago)
    async with runtime.db.writing() as session:
        session.add(heartbeat)
        await session.flush()
        return heartbeat.id


async def test_beat_writes_then_renews_and_forget_removes(runtime: Runtime) -> None:
    heartbeat = Heartbeat(runtime.db, "worker")
    await heartbeat.beat()
    [first] = await rows(runtime)
    assert (first.id, first.kind, first.pid, first.hostname) == (heartbeat.id, "worker", os.getpid(), socket.gethostname())
    await asyncio.sleep(0.01)
    await heartbeat.beat()
    [second] = await rows(runtime)
    assert second.seen_at > first.seen_at and second.started_at == first.started_at
    await heartbeat.forget()
    assert await rows(runtime) == []


async def test_a_beat_purges_rows_unseen_for_ten_minutes(runtime: Runtime) -> None:
    stale = await add_row(runtime, seen_ago=timedelta(minutes=11))
    quiet = await add_row(runtime, seen_ago=timedelta(minutes=5))
    heartbeat = Heartbeat(runtime.db, "serve")
    await heartbeat.beat()
    ids = {row.id for row in await rows(runtime)}
    assert ids == {quiet, heartbeat.id} and stale not in ids


async def test_live_processes_counts_recent_beats_by_kind(runtime: Runtime) -> None:
    await add_row(runtime, seen_ago=timedelta(seconds=10), kind="worker")
    await add_row(runtime, seen_ago=timedelta(seconds=80), kind="worker")
    await add_row(runtime, seen_ago=timedelta(seconds=30), kind="serve")
    await add_row(runtime, seen_ago=timedelta(seconds=100), kind="serve")  # silent too long: not running
    seen = await live_processes(runtime.db)
    assert seen.by_kind == {"worker": 2, "serve": 1} and seen.total == 3
    assert (await live_processes(runtime.db, within=20)).by_kind == {"worker": 1}


async def test_run_beats_until_stopped_then_removes_its_row(runtime: Runtime) -> None:
    heartbeat = Heartbeat(runtime.db, "worker", interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(heartbeat.run(stop))
    await asyncio.sleep(0.02)
    [row] = await rows(runtime)
    first_seen = row.seen_at
    await asyncio.sleep(0.2)
    [row] = await rows(runtime)
    assert row.seen_at > first_seen  # renewed while running
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await rows(runtime) == []


async def test_an_unreachable_database_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    db = Database.connect(make_url("postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    try:
        stop = asyncio.Event()
        caplog.set_level(logging.WARNING, logger="authpipe_server.background.heartbeat")
        task = asyncio.create_task(Heartbeat(db, "worker", interval=0.05).run(stop))
        await asyncio.sleep(0.2)
        assert not task.done()  # still trying
        stop.set()
        await asyncio.wait_for(task, 10)
    finally:
        await db.dispose()
    messages = [record.getMessage() for record in caplog.records]
    assert any("could not record this process as alive" in message for message in messages)
    assert any("could not remove this process's row" in message for message in messages)


async def test_background_work_in_serve_keeps_a_heartbeat(runtime: Runtime) -> None:
    async with background(runtime):
        await wait_for_rows(runtime, 1)
        [row] = await rows(runtime)
    assert (row.kind, row.pid) == ("serve", os.getpid())
    assert await rows(runtime) == []


async def test_a_worker_keeps_a_heartbeat_of_kind_worker(runtime: Runtime) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(runtime, stop))
    await wait_for_rows(runtime, 1)
    [row] = await rows(runtime)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert (row.kind, row.pid) == ("worker", os.getpid())
    assert await rows(runtime) == []


async def wait_for_rows(runtime: Runtime, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(await rows(runtime)) != count:
        assert time.monotonic() < deadline, "no heartbeat was written"
        await asyncio.sleep(0.02)


# -- the real commands ---------------------------------------------------------------------


def database_rows(url: str) -> list[WorkerHeartbeat]:
    async def read() -> list[WorkerHeartbeat]:
        db = Database.connect(load_settings({"AUTHPIPE_DATABASE_URL": url}).database_url)
        try:
            return await rows(db)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_worker_command_beats_and_cleans_up_at_sigterm(pg_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")}
    env |= {"AUTHPIPE_DATABASE_URL": pg_url, "AUTHPIPE_MASTER_KEY": new_master_key()}
    worker = subprocess.Popen([*CLI, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (found := database_rows(pg_url)):
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker wrote no heartbeat"
            time.sleep(0.1)
        assert [(row.kind, row.pid) for row in found] == [("worker", worker.pid)]
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert database_rows(pg_url) == []


@pytest.mark.parametrize(("workers", "expected"), [("on", ["serve"]), ("off", [])])
def test_serve_beats_only_when_it_runs_background_work(sqlite_url: str, workers: str, expected: list[str]) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_PORT": str(free_port()), "AUTHPIPE_WORKERS": workers}
    with running_server(["serve"], env) as server:
        wait_until = time.monotonic() + (10 if expected else 1)  # expecting none: time for a wrong row to show
        while time.monotonic() < wait_until and not (expected and [row.kind for row in database_rows(sqlite_url)] == expected):
            time.sleep(0.05)
        assert [(row.kind, row.pid) for row in database_rows(sqlite_url)] == [(kind, server.process.pid) for kind in expected]
    assert database_rows(sqlite_url) == []
