"""Starting the sandbox: SQLite and keys under `.authpipe/`, project `default` whose secret key is
kept (mode 0600) so every start prints the same one, its providers pointed at the emulators and its
webhook at the inbox."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from authpipe_server import projects
from authpipe_server.config import decode_master_key, load_settings
from authpipe_server.dashboard.accounts import ensure_sandbox_operator
from authpipe_server.emulators import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from authpipe_server.providers.apps import app_row, save_app
from authpipe_server.runtime import Runtime
from authpipe_server.sandbox import DEFAULT_PROJECT
from authpipe_server.sandbox.providers import EMULATOR_OF, PREFIX, emulator_url, overrides
from authpipe_server.sandbox.inbox import INBOX_PATH, point_webhook_at_inbox
from authpipe_server.server import bind, serve
from authpipe_server.vault.keys import KEY_BYTES

DATA_DIR = Path(".authpipe")


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


def display_host(host: str) -> str:
    """The host part of a URL reaching `host` from this machine: a wildcard address is reached
    on loopback, an IPv6 literal goes in brackets."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def run_sandbox(data_dir: Path = DATA_DIR, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the sandbox on `host`:`port` (default AUTHPIPE_HOST / AUTHPIPE_PORT, else
    127.0.0.1:8080). Unless AUTHPIPE_PUBLIC_URL is set, the public URL follows the address
    actually bound, so the banner, the pages and every OAuth redirect agree."""
    env = dict(os.environ)
    if host is not None:
        env["AUTHPIPE_HOST"] = host
    if port is not None:
        env["AUTHPIPE_PORT"] = str(port)
    env.setdefault("AUTHPIPE_DATABASE_URL", f"sqlite:///{data_dir / 'authpipe.db'}")
    env.setdefault("AUTHPIPE_ACCESS_LOG", "on")  # the sandbox is for watching what happens
    env.setdefault("AUTHPIPE_EGRESS", "loopback")  # its provider emulators live on loopback
    wanted = load_settings(env)  # every variable checked before anything else happens
    sock = bind(wanted.host, wanted.port, hint=f"make run PORT={wanted.port + 1} (or authpipe dev --port {wanted.port + 1})")
    try:
        env["AUTHPIPE_PORT"] = str(sock.getsockname()[1])  # port 0 asks for any free one
        if not env.get("AUTHPIPE_PUBLIC_URL"):
            env["AUTHPIPE_PUBLIC_URL"] = f"http://{display_host(wanted.host)}:{env['AUTHPIPE_PORT']}"
        data_dir.mkdir(mode=0o700, exist_ok=True)
        if not env.get("AUTHPIPE_MASTER_KEY"):
            env["AUTHPIPE_MASTER_KEY"] = master_key(data_dir)
        settings = load_settings(env)
    except BaseException:
        sock.close()
        raise

    async def announce(runtime: Runtime) -> None:
        project_id, secret = await default_project_key(runtime, data_dir)
        await configure_sandbox_providers(runtime, project_id)
        await point_webhook_at_inbox(runtime, project_id)
        await ensure_sandbox_operator(runtime)  # /dashboard signs this machine's browser in as it
        url = settings.public_url
        print(
            f"\n  Authpipe sandbox\n"
            f"  Open:        {url}/\n"
            f"  Dashboard:   {url}/dashboard (signed in automatically)\n"
            f"  Project:     {DEFAULT_PROJECT} ({project_id})\n"
            f"  Secret key:  {secret}\n"
            f"  Try:         curl -H 'Authorization: Bearer {secret}' {url}/v1/connections\n"
            f"  Webhooks:    {url}{INBOX_PATH} (project {DEFAULT_PROJECT}'s deliveries, verified)\n"
            f"  Data:        {data_dir.resolve()} (SQLite, master key; delete it to start over)\n",
            flush=True,
        )

    serve(settings, prepare=announce, sandbox=data_dir, sock=sock)
