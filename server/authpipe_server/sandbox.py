"""`authpipe dev`: the sandbox. SQLite and keys under `.authpipe/`, project `default` whose secret
key is kept (mode 0600) so every start prints the same one."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from authpipe_server import projects
from authpipe_server.config import decode_master_key, load_settings
from authpipe_server.emulators import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from authpipe_server.providers.apps import app_row, save_app
from authpipe_server.runtime import Runtime
from authpipe_server.sandbox_providers import EMULATOR_OF, PREFIX, emulator_url, overrides
from authpipe_server.server import serve
from authpipe_server.vault.keys import KEY_BYTES

DATA_DIR = Path(".authpipe")
DEFAULT_PROJECT = "default"


def write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; fails if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def master_key(data_dir: Path) -> str:
    """The sandbox's master key: made once into `master.key` (0600), read on later starts."""
    path = data_dir / "master.key"
    if not path.exists():
        write_private(path, base64.b64encode(os.urandom(KEY_BYTES)).decode())
    value = path.read_text().strip()
    decode_master_key(value, name=str(path))
    return value


async def default_project_key(runtime: Runtime, data_dir: Path) -> tuple[str, str]:
    """Project `default` and its secret key, created on first start and reused afterwards."""
    path = data_dir / "default-secret-key"
    async with runtime.db.writing() as session:
        try:
            project = await projects.project_by_name(session, DEFAULT_PROJECT)
        except projects.NotFound:
            project = await projects.create_project(session, DEFAULT_PROJECT)
        if path.exists():
            secret = path.read_text().strip()
            if await projects.project_for_key(session, secret) == project.id:
                return project.id, secret
            path.unlink()
        key = await projects.create_key(session, project)
    write_private(path, key.secret)
    return project.id, key.secret


async def configure_sandbox_providers(runtime: Runtime, project_id: str) -> None:
    """Point every catalog provider of project `default` at its emulator (again at each start, so
    a changed port is followed), unless the project has its own app there."""
    for name in EMULATOR_OF:
        async with runtime.db.sessions() as session:
            existing = await app_row(session, project_id, name)
        if existing is not None and not any(PREFIX in url for url in existing.overrides.values()):
            continue
        await save_app(
            runtime,
            project_id,
            name,
            client_id=None if name == "bluesky" else SANDBOX_CLIENT_ID,
            client_secret=None if name == "bluesky" else SANDBOX_CLIENT_SECRET,
            scopes=[],
            overrides=overrides(name, emulator_url(runtime.settings.public_url, name)),
            definition=None,
        )


def run_sandbox(data_dir: Path = DATA_DIR) -> None:
    data_dir.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("AUTHPIPE_DATABASE_URL", f"sqlite:///{data_dir / 'authpipe.db'}")
    env.setdefault("AUTHPIPE_ACCESS_LOG", "on")  # the sandbox is for watching what happens
    env.setdefault("AUTHPIPE_EGRESS", "loopback")  # its provider emulators live on loopback
    if not env.get("AUTHPIPE_MASTER_KEY"):
        env["AUTHPIPE_MASTER_KEY"] = master_key(data_dir)
    settings = load_settings(env)

    async def announce(runtime: Runtime) -> None:
        project_id, secret = await default_project_key(runtime, data_dir)
        await configure_sandbox_providers(runtime, project_id)
        url = settings.public_url
        print(
            f"\n  Authpipe sandbox\n"
            f"  Dashboard:   {url}/\n"
            f"  Project:     {DEFAULT_PROJECT} ({project_id})\n"
            f"  Secret key:  {secret}\n"
            f"  Try:         curl -H 'Authorization: Bearer {secret}' {url}/v1/connections\n"
            f"  Data:        {data_dir.resolve()} (SQLite, master key; delete it to start over)\n",
            flush=True,
        )

    serve(settings, prepare=announce, sandbox=True)
