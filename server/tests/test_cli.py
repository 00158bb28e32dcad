"""The `authpipe` command as a user runs it: a subprocess, its output, its exit code."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_master_key
from tests.processes import CLI, free_port, running_server


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")}
    full_env.update(env or {})
    return subprocess.run([*CLI, *args], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str], *, exit_code: int = 2) -> str:
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_new_key_is_32_random_bytes() -> None:
    first, second = run("vault", "new-key"), run("vault", "new-key")
    assert len(base64.b64decode(first.stdout.strip())) == 32
    assert first.stdout != second.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "authpipe vault new-key"),
        ({"AUTHPIPE_MASTER_KEY": "not base64!"}, "AUTHPIPE_MASTER_KEY is not valid base64"),
        ({"AUTHPIPE_MASTER_KEY": base64.b64encode(b"short").decode()}, "must decode to 32 bytes"),
        ({"AUTHPIPE_DATABASE_URL": "mysql://db/authpipe"}, "must start with sqlite:/// or postgresql://"),
        ({"AUTHPIPE_DATABASE_URL": "not a url"}, "is not a database URL"),
        ({"AUTHPIPE_PORT": "eighty"}, "AUTHPIPE_PORT"),
        ({"AUTHPIPE_REFRESH_MARGIN": "0"}, "AUTHPIPE_REFRESH_MARGIN"),
        ({"AUTHPIPE_WORKERS": "sometimes"}, "AUTHPIPE_WORKERS"),
        ({"AUTHPIPE_PUBLIC_URL": "javascript:alert(1)"}, "AUTHPIPE_PUBLIC_URL"),
    ],
)
def test_serve_refuses_bad_configuration_in_one_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": f"sqlite:///{tmp_path}/a.db", "AUTHPIPE_PORT": "0", **env}
    if "AUTHPIPE_MASTER_KEY" not in env and expected != "authpipe vault new-key":
        env["AUTHPIPE_MASTER_KEY"] = new_master_key()
    assert expected in one_line_error(run("serve", env=env))


def test_unreachable_database_is_one_line() -> None:
    env = {"AUTHPIPE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "AUTHPIPE_MASTER_KEY": new_master_key()}
    line = one_line_error(run("projects", "create", "x", env=env))
    assert "database" in line


def test_projects_keys_and_revocation(sqlite_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url}
    created = run("projects", "create", "acme", env=env)
    assert created.returncode == 0, created.stderr
    project_id = re.search(r"project: (proj_\w+)", created.stdout).group(1)  # type: ignore[union-attr]
    first_key = re.search(r"secret key: (ap_sk_\S+)", created.stdout).group(1)  # type: ignore[union-attr]
    assert len(first_key) >= len("ap_sk_") + 43  # 32 random bytes, base64url
    assert "already exists" in one_line_error(run("projects", "create", "acme", env=env))
    assert "invalid project name" in one_line_error(run("projects", "create", "Bad Name", env=env))

    second = run("keys", "create", "--project", "acme", env=env)
    assert second.returncode == 0 and second.stdout.startswith("ap_sk_")
    assert "no project named 'nope'" in one_line_error(run("keys", "create", "--project", "nope", env=env))
    assert "the following arguments are required: --project" in one_line_error(run("keys", "create", env=env))

    revoked = run("keys", "revoke", first_key[:14], env=env)
    assert revoked.returncode == 0 and first_key not in revoked.stdout
    assert "no active secret key" in one_line_error(run("keys", "revoke", first_key[:14], env=env))
    assert "at least the first 10 characters" in one_line_error(run("keys", "revoke", "ap_sk_", env=env))
    assert project_id.startswith("proj_")


def test_shred_unknown_tenant_and_bad_tenant_id(sqlite_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url}
    assert run("projects", "create", "acme", env=env).returncode == 0
    assert "has no data key" in one_line_error(run("tenants", "shred", "--project", "acme", "org_x", env=env))
    assert "invalid tenant id" in one_line_error(run("tenants", "shred", "--project", "acme", "bad tenant", env=env))
    assert "no project named" in one_line_error(run("tenants", "shred", "--project", "nope", "org_x", env=env))


def test_wrong_master_key_refuses_to_start(sqlite_url: str) -> None:
    good = new_master_key()
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_PORT": str(free_port())}
    with running_server(["serve"], {**env, "AUTHPIPE_MASTER_KEY": good}):
        pass
    line = one_line_error(run("serve", env={**env, "AUTHPIPE_MASTER_KEY": new_master_key()}))
    assert "not the key this database was set up with" in line and good not in line


def test_postgres_needs_migrate_before_serve(pg_template: str) -> None:
    import asyncio
    import uuid

    from tests import conftest

    name = f"authpipe_m_{uuid.uuid4().hex[:12]}"
    asyncio.run(conftest._pg_execute(f'CREATE DATABASE "{name}"'))
    try:
        env = {"AUTHPIPE_DATABASE_URL": conftest._pg_dsn(name), "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_PORT": str(free_port())}
        assert "run `authpipe migrate`" in one_line_error(run("serve", env=env))
        migrated = run("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        with running_server(["serve"], env):
            pass
    finally:
        asyncio.run(conftest._pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_vault_rotate_command(sqlite_url: str) -> None:
    import asyncio

    from authpipe_server.config import load_settings
    from authpipe_server.runtime import Runtime
    from authpipe_server.vault import MasterKey, Place, Vault

    from authpipe_server import projects

    old, new = new_master_key(), new_master_key()

    async def seal() -> tuple[Place, bytes]:
        rt = await Runtime.open(load_settings({"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": old}))
        try:
            async with rt.db.writing() as session:
                project = await projects.create_project(session, "acme")
            place = Place(project.id, "org_acme", "connections", "conn_1", "secrets")
            return place, await rt.vault.encrypt(place, b"token")
        finally:
            await rt.close()

    async def open_with(key: str, place: Place, blob: bytes) -> bytes:
        rt = await Runtime.open(load_settings({"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": key}))
        try:
            return await Vault(rt.db, [MasterKey(base64.b64decode(key))]).decrypt(place, blob)
        finally:
            await rt.close()

    place, blob = asyncio.run(seal())
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": old}
    assert "NEW_KEY is not set" in one_line_error(run("vault", "rotate", "--new-key-env", "NEW_KEY", env=env))
    assert "must decode to 32 bytes" in one_line_error(run("vault", "rotate", "--new-key-env", "NEW_KEY", env={**env, "NEW_KEY": "c2hvcnQ="}))
    rotated = run("vault", "rotate", "--new-key-env", "NEW_KEY", env={**env, "NEW_KEY": new})
    assert rotated.returncode == 0 and "1 data keys re-wrapped" in rotated.stdout, rotated.stderr
    assert new not in rotated.stdout + rotated.stderr and old not in rotated.stdout + rotated.stderr
    assert asyncio.run(open_with(new, place, blob)) == b"token"


def test_unknown_command_is_one_line() -> None:
    assert "invalid choice" in one_line_error(run("frobnicate"))


# -- the sandbox --------------------------------------------------------------------------


def test_dev_sandbox_keeps_its_key_across_restarts(tmp_path: Path) -> None:
    env = {"AUTHPIPE_PORT": str(free_port())}
    env["AUTHPIPE_PUBLIC_URL"] = f"http://127.0.0.1:{env['AUTHPIPE_PORT']}"
    keys = []
    for _ in range(2):
        with running_server(["dev"], env, cwd=tmp_path) as server:
            key = (tmp_path / ".authpipe" / "default-secret-key").read_text().strip()
            response = httpx.get(f"{env['AUTHPIPE_PUBLIC_URL']}/v1/connections", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200
            assert "Next steps" in httpx.get(env["AUTHPIPE_PUBLIC_URL"] + "/").text
        assert f"Secret key:  {key}" in server.output
        keys.append(key)
    assert keys[0] == keys[1]
    for name in ("master.key", "default-secret-key"):
        assert (tmp_path / ".authpipe" / name).stat().st_mode & 0o777 == 0o600
