"""Typed results, and their parsing from the server's JSON (tolerant of extra or missing fields,
as an older SDK must be against a newer server). Secrets are left out of every `repr`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authpipe._errors import AuthpipeError

__all__ = [
    "Account",
    "ConnectSession",
    "Connection",
    "ConnectionPage",
    "Credential",
    "Event",
    "EventPage",
    "LastError",
    "Provider",
    "ProviderScope",
    "Resource",
    "Webhook",
]


@dataclass(frozen=True, slots=True)
class Credential:
    """What to put in `Authorization: Bearer …` at the provider. The token is not in the repr."""

    credential: str = field(repr=False)
    token_type: str
    expires_at: datetime | None
    """Aware UTC; None when the provider gave no lifetime."""
    connection_id: str
    provider: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class Resource:
    """Something the grant reaches that has its own token (a Facebook Page: `page:123`)."""

    id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class LastError:
    code: str
    message: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Connection:
    """One user's grant at one provider, as the server shows it (never a secret)."""

    id: str
    provider: str
    tenant_id: str
    user_id: str
    status: str
    """`active`, `error` or `revoked`."""
    account: Account | None
    resources: tuple[Resource, ...]
    scopes: tuple[str, ...]
    expires_at: datetime | None
    created_at: datetime | None
    last_refreshed_at: datetime | None
    last_checked_at: datetime | None
    last_error: LastError | None


@dataclass(frozen=True, slots=True)
class ConnectionPage:
    connections: tuple[Connection, ...]
    next_cursor: str | None
    """Pass as `cursor` for the next page; None on the last one."""


@dataclass(frozen=True, slots=True)
class ConnectSession:
    """`token` (`ap_cs_…`) is safe to hand to a browser: it only starts connections for its tenant and user."""

    token: str
    connect_url: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProviderScope:
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    display_name: str
    auth_mode: str
    scopes: tuple[ProviderScope, ...]
    configured: bool


@dataclass(frozen=True, slots=True)
class Webhook:
    """The endpoint and its signing secret (returned only by `set_webhook`; not in the repr)."""

    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Event:
    id: str | None
    type: str
    """`connection.created`, `connection.refresh_failed`, `connection.revoked`, `connection.recovered`, `connection.deleted`…"""
    created_at: datetime | None
    connection_id: str | None
    data: dict[str, Any]
    """`{"connection": {…}}`, as in the webhook body."""


@dataclass(frozen=True, slots=True)
class EventPage:
    events: tuple[Event, ...]
    next_cursor: str | None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _cursor(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime (naive means UTC); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_credential(body: Any) -> Credential:
    o = _object(body)
    if not isinstance(o.get("credential"), str):
        raise AuthpipeError("Authpipe answered without a credential", code="invalid_response", status=200)
    return Credential(
        credential=o["credential"],
        token_type=_str(o.get("token_type"), "bearer"),
        expires_at=parse_time(o.get("expires_at")),
        connection_id=_str(o.get("connection_id")),
        provider=_str(o.get("provider")),
        scopes=_strs(o.get("scopes")),
    )


def parse_connection(body: Any) -> Connection:
    o = _object(body)
    account = o.get("account")
    last_error = o.get("last_error")
    return Connection(
        id=_str(o.get("id")),
        provider=_str(o.get("provider")),
        tenant_id=_str(o.get("tenant_id")),
        user_id=_str(o.get("user_id")),
        status=_str(o.get("status")),
        account=Account(_str(account.get("id")), _opt_str(account.get("name"))) if isinstance(account, dict) else None,
        resources=tuple(Resource(_str(r.get("id")), _opt_str(r.get("name"))) for r in o.get("resources") or [] if isinstance(r, dict)),
        scopes=_strs(o.get("scopes")),
        expires_at=parse_time(o.get("expires_at")),
        created_at=parse_time(o.get("created_at")),
        last_refreshed_at=parse_time(o.get("last_refreshed_at")),
        last_checked_at=parse_time(o.get("last_checked_at")),
        last_error=(
            LastError(_str(last_error.get("code")), _str(last_error.get("message")), parse_time(last_error.get("at")))
            if isinstance(last_error, dict)
            else None
        ),
    )


def parse_connection_page(body: Any) -> ConnectionPage:
    o = _object(body)
    return ConnectionPage(
        connections=tuple(parse_connection(c) for c in o.get("connections") or []),
        next_cursor=_cursor(o.get("next_cursor")),
    )


def parse_connect_session(body: Any) -> ConnectSession:
    o = _object(body)
    if not isinstance(o.get("token"), str):
        raise AuthpipeError("Authpipe answered without a session token", code="invalid_response", status=201)
    return ConnectSession(token=o["token"], connect_url=_str(o.get("connect_url")), expires_at=parse_time(o.get("expires_at")))


def parse_provider(body: Any) -> Provider:
    o = _object(body)
    return Provider(
        name=_str(o.get("name")),
        display_name=_str(o.get("display_name")),
        auth_mode=_str(o.get("auth_mode")),
        scopes=tuple(ProviderScope(_str(s.get("name")), _str(s.get("description"))) for s in o.get("scopes") or [] if isinstance(s, dict)),
        configured=o.get("configured") is True,
    )


def parse_providers(body: Any) -> list[Provider]:
    return [parse_provider(p) for p in _object(body).get("providers") or []]


def parse_webhook(body: Any) -> Webhook:
    o = _object(body)
    return Webhook(url=_str(o.get("url")), secret=_str(o.get("secret")))


def parse_event_page(body: Any) -> EventPage:
    o = _object(body)
    return EventPage(
        events=tuple(
            Event(
                id=_opt_str(e.get("id")),
                type=_str(e.get("type")),
                created_at=parse_time(e.get("created_at") or e.get("timestamp")),  # `timestamp` in webhook bodies
                connection_id=_opt_str(e.get("connection_id")),
                data=_object(e.get("data")),
            )
            for e in o.get("events") or []
            if isinstance(e, dict)
        ),
        next_cursor=_cursor(o.get("next_cursor")),
    )
