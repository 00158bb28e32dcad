"""The `authpipe` command. Every failure is one readable line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import os
import re
import sys
import textwrap
from datetime import datetime
from typing import Any, Awaitable, Callable, NoReturn, Sequence

from sqlalchemy.exc import SQLAlchemyError

from authpipe_server import __version__
from authpipe_server.config import Settings, decode_master_key, load_settings
from authpipe_server.dashboard.accounts import MIN_PASSWORD_LENGTH
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

    admins = _command(
        commands,
        "admins",
        "dashboard operators",
        "authpipe admins create ops@example.com",
        "authpipe admins list",
    )
    admin_actions = admins.add_subparsers(dest="action", required=True, metavar="ACTION")
    admin_create = _command(
        admin_actions,
        "create",
        "create a dashboard operator",
        "authpipe admins create ops@example.com                        # asks for the password twice",
        "authpipe admins create support@example.com --project acme     # sees and changes project acme only",
        "printf '%s\\n' \"$OPS_PASSWORD\" | authpipe admins create ops@example.com   # password from stdin",
        description="Create an operator who signs in to the dashboard at /dashboard. The password (at least "
        f"{MIN_PASSWORD_LENGTH} characters) is asked for twice on a terminal, or read from the first line of stdin "
        "otherwise; it is stored only as an argon2id hash. Without --project the operator sees every project.",
    )
    admin_create.add_argument("email", metavar="EMAIL")
    admin_create.add_argument(
        "--project", action="append", default=[], metavar="NAME", help="limit the operator to this project (repeat for several)"
    )
    _command(
        admin_actions,
        "list",
        "list dashboard operators: email, projects, created, active sessions",
        "authpipe admins list",
    )
    _command(
        admin_actions,
        "delete",
        "delete a dashboard operator; their sessions end at once",
        "authpipe admins delete former@example.com",
    ).add_argument("email", metavar="EMAIL")
    _command(
        admin_actions,
        "reset-password",
        "give an operator a new password; their sessions end at once",
        "authpipe admins reset-password ops@example.com                # asks for the new password twice",
        "printf '%s\\n' \"$NEW_PASSWORD\" | authpipe admins reset-password ops@example.com",
        description="Give an operator a new password (asked for twice on a terminal, else the first line of stdin) "
        "and sign them out everywhere: every session of theirs ends at once.",
    ).add_argument("email", metavar="EMAIL")

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


def read_password(prompt: str = "Password") -> str:
    """A new password: typed twice on a terminal (not echoed), else the first line of stdin.
    Checked (length) before anything is hashed or stored."""
    from authpipe_server.dashboard.accounts import AccountError, check_password

    if sys.stdin.isatty():
        password = getpass.getpass(f"{prompt} (at least {MIN_PASSWORD_LENGTH} characters): ")
        check_password(password)
        if getpass.getpass("Repeat it: ") != password:
            raise AccountError("the two passwords differ; nothing was changed")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            raise AccountError("no password on stdin: pipe it in as the first line, or run this on a terminal to be asked")
        check_password(password)
    return password


def cmd_admins_create(args: argparse.Namespace) -> None:
    from authpipe_server.dashboard import accounts

    email = accounts.normalize_email(args.email)
    settings = load_settings()

    async def check(db: Database) -> None:
        async with db.sessions() as session:
            await accounts.project_ids_named(session, args.project)
            if await accounts.find_operator(session, email) is not None:
                raise accounts.AccountError(f"an operator {email} already exists")

    _with_db(settings, check)  # before asking for a password, not after
    password_hash = accounts.hash_password(read_password())

    async def work(db: Database) -> None:
        async with db.writing() as session:
            project_ids = await accounts.project_ids_named(session, args.project)
            await accounts.create_operator(session, email, password_hash, project_ids)

    _with_db(settings, work)
    names = list(dict.fromkeys(args.project))
    scope = "all projects" if not names else ("project " if len(names) == 1 else "projects ") + ", ".join(names)
    print(f"created operator {email} ({scope}); they sign in at {settings.public_url}/dashboard")


def cmd_admins_list(_: argparse.Namespace) -> None:
    from sqlalchemy import func, select

    from authpipe_server.dashboard import accounts
    from authpipe_server.dashboard.sessions import IDLE_TIMEOUT
    from authpipe_server.store.models import OperatorSession, Project
    from authpipe_server.store.types import utcnow

    async def work(db: Database) -> list[tuple[Any, str, int]]:
        now = utcnow()
        async with db.sessions() as session:
            operators = await accounts.list_operators(session)
            names = dict((await session.execute(select(Project.id, Project.name))).all())
            live = dict(
                (
                    await session.execute(
                        select(OperatorSession.operator_id, func.count())
                        .where(
                            OperatorSession.revoked_at.is_(None),
                            OperatorSession.expires_at > now,
                            OperatorSession.last_seen_at > now - IDLE_TIMEOUT,
                        )
                        .group_by(OperatorSession.operator_id)
                    )
                ).all()
            )
        rows = []
        for operator in operators:
            if operator.project_ids is None:
                scope = "all projects"
            else:
                scope = ", ".join(names.get(pid, f"(deleted {pid})") for pid in operator.project_ids) or "no projects"
            rows.append((operator, scope, live.get(operator.id, 0)))
        return rows

    rows = _with_db(load_settings(), work)
    if not rows:
        print("no operators yet; make one with `authpipe admins create EMAIL`", file=sys.stderr)
    width = max((len(operator.email) for operator, _, _ in rows), default=0)
    for operator, scope, live in rows:
        print(f"{operator.email:<{width}}  created {_when(operator.created_at)}  {live} active session(s)  {scope}")


def cmd_admins_delete(args: argparse.Namespace) -> None:
    from authpipe_server.dashboard import accounts

    email = accounts.normalize_email(args.email)

    async def work(db: Database) -> int:
        async with db.writing() as session:
            return await accounts.delete_operator(session, email)

    ended = _with_db(load_settings(), work)
    print(f"deleted operator {email}; {ended} session(s) ended")


def cmd_admins_reset_password(args: argparse.Namespace) -> None:
    from authpipe_server.dashboard import accounts

    email = accounts.normalize_email(args.email)
    settings = load_settings()

    async def exists(db: Database) -> None:
        async with db.sessions() as session:
            await accounts.get_operator(session, email)

    _with_db(settings, exists)  # before asking for a password, not after
    password_hash = accounts.hash_password(read_password("New password"))

    async def work(db: Database) -> int:
        async with db.writing() as session:
            return await accounts.set_password(session, email, password_hash)

    ended = _with_db(settings, work)
    print(f"new password set for {email}; {ended} session(s) ended")


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
    ("admins", "create"): cmd_admins_create,
    ("admins", "list"): cmd_admins_list,
    ("admins", "delete"): cmd_admins_delete,
    ("admins", "reset-password"): cmd_admins_reset_password,
    ("keys", "create"): cmd_keys_create,
    ("keys", "list"): cmd_keys_list,
    ("keys", "revoke"): cmd_keys_revoke,
    ("vault", "new-key"): cmd_new_key,
    ("vault", "rotate"): cmd_vault_rotate,
    ("tenants", "shred"): cmd_tenants_shred,
}


if __name__ == "__main__":
    main()
