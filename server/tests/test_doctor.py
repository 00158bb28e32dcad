"""`authpipe doctor`: each check's ok / warn / FAIL on SQLite and PostgreSQL, that it only reads,
that no line shows a secret, and the real command's output and exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from authpipe_server.background.heartbeat import Heartbeat
from authpipe_server.config import load_settings
from authpipe_server.doctor import Check, check_public_url, diagnose
from authpipe_server.runtime import Runtime
from authpipe_server.store.db import Database
from authpipe_server.store.models import VaultMeta, WorkerHeartbeat
from authpipe_server.store.types import utcnow
from tests import conftest
from tests.conftest import new_master_key
from tests.hostile import HostileServer, answer, drip, redirect, tls_pair
from tests.processes import CLI, free_port, running_server
from tests.test_cli import one_line_error, run

LIVENESS = answer(200, b'{"status": "ok"}')


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory: no sandbox `.authpipe/` unless a test makes one."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def liveness() -> Iterator[str]:
    """A stand-in answering /healthz as Authpipe does: the public URL's check passes."""
    with HostileServer(LIVENESS) as server:
        yield server.url()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


async def open_runtime(env: dict[str, str]) -> Runtime:
    """Open (and so set up) the database as `authpipe serve` would."""
    return await Runtime.open(load_settings(env))


async def test_a_bad_setting_is_the_only_line() -> None:
    checks = await diagnose({"AUTHPIPE_PORT": "eighty"})
    assert [(c.status, c.name) for c in checks] == [("FAIL", "configuration")]
    assert "AUTHPIPE_PORT" in checks[0].message


async def test_a_ready_installation_is_all_ok(database_url: str, liveness: str) -> None:
    key = new_master_key()
    env = {"AUTHPIPE_DATABASE_URL": database_url, "AUTHPIPE_MASTER_KEY": key, "AUTHPIPE_PUBLIC_URL": liveness}
    runtime = await open_runtime(env)
    try:
        await Heartbeat(runtime.db, "worker").beat()
        checks = await diagnose(env)
    finally:
        await runtime.close()
    assert [c.name for c in checks] == ["configuration", "database", "master key", "public URL", "egress", "workers"]
    assert all(c.status == "ok" for c in checks), [c.line for c in checks]
    found = by_name(checks)
    assert "schema up to date" in found["database"].message
    assert found["workers"].message == "1 worker process(es) seen in the last 90 s (1 worker)"
    assert key not in "\n".join(c.line for c in checks)


async def test_a_wrong_master_key_fails_showing_only_key_ids(database_url: str) -> None:
    good, wrong = new_master_key(), new_master_key()
    env = {"AUTHPIPE_DATABASE_URL": database_url, "AUTHPIPE_MASTER_KEY": good}
    await (await open_runtime(env)).close()
    check = by_name(await diagnose(env | {"AUTHPIPE_MASTER_KEY": wrong}))["master key"]
    assert check.status == "FAIL" and "not the key this database was set up with" in check.message
    assert good not in check.message and wrong not in check.message


async def test_doctor_never_records_a_master_key(database_url: str) -> None:
    """A new database takes the first key it sees: doctor must not be the one to give it one."""
    env = {"AUTHPIPE_DATABASE_URL": database_url, "AUTHPIPE_MASTER_KEY": new_master_key()}
    check = by_name(await diagnose(env))["master key"]
    assert check.status == "warn" and "not recorded yet" in check.message
    db = Database.connect(load_settings(env).database_url)
    try:
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(VaultMeta)) == 0
    finally:
        await db.dispose()


async def test_no_master_key_fails_with_how_to_make_one(sqlite_url: str) -> None:
    check = by_name(await diagnose({"AUTHPIPE_DATABASE_URL": sqlite_url}))["master key"]
    assert check.status == "FAIL" and "authpipe vault new-key" in check.message


async def test_the_sandbox_key_is_used_when_none_is_set(tmp_path: Path) -> None:
    """Run where `authpipe dev` runs, doctor checks the key the sandbox keeps in .authpipe/."""
    key = new_master_key()
    (tmp_path / ".authpipe").mkdir()
    (tmp_path / ".authpipe" / "master.key").write_text(key + "\n")
    await (await open_runtime({"AUTHPIPE_MASTER_KEY": key})).close()  # the default database, in .authpipe/
    checks = by_name(await diagnose({}))
    assert checks["master key"].status == "ok" and ".authpipe/master.key (the sandbox's" in checks["master key"].message
    assert "`authpipe dev` uses loopback" in checks["egress"].message
    assert key not in checks["master key"].message


async def test_a_missing_sqlite_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "authpipe.db"
    checks = by_name(await diagnose({"AUTHPIPE_DATABASE_URL": f"sqlite:///{path}", "AUTHPIPE_MASTER_KEY": new_master_key()}))
    assert checks["database"].status == "warn" and "does not exist yet" in checks["database"].message
    assert checks["master key"].status == "warn" and checks["workers"].status == "warn"
    assert not path.exists() and not path.parent.exists()


@pytest.fixture
def empty_postgres(pg_template: str) -> Iterator[str]:
    name = f"authpipe_d_{uuid.uuid4().hex[:12]}"
    asyncio.run(conftest._pg_execute(f'CREATE DATABASE "{name}"'))
    yield conftest._pg_dsn(name)
    asyncio.run(conftest._pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_postgres_without_its_schema_fails_with_run_migrate(empty_postgres: str) -> None:
    checks = by_name(await diagnose({"AUTHPIPE_DATABASE_URL": empty_postgres, "AUTHPIPE_MASTER_KEY": new_master_key()}))
    assert checks["database"].status == "FAIL"
    assert "schema is at nothing" in checks["database"].message and "run `authpipe migrate`" in checks["database"].message
    assert checks["master key"].status == "warn" and checks["workers"].status == "warn"


async def test_sqlite_behind_is_a_warning_since_serve_migrates_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch()  # an empty SQLite database
    check = by_name(await diagnose({"AUTHPIPE_DATABASE_URL": f"sqlite:///{path}", "AUTHPIPE_MASTER_KEY": new_master_key()}))["database"]
    assert check.status == "warn" and "`authpipe serve` migrates SQLite at start" in check.message


async def test_an_unreachable_database_fails_without_its_password() -> None:
    env = {"AUTHPIPE_DATABASE_URL": "postgresql://authpipe:pw-s3cret@127.0.0.1:1/authpipe", "AUTHPIPE_MASTER_KEY": new_master_key()}
    checks = await diagnose(env)
    found = by_name(checks)
    assert found["database"].status == "FAIL"
    assert "cannot reach postgresql://authpipe:***@127.0.0.1:1/authpipe" in found["database"].message
    assert found["master key"].message == "not checked: the database is not reachable"
    assert "pw-s3cret" not in "\n".join(c.line for c in checks)


async def test_the_password_of_a_reachable_database_is_not_shown(pg_url: str) -> None:
    with_password = make_url(pg_url).set(password="pw-s3cret").render_as_string(hide_password=False)
    checks = await diagnose({"AUTHPIPE_DATABASE_URL": with_password, "AUTHPIPE_MASTER_KEY": new_master_key()})
    database = by_name(checks)["database"]
    assert database.status == "ok" and ":***@" in database.message  # the test server trusts any password
    assert "pw-s3cret" not in "\n".join(c.line for c in checks)


# -- the public URL --------------------------------------------------------------------------


async def test_the_liveness_answer_is_ok(liveness: str) -> None:
    check = await check_public_url(liveness, 3)
    assert check.status == "ok" and f"{liveness}/healthz answers" in check.message


async def test_nothing_listening_is_a_warning_with_a_hint() -> None:
    check = await check_public_url(f"http://127.0.0.1:{free_port()}", 3)
    assert check.status == "warn" and "nothing answers" in check.message
    assert "`make run` / `authpipe dev`" in check.message


async def test_an_unknown_host_is_a_warning() -> None:
    check = await check_public_url("https://authpipe.invalid", 3)
    assert check.status == "warn" and "cannot resolve authpipe.invalid" in check.message
    assert "check AUTHPIPE_PUBLIC_URL and this host's DNS" in check.message


async def test_a_silent_server_is_a_warning_after_the_timeout() -> None:
    with HostileServer(drip(5)) as server:
        started = time.monotonic()
        check = await check_public_url(server.url(), 0.5)
    assert check.status == "warn" and "within 0.5 s" in check.message
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (answer(404, b'{"detail": "Not Found"}'), "answered HTTP 404"),
        (answer(200, b"<html>a parked domain</html>"), "answered HTTP 200"),
        (redirect("https://auth.example.com/healthz"), "answered HTTP 302 (redirects to https://auth.example.com/healthz)"),
    ],
)
async def test_something_else_answering_fails(behaviour: object, expected: str) -> None:
    with HostileServer(behaviour) as server:  # type: ignore[arg-type]
        check = await check_public_url(server.url(), 3)
    assert check.status == "FAIL" and expected in check.message and "AUTHPIPE_PUBLIC_URL" in check.message


async def test_a_certificate_this_host_refuses_fails(tmp_path: Path) -> None:
    context, _ = tls_pair(tmp_path)  # signed by a CA nobody trusts
    with HostileServer(LIVENESS, tls=context) as server:
        check = await check_public_url(server.url(), 3)
    assert check.status == "FAIL" and "TLS failed" in check.message and "certificate" in check.message


async def test_credentials_in_the_public_url_are_not_shown() -> None:
    check = await check_public_url(f"http://admin:pw-s3cret@127.0.0.1:{free_port()}", 3)
    assert "pw-s3cret" not in check.message and "http://***@127.0.0.1:" in check.message


# -- egress and workers ---------------------------------------------------------------------


async def test_egress_settings_are_shown(sqlite_url: str) -> None:
    env = {
        "AUTHPIPE_DATABASE_URL": sqlite_url,
        "AUTHPIPE_EGRESS": "any",
        "AUTHPIPE_EGRESS_ALLOW": "idp.internal, 10.1.0.0/16",
        "AUTHPIPE_EGRESS_TIMEOUT": "2.5",
        "AUTHPIPE_EGRESS_MAX_BYTES": "3000",
    }
    check = by_name(await diagnose(env))["egress"]
    assert check.status == "ok"
    assert check.message == "any (no address rule; https except on loopback); allow-list: idp.internal, 10.1.0.0/16; timeout 2.5 s; answers up to 3000 bytes"


async def test_no_recent_heartbeat_is_a_warning_naming_the_fix(database_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": database_url, "AUTHPIPE_MASTER_KEY": new_master_key()}
    runtime = await open_runtime(env)
    try:
        async with runtime.db.writing() as session:  # a worker that went quiet two minutes ago
            long_ago = utcnow() - timedelta(minutes=2)
            session.add(WorkerHeartbeat(hostname="old", pid=1, kind="worker", started_at=long_ago, seen_at=long_ago))
        check = by_name(await diagnose(env))["workers"]
    finally:
        await runtime.close()
    assert check.status == "warn" and "no process running background work seen in the last 90 s" in check.message
    assert "`authpipe worker`" in check.message and "AUTHPIPE_WORKERS=on" in check.message


# -- the command ------------------------------------------------------------------------------


def test_doctor_command_on_a_running_server(sqlite_url: str, tmp_path: Path) -> None:
    key = new_master_key()
    port = free_port()
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": key, "AUTHPIPE_PORT": str(port), "AUTHPIPE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with running_server(["serve"], env):
        deadline = time.monotonic() + 10
        while "1 worker process(es)" not in (result := run("doctor", env=env, cwd=tmp_path)).stdout:
            assert time.monotonic() < deadline, result.stdout
            time.sleep(0.1)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 6 and all(line.startswith("ok    ") for line in lines), result.stdout
    assert "(1 serve)" in lines[-1] and key not in result.stdout

    stopped = run("doctor", env=env, cwd=tmp_path)  # warnings only: still exit 0
    assert stopped.returncode == 0, stopped.stdout
    assert stopped.stdout.count("\nwarn  ") == 2 and "public URL: nothing answers" in stopped.stdout

    failed = run("doctor", env=env | {"AUTHPIPE_MASTER_KEY": new_master_key()}, cwd=tmp_path)
    assert one_line_error(failed, exit_code=1) == "authpipe: error: 1 check(s) failed (the FAIL lines above)"
    assert "FAIL  master key: AUTHPIPE_MASTER_KEY is not the key" in failed.stdout


def test_doctor_command_sees_a_worker_on_postgres(pg_url: str, tmp_path: Path) -> None:
    with_password = make_url(pg_url).set(password="pw-s3cret").render_as_string(hide_password=False)
    env = {"AUTHPIPE_DATABASE_URL": with_password, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_PUBLIC_URL": f"http://127.0.0.1:{free_port()}"}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")} | env
    worker = subprocess.Popen([*CLI, "worker"], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while "(1 worker)" not in (result := run("doctor", env=env, cwd=tmp_path)).stdout:
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, result.stdout
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    assert "ok    master key: AUTHPIPE_MASTER_KEY matches this database" in result.stdout
    assert "pw-s3cret" not in result.stdout + result.stderr
    assert result.returncode == 0  # the public URL not answering is only a warning
