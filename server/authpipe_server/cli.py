"""The `authpipe` command. Every failure is one readable line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import sys
import textwrap
from datetime import datetime
from typing import Any, Awaitable, Callable, NoReturn, Sequence

from sqlalchemy.exc import SQLAlchemyError

from authpipe_server import __version__
from authpipe_server.config import Settings, decode_master_key, load_settings
from authpipe_server.errors import AuthpipeError, ConfigError
from authpipe_server.store.db import Database, upgrade
from authpipe_server.vault.keys import KEY_BYTES

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
HELP_WIDTH = 88


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _command(group: Any, name: str, help: str, *examples: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with examples (kept as written: RawDescriptionHelpFormatter)."""
    parser: argparse.ArgumentParser = group.add_parser(
        name,
        help=help,
        description=textwrap.fill(description or help[0].upper() + help[1:] + ".", HELP_WIDTH),
        epilog=_examples(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def port_number(value: str) -> int:
    """argparse type of a TCP port: 1-65535."""
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be a number from 1 to 65535, not {value!r}")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="authpipe",
        description="Authpipe credential broker.",
        epilog=_examples(
            "authpipe dev                      # the sandbox on http://127.0.0.1:8080",
            "authpipe doctor                   # is this installation ready?",
            "authpipe projects create acme     # a project and its first secret key",
            "authpipe keys list --project acme",
        )
        + "\n\nRun `authpipe COMMAND --help` for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    dev = _command(
        commands,
        "dev",
        "sandbox: SQLite, generated master key, project `default`",
        "authpipe dev",
        "authpipe dev --port 8081",
        "authpipe dev --host 0.0.0.0 --port 9000   # reachable from other machines",
        description="The sandbox: SQLite and a generated master key under .authpipe/, project `default` and its "
        "secret key, provider emulators switched on. Serves until Ctrl-C.",
    )
    dev.add_argument("--host", help="address to listen on (default: AUTHPIPE_HOST, else 127.0.0.1)")
    dev.add_argument("--port", type=port_number, help="port to listen on, 1-65535 (default: AUTHPIPE_PORT, else 8080)")
    _command(
        commands,
        "serve",
        "production server (HTTP API, connect pages, background work)",
        "export AUTHPIPE_DATABASE_URL=postgresql://authpipe@db.internal:5432/authpipe",
        "export AUTHPIPE_MASTER_KEY=...        # from your secret store; made once with `authpipe vault new-key`",
        "authpipe migrate && authpipe serve",
        "AUTHPIPE_WORKERS=off authpipe serve   # HTTP only; background work in `authpipe worker` processes",
    )
    _command(
        commands,
        "worker",
        "background work only: proactive refresh, health checks, webhooks",
        "authpipe worker                       # with the same AUTHPIPE_* settings as `authpipe serve`",
    )
    _command(
        commands,
        "migrate",
        "bring the database schema up to date",
        "AUTHPIPE_DATABASE_URL=postgresql://authpipe@db.internal:5432/authpipe authpipe migrate",
        description="Bring the database schema up to date (`serve` and `dev` do it by themselves on SQLite).",
    )
    _command(
        commands,
        "doctor",
        "check this installation: settings, database, master key, public URL, egress, workers",
        "authpipe doctor",
        "AUTHPIPE_PUBLIC_URL=https://auth.example.com authpipe doctor",
        description="Check this installation with the AUTHPIPE_* settings of this shell: one line per check, "
        "`ok`, `warn` or `FAIL`; exits 1 when any check fails. It only reads: it changes nothing.",
    )

    projects = _command(commands, "projects", "projects", "authpipe projects create acme")
    project_actions = projects.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(
        project_actions, "create", "create a project; prints its id and a secret key", "authpipe projects create acme"
    ).add_argument("name", help="1-64 lowercase letters, digits, '-' or '_'")

    keys = _command(
        commands, "keys", "secret keys", "authpipe keys create --project acme", "authpipe keys list --project acme"
    )
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(key_actions, "create", "create a secret key (shown once)", "authpipe keys create --project acme").add_argument(
        "--project", required=True, help="the project's name"
    )
    _command(
        key_actions,
        "list",
        "list a project's secret keys: prefix, created, last used, revoked",
        "authpipe keys list --project acme",
        description="List a project's secret keys, oldest first: the prefix (the key itself is never stored), "
        "when it was created, when it was last used (to the minute), and whether it is revoked.",
    ).add_argument("--project", required=True, help="the project's name")
    _command(
        key_actions, "revoke", "revoke a secret key", "authpipe keys revoke ap_sk_AbCd1234"
    ).add_argument("prefix", metavar="KEY_PREFIX", help="the key's first 10 or more characters, as `keys list` shows them")

    vault = _command(commands, "vault", "master key", "authpipe vault new-key")
    vault_actions = vault.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(
        vault_actions,
        "new-key",
        "print a fresh base64 master key",
        "authpipe vault new-key               # store it in your secret manager, pass it as AUTHPIPE_MASTER_KEY",
    )
    rotate = _command(
        vault_actions,
        "rotate",
        "re-wrap every data key under a new master key, online",
        "export NEW_MASTER_KEY=...            # the new key, from your secret store",
        "authpipe vault rotate --new-key-env NEW_MASTER_KEY",
    )
    rotate.add_argument("--new-key-env", required=True, metavar="VAR", help="environment variable holding the new key")

    tenants = _command(commands, "tenants", "tenants", "authpipe tenants shred --project acme org_acme")
    tenant_actions = tenants.add_subparsers(dest="action", required=True, metavar="ACTION")
    shred = _command(
        tenant_actions,
        "shred",
        "destroy a tenant's data key (crypto-shredding)",
        "authpipe tenants shred --project acme org_acme",
        description="Destroy a tenant's data key (crypto-shredding): its stored secrets become unreadable, "
        "its connections are marked revoked. This cannot be undone.",
    )
    shred.add_argument("--project", required=True, help="the project's name")
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


def cmd_keys_list(args: argparse.Namespace) -> None:
    from authpipe_server import projects
    from authpipe_server.store.models import SecretKey

    async def work(db: Database) -> list[SecretKey]:
        async with db.sessions() as session:
            project = await projects.project_by_name(session, args.project)
            return await projects.list_keys(session, project)

    keys: list[SecretKey] = _with_db(load_settings(), work)
    if not keys:
        print(f"project {args.project!r} has no secret keys; make one with `authpipe keys create --project {args.project}`", file=sys.stderr)
    for key in keys:
        last_used = _when(key.last_used_at) if key.last_used_at else "never"
        revoked = f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active"
        print(f"{key.prefix}…  created {_when(key.created_at)}  last used {last_used:<{WHEN_WIDTH}}  {revoked}")


WHEN_WIDTH = len("2026-01-31 23:59 UTC")


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


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


def cmd_dev(args: argparse.Namespace) -> None:
    from authpipe_server.sandbox.run import run_sandbox

    run_sandbox(host=args.host, port=args.port)


def cmd_doctor(_: argparse.Namespace) -> None:
    from authpipe_server.doctor import diagnose

    checks = asyncio.run(diagnose(os.environ))
    for check in checks:
        print(check.line, flush=True)
    failed = sum(check.status == "FAIL" for check in checks)
    if failed:
        _fail(f"{failed} check(s) failed (the FAIL lines above)", EXIT_FAILED)


_HANDLERS: dict[tuple[str, str | None], Callable[[argparse.Namespace], None]] = {
    ("dev", None): cmd_dev,
    ("serve", None): cmd_serve,
    ("worker", None): cmd_worker,
    ("migrate", None): cmd_migrate,
    ("doctor", None): cmd_doctor,
    ("projects", "create"): cmd_projects_create,
    ("keys", "create"): cmd_keys_create,
    ("keys", "list"): cmd_keys_list,
    ("keys", "revoke"): cmd_keys_revoke,
    ("vault", "new-key"): cmd_new_key,
    ("vault", "rotate"): cmd_vault_rotate,
    ("tenants", "shred"): cmd_tenants_shred,
}


if __name__ == "__main__":
    main()
