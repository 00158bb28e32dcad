"""`authpipe doctor`: is this installation ready? One line per check, `ok`, `warn` or `FAIL`.

Doctor only looks: it never migrates, never records a master key, never creates a SQLite file,
so running it cannot change what it reports on. No line ever shows a secret: the master key is
named by its public id, passwords in URLs are replaced by `***`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from authpipe_server.background.heartbeat import LIVE_WINDOW, live_processes
from authpipe_server.config import Settings, decode_master_key, load_settings
from authpipe_server.egress.policy import is_loopback, parse_address
from authpipe_server.errors import ConfigError
from authpipe_server.runtime import NO_MASTER_KEY
from authpipe_server.sandbox.run import DATA_DIR
from authpipe_server.store.db import Database, current_revision, head_revision
from authpipe_server.store.models import VaultMeta
from authpipe_server.vault.keys import master_key_id

Status = Literal["ok", "warn", "FAIL"]

SANDBOX_MASTER_KEY = DATA_DIR / "master.key"
"""Where `authpipe dev` keeps its master key when AUTHPIPE_MASTER_KEY is not set."""
DATABASE_TIMEOUT = 10.0
HTTP_TIMEOUT = 3.0
LIVENESS_PATH = "/healthz"
EGRESS_MODES = {
    "public": "public addresses over https only",
    "loopback": "public addresses, plus loopback over http or https",
    "any": "no address rule; https except on loopback",
}


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    message: str

    @property
    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.message}"


async def diagnose(environ: Mapping[str, str], *, http_timeout: float = HTTP_TIMEOUT) -> list[Check]:
    """Every check, in order. A check that needs what an earlier one found broken says it was
    not run (a warning) rather than failing a second time for the same cause."""
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        return [Check("FAIL", "configuration", str(exc))]
    key = _master_key_source(settings)
    checks = [Check("ok", "configuration", "the AUTHPIPE_* settings are valid")]
    shown_url = redacted_database_url(settings.database_url)
    if settings.is_sqlite and not Path(settings.database_url.database or "").expanduser().exists():
        missing = "not checked: there is no database yet"
        checks.append(
            Check("warn", "database", f"{shown_url} does not exist yet; `authpipe serve` or `authpipe dev` creates it (or run `authpipe migrate`)")
        )
        checks.append(key if isinstance(key, Check) else Check("warn", "master key", missing))
        workers = Check("warn", "workers", missing)
    else:
        db = Database.connect(settings.database_url)
        try:
            database, reachable, revision = await _database(db, settings, shown_url)
            checks.append(database)
            if isinstance(key, Check):
                checks.append(key)
            elif reachable:
                checks.append(await _master_key(db, *key))
            else:
                checks.append(Check("warn", "master key", "not checked: the database is not reachable"))
            if reachable and revision == head_revision():
                workers = await _workers(db)
            else:
                workers = Check("warn", "workers", "not checked: needs a reachable database with an up-to-date schema")
        finally:
            await db.dispose()
    checks.append(await check_public_url(settings.public_url, http_timeout))
    sandbox_key = settings.master_key is None and not isinstance(key, Check)
    checks.append(_egress(settings, sandbox=sandbox_key and not environ.get("AUTHPIPE_EGRESS")))
    checks.append(workers)
    return checks


# -- database ---------------------------------------------------------------------------------


def redacted_database_url(url: URL) -> str:
    """The URL as the user wrote it (no `+driver`), its password replaced by `***`."""
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


async def _database(db: Database, settings: Settings, shown_url: str) -> tuple[Check, bool, str | None]:
    """Reachable, and the schema at this server's head: (the check, reachable, schema revision)."""
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT):
            revision = await current_revision(db.engine)
    except TimeoutError:
        return Check("FAIL", "database", f"{shown_url} did not answer within {DATABASE_TIMEOUT:g} s"), False, None
    except (SQLAlchemyError, OSError) as exc:
        reason = _reason(exc, settings.database_url.password)
        return Check("FAIL", "database", f"cannot reach {shown_url}: {reason}"), False, None
    head = head_revision()
    if revision == head:
        return Check("ok", "database", f"{shown_url} is reachable, schema up to date ({head})"), True, revision
    behind = f"{shown_url} is reachable, but its schema is at {revision or 'nothing'} and this server needs {head}"
    if settings.is_sqlite:
        advice = "; `authpipe serve` migrates SQLite at start (or run `authpipe migrate`)"
        return Check("warn", "database", behind + advice), True, revision
    return Check("FAIL", "database", f"{behind}: run `authpipe migrate`"), True, revision


def _reason(exc: BaseException, password: str | object | None) -> str:
    """One line saying why, with the password (if a driver ever echoed it) taken out."""
    original = getattr(exc, "orig", None) or exc
    text = (getattr(original, "strerror", None) or str(original)).strip()
    line = text.splitlines()[0] if text else type(original).__name__
    if isinstance(password, str) and password:
        line = line.replace(password, "***")
    return line


# -- master key -------------------------------------------------------------------------------


def _master_key_source(settings: Settings) -> tuple[bytes, str] | Check:
    """The master key to check and where it came from, or the failure. Without
    AUTHPIPE_MASTER_KEY, the key `authpipe dev` keeps in this directory is the one in use."""
    if settings.master_key is not None:
        return settings.master_key, "AUTHPIPE_MASTER_KEY"
    if not SANDBOX_MASTER_KEY.is_file():
        return Check("FAIL", "master key", NO_MASTER_KEY)
    try:
        raw = decode_master_key(SANDBOX_MASTER_KEY.read_text(), name=str(SANDBOX_MASTER_KEY))
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        return Check("FAIL", "master key", str(exc) if isinstance(exc, ConfigError) else f"cannot read {SANDBOX_MASTER_KEY}")
    return raw, f"{SANDBOX_MASTER_KEY} (the sandbox's; `serve` and `worker` need AUTHPIPE_MASTER_KEY)"


async def _master_key(db: Database, raw: bytes, source: str) -> Check:
    """The key matches the one the database was set up with, checked by reading only (unlike
    Vault.verify_master_key, which records the key on first start: doctor must not do that, or
    running it with a wrong key against a new database would make that key the database's)."""
    key_id = master_key_id(raw)
    try:
        async with db.sessions() as session:
            meta = await session.get(VaultMeta, 1)
    except (SQLAlchemyError, OSError):
        return Check("warn", "master key", "not checked: the database has no vault table yet (run `authpipe migrate`)")
    if meta is None:
        return Check("warn", "master key", f"{source} (key id {key_id}) is not recorded yet; the first `authpipe serve` records it")
    if key_id in (meta.kek_id, meta.rotating_to):
        return Check("ok", "master key", f"{source} matches this database (key id {key_id})")
    return Check(
        "FAIL",
        "master key",
        f"{source} is not the key this database was set up with (expected key id {meta.kek_id}, got {key_id})",
    )


# -- public URL -------------------------------------------------------------------------------


def redacted_url(url: str) -> str:
    """`url` with any user:password@ replaced by `***@`."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


async def check_public_url(public_url: str, timeout: float) -> Check:
    """Authpipe's liveness route answers at AUTHPIPE_PUBLIC_URL from this host. Nothing answering
    is a warning (the server may simply not be started yet); something else answering, or a TLS
    certificate this host refuses, is a failure: browsers and providers would hit the same."""
    target = f"{public_url}{LIVENESS_PATH}"
    shown = redacted_url(target)
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.get(target)
    except httpx.TimeoutException:
        return Check("warn", "public URL", f"no answer from {shown} within {timeout:g} s; {_start_hint(public_url)}")
    except httpx.HTTPError as exc:
        cause = _cause(exc, ssl.SSLError)
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "verify_message", None) or cause.reason or type(cause).__name__
            return Check("FAIL", "public URL", f"{shown}: TLS failed ({reason})")
        if _cause(exc, socket.gaierror) is not None:
            host = urlsplit(public_url).hostname
            return Check("warn", "public URL", f"cannot resolve {host} ({shown}); check AUTHPIPE_PUBLIC_URL and this host's DNS")
        return Check("warn", "public URL", f"nothing answers at {shown}; {_start_hint(public_url)}")
    if response.status_code == 200 and _is_liveness(response):
        return Check("ok", "public URL", f"{shown} answers")
    where = f" (redirects to {redacted_url(response.headers['location'])})" if response.is_redirect and "location" in response.headers else ""
    return Check(
        "FAIL",
        "public URL",
        f"{shown} answered HTTP {response.status_code}{where}, not Authpipe's liveness answer; is AUTHPIPE_PUBLIC_URL this server's address?",
    )


def _is_liveness(response: httpx.Response) -> bool:
    try:
        return bool(response.json() == {"status": "ok"})
    except ValueError:
        return False


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The first exception of `kind` in what led to `exc`."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _start_hint(public_url: str) -> str:
    host = urlsplit(public_url).hostname or ""
    try:
        local = host == "localhost" or is_loopback(parse_address(host))
    except ValueError:
        local = False
    if local:
        return "is the server running? Start it with `authpipe serve`, or `make run` / `authpipe dev` for the sandbox"
    return "is the server running, and can this host reach it (firewall, load balancer)?"


# -- egress and workers -----------------------------------------------------------------------


def _egress(settings: Settings, *, sandbox: bool) -> Check:
    policy = settings.egress
    allowed = sorted(policy.allow_hosts) + [str(network) for network in policy.allow_networks]
    mode = f"{policy.mode} ({EGRESS_MODES[policy.mode]})"
    if sandbox:
        mode += "; `authpipe dev` uses loopback unless AUTHPIPE_EGRESS is set"
    return Check(
        "ok",
        "egress",
        f"{mode}; allow-list: {', '.join(allowed) or 'none'}; timeout {settings.egress_timeout:g} s; "
        f"answers up to {_size(settings.egress_max_bytes)}",
    )


def _size(count: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= factor and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"


async def _workers(db: Database) -> Check:
    try:
        seen = await live_processes(db)
    except (SQLAlchemyError, OSError) as exc:
        return Check("warn", "workers", f"not checked: {_reason(exc, db.engine.url.password)}")
    window = f"{LIVE_WINDOW:g} s"
    if seen.total == 0:
        return Check(
            "warn",
            "workers",
            f"no process running background work seen in the last {window}: tokens are not refreshed ahead of expiry, "
            "connections not checked, webhooks not sent. Run `authpipe worker`, or `authpipe serve` with AUTHPIPE_WORKERS=on (the default)",
        )
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(seen.by_kind.items()))
    return Check("ok", "workers", f"{seen.total} worker process(es) seen in the last {window} ({kinds})")
