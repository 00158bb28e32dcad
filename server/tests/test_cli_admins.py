"""`authpipe admins …` as a user runs it: a subprocess, the password from stdin or typed twice on
a terminal, one readable line on bad input, and sessions that end with the account or its password."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import select
import subprocess
import termios
import time

import pytest
from sqlalchemy import select as sql_select

from authpipe_server.config import load_settings
from authpipe_server.dashboard import accounts, sessions
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Operator as OperatorRow
from authpipe_server.store.models import OperatorSession
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import new_token, token_hash
from tests.conftest import new_master_key
from tests.processes import CLI
from tests.test_cli import one_line_error, run

PASSWORD = "correct horse battery staple"


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {"AUTHPIPE_DATABASE_URL": database_url, "AUTHPIPE_MASTER_KEY": new_master_key()}


def admins(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")} | env
    return subprocess.run([*CLI, "admins", *args], env=full_env, input=stdin, capture_output=True, text=True, timeout=60)


def in_database(env: dict[str, str], work: object) -> object:
    async def go() -> object:
        runtime = await Runtime.open(load_settings(env))
        try:
            return await work(runtime)  # type: ignore[operator]
        finally:
            await runtime.close()

    return asyncio.run(go())


def live_session(env: dict[str, str], email: str) -> str:
    """A signed-in browser's session token for `email`, made as the sign-in page makes one."""

    async def work(runtime: Runtime) -> str:
        token = new_token()
        async with runtime.db.writing() as session:
            operator = await accounts.get_operator(session, email)
            now = utcnow()
            session.add(OperatorSession(
                operator_id=operator.id, token_hash=token_hash(token), csrf_token=new_token(),
                expires_at=now + sessions.ABSOLUTE_TIMEOUT, last_seen_at=now,
            ))
        return token

    return str(in_database(env, work))


def session_alive(env: dict[str, str], token: str) -> bool:
    async def work(runtime: Runtime) -> bool:
        return await sessions.find(runtime.db, token) is not None

    return bool(in_database(env, work))


def test_create_list_reset_delete(env: dict[str, str]) -> None:
    assert run("projects", "create", "acme", env=env).returncode == 0
    assert run("projects", "create", "beta", env=env).returncode == 0
    created = admins("create", "Ops@Example.com", env=env, stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert created.stdout == "created operator ops@example.com (all projects); they sign in at http://127.0.0.1:8080/dashboard\n"
    limited = admins("create", "support@example.com", "--project", "acme", "--project", "beta", env=env, stdin=PASSWORD)
    assert limited.returncode == 0 and "(projects acme, beta)" in limited.stdout, limited.stderr
    assert PASSWORD not in created.stdout + created.stderr + limited.stdout + limited.stderr

    async def stored(runtime: Runtime) -> list[OperatorRow]:
        async with runtime.db.sessions() as session:
            return list(await session.scalars(sql_select(OperatorRow).order_by(OperatorRow.email)))

    rows = in_database(env, stored)
    assert [r.email for r in rows] == ["ops@example.com", "support@example.com"]  # type: ignore[attr-defined]
    assert all(r.password_hash.startswith("$argon2id$") and accounts.hasher.verify(r.password_hash, PASSWORD) for r in rows)  # type: ignore[attr-defined]

    token = live_session(env, "ops@example.com")
    listed = admins("list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"ops@example\.com      created \d{4}-\d\d-\d\d \d\d:\d\d UTC  1 active session\(s\)  all projects", lines[0]), lines
    assert re.fullmatch(r"support@example\.com  created .* UTC  0 active session\(s\)  acme, beta", lines[1]), lines

    reset = admins("reset-password", "OPS@example.com", env=env, stdin="a different password\n")
    assert reset.returncode == 0 and reset.stdout == "new password set for ops@example.com; 1 session(s) ended\n", reset.stderr
    assert not session_alive(env, token)

    token = live_session(env, "support@example.com")
    deleted = admins("delete", "support@example.com", env=env)
    assert deleted.returncode == 0 and deleted.stdout == "deleted operator support@example.com; 1 session(s) ended\n"
    assert not session_alive(env, token)
    assert [line.split()[0] for line in admins("list", env=env).stdout.splitlines()] == ["ops@example.com"]


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["create", "ops@example.com"], "eleven char\n", "the password is too short: use at least 12 characters"),
        (["create", "ops@example.com"], "", "no password on stdin"),
        (["create", "not-an-email"], PASSWORD, "'not-an-email' is not an email address"),
        (["create", "ops@example.com", "--project", "nope"], PASSWORD, "no project named 'nope'"),
        (["delete", "nobody@example.com"], "", "no operator nobody@example.com"),
        (["reset-password", "nobody@example.com"], PASSWORD, "no operator nobody@example.com"),
    ],
)
def test_bad_input_is_one_line(sqlite_url: str, args: list[str], stdin: str, expected: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key()}
    line = one_line_error(admins(*args, env=env, stdin=stdin))
    assert line.startswith("authpipe: error: ") and expected in line, line
    assert admins("list", env=env).stdout == ""


def test_an_existing_email_is_refused_before_the_password_is_asked(sqlite_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key()}
    assert admins("create", "ops@example.com", env=env, stdin=PASSWORD).returncode == 0
    line = one_line_error(admins("create", "OPS@example.com", env=env, stdin=""))  # nothing on stdin: never read
    assert line == "authpipe: error: an operator ops@example.com already exists"


def test_no_operators_says_how_to_make_one(sqlite_url: str) -> None:
    listed = admins("list", env={"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key()})
    assert listed.returncode == 0 and listed.stdout == ""
    assert "authpipe admins create EMAIL" in listed.stderr


def _take_terminal() -> None:
    """In the child, after setsid: make its stdin (the pty) its controlling terminal, as a login
    shell's is, so getpass prompts on /dev/tty and turns echo off."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_a_terminal(args: list[str], env: dict[str, str], answers: list[str]) -> tuple[int, str]:
    """Run `authpipe admins …` on a terminal, typing each answer after its prompt; the exit
    code and everything the terminal showed."""
    main, child = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")} | env
    process = subprocess.Popen(
        [*CLI, "admins", *args], env=full_env, stdin=child, stdout=child, stderr=child,
        start_new_session=True, preexec_fn=_take_terminal,
    )
    os.close(child)
    shown = b""
    answered = 0  # how much of `shown` had been seen at the last answer
    pending = list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 1024)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if pending and shown[answered:].strip().endswith(b":"):  # a new prompt
                    os.write(main, pending.pop(0).encode() + b"\n")
                    answered = len(shown)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=30)
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, shown.decode(errors="replace")


def test_on_a_terminal_the_password_is_asked_twice(sqlite_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key()}
    code, shown = on_a_terminal(["create", "ops@example.com"], env, [PASSWORD, PASSWORD])
    assert code == 0, shown
    assert "Password (at least 12 characters): " in shown and "Repeat it: " in shown
    assert PASSWORD not in shown  # not echoed
    code, shown = on_a_terminal(["reset-password", "ops@example.com"], env, [PASSWORD + "!", PASSWORD + "?"])
    assert code == 2 and "the two passwords differ; nothing was changed" in shown, shown
