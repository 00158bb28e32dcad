"""The `authpipe` command. Every failure is one readable line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import sys
from typing import Any, Awaitable, Callable, NoReturn, Sequence

from sqlalchemy.exc import SQLAlchemyError

from authpipe_server.config import Settings, decode_master_key, load_settings
from authpipe_server.errors import AuthpipeError, ConfigError
from authpipe_server.store.db import Database, upgrade
from authpipe_server.vault.keys import KEY_BYTES

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="authpipe", description="Authpipe credential broker.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    commands.add_parser("dev", help="sandbox: SQLite, generated master key, project `default`")
    commands.add_parser("serve", help="production server (HTTP API, connect pages, background work)")
    commands.add_parser("worker", help="background work only: proactive refresh, health checks, webhooks")
    commands.add_parser("migrate", help="bring the database schema up to date")

    projects = commands.add_parser("projects", help="projects").add_subparsers(dest="action", required=True, metavar="ACTION")
    projects.add_parser("create", help="create a project; prints its id and a secret key").add_argument("name")

    keys = commands.add_parser("keys", help="secret keys").add_subparsers(dest="action", required=True, metavar="ACTION")
    keys.add_parser("create", help="create a secret key (shown once)").add_argument("--project", required=True)
    keys.add_parser("revoke", help="revoke a secret key").add_argument("prefix", metavar="KEY_PREFIX")

    vault = commands.add_parser("vault", help="master key").add_subparsers(dest="action", required=True, metavar="ACTION")
    vault.add_parser("new-key", help="print a fresh base64 master key")
    rotate = vault.add_parser("rotate", help="re-wrap every data key under a new master key, online")
    rotate.add_argument("--new-key-env", required=True, metavar="VAR", help="environment variable holding the new key")

    tenants = commands.add_parser("tenants", help="tenants").add_subparsers(dest="action", required=True, metavar="ACTION")
    shred = tenants.add_parser("shred", help="destroy a tenant's data key (crypto-shredding)")
    shred.add_argument("--project", required=True)
    shred.add_argument("tenant_id", metavar="TENANT_ID")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    handler = _HANDLERS[(args.command, getattr(args, "action", None))]
    try:
        handler(args)
    except (ConfigError, AuthpipeError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except SQLAlchemyError as exc:
        _fail(f"database error: {_first_line(exc)}", EXIT_FAILED)
    except OSError as exc:
        _fail(f"cannot reach the database: {exc.strerror or exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        sys.exit(130)


def _fail(message: str, code: int) -> NoReturn:
    print(f"authpipe: error: {message}", file=sys.stderr)
    sys.exit(code)


def _first_line(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    """Run `work` on a database whose schema is current (SQLite: migrated here; PostgreSQL: checked)."""
    from authpipe_server.runtime import ensure_schema

    async def run() -> Any:
        db = Database.connect(settings.database_url)
        try:
            await ensure_schema(db, migrate=db.is_sqlite)
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


# -- commands -------------------------------------------------------------------------------


def cmd_new_key(_: argparse.Namespace) -> None:
    print(base64.b64encode(os.urandom(KEY_BYTES)).decode())


def cmd_migrate(_: argparse.Namespace) -> None:
    settings = load_settings()

    async def run() -> None:
        db = Database.connect(settings.database_url)
        try:
            await upgrade(db.engine)
        finally:
            await db.dispose()

    asyncio.run(run())
    print("database schema is up to date")


def cmd_projects_create(args: argparse.Namespace) -> None:
    from authpipe_server import projects

    async def work(db: Database) -> tuple[str, str]:
        async with db.writing() as session:
            project = await projects.create_project(session, args.name)
            key = await projects.create_key(session, project)
            return project.id, key.secret

    project_id, secret = _with_db(load_settings(), work)
    print(f"project: {project_id}")
    print(f"secret key: {secret}")
    print("Keep the secret key safe: it is shown only this once.", file=sys.stderr)


def cmd_keys_create(args: argparse.Namespace) -> None:
    from authpipe_server import projects

    async def work(db: Database) -> str:
        async with db.writing() as session:
            project = await projects.project_by_name(session, args.project)
            return (await projects.create_key(session, project)).secret

    print(_with_db(load_settings(), work))
    print("Keep the secret key safe: it is shown only this once.", file=sys.stderr)


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    from authpipe_server import projects

    async def work(db: Database) -> str:
        async with db.writing() as session:
            return (await projects.revoke_key(session, args.prefix)).prefix

    print(f"revoked {_with_db(load_settings(), work)}…")


def cmd_vault_rotate(args: argparse.Namespace) -> None:
    from authpipe_server.vault import MasterKey
    from authpipe_server.vault.rotation import rotate_master_key

    settings = load_settings()
    if settings.master_key is None:
        raise ConfigError("AUTHPIPE_MASTER_KEY (the current key) is not set")
    new_value = os.environ.get(args.new_key_env)
    if not new_value:
        raise ConfigError(f"{args.new_key_env} is not set; put the new key there (`authpipe vault new-key`)")
    old, new = MasterKey(settings.master_key), MasterKey(decode_master_key(new_value, name=args.new_key_env))

    async def work(db: Database) -> Any:
        return await rotate_master_key(db, old, new)

    report = _with_db(settings, work)
    print(f"rotated to master key {new.id}: {report.rewrapped} data keys re-wrapped, {report.removed_old_wraps} old wraps removed")
    print(f"Now run every process with the new key in AUTHPIPE_MASTER_KEY ({args.new_key_env}).", file=sys.stderr)


def cmd_tenants_shred(args: argparse.Namespace) -> None:
    from authpipe_server import projects
    from authpipe_server.api.params import ID_PATTERN
    from authpipe_server.connections.shredding import ShredReport, shred_tenant_and_connections

    if not re.match(ID_PATTERN, args.tenant_id):
        raise AuthpipeError(f"invalid tenant id {args.tenant_id!r}: 1-256 characters of A-Z a-z 0-9 . _ : @ -")

    async def work(db: Database) -> ShredReport:
        async with db.writing() as session:
            project = await projects.project_by_name(session, args.project)
            return await shred_tenant_and_connections(session, project.id, args.tenant_id)

    report: ShredReport = _with_db(load_settings(), work)
    if report.shredded_versions == 0:
        raise AuthpipeError(f"tenant {args.tenant_id!r} of project {args.project!r} has no data key to shred")
    revoked = f"{report.connections} connection(s) marked revoked"
    if report.keys == 0:
        print(f"tenant {args.tenant_id} was already shredded; {revoked}")
    else:
        print(f"shredded {report.keys} data key(s) of tenant {args.tenant_id}: its stored secrets are now unreadable; {revoked}")


def cmd_serve(_: argparse.Namespace) -> None:
    from authpipe_server.server import serve

    serve(load_settings())


def cmd_worker(_: argparse.Namespace) -> None:
    from authpipe_server.server import work

    work(load_settings())


def cmd_dev(_: argparse.Namespace) -> None:
    from authpipe_server.sandbox import run_sandbox

    run_sandbox()


_HANDLERS: dict[tuple[str, str | None], Callable[[argparse.Namespace], None]] = {
    ("dev", None): cmd_dev,
    ("serve", None): cmd_serve,
    ("worker", None): cmd_worker,
    ("migrate", None): cmd_migrate,
    ("projects", "create"): cmd_projects_create,
    ("keys", "create"): cmd_keys_create,
    ("keys", "revoke"): cmd_keys_revoke,
    ("vault", "new-key"): cmd_new_key,
    ("vault", "rotate"): cmd_vault_rotate,
    ("tenants", "shred"): cmd_tenants_shred,
}


if __name__ == "__main__":
    main()
