"""The dashboard's reads of connections and events: filters, keyset pages, counts, and what
needs an operator's attention. Every query is scoped to one project.

Pages are keyset pages over the primary key, newest first (ids sort by creation time,
authpipe_server.ids), so a page deep in 100,000 connections costs what the first one does: no
OFFSET. What uses an index today (PostgreSQL and SQLite alike):

- the page walk itself (`id`, the primary key), with the project and any filter applied to the
  rows the walk meets: a filter matching many rows stops the walk early, a rare one reads further;
- `tenant` (the unique index on project, tenant, user, provider);
- a search for a connection id prefix (`conn_01J…`): a range on the primary key.

The other searches (exact user, account id; account name by prefix, case-insensitive; never a
leading wildcard) read the project's rows until a page is full: a rare match reads them all (at
100,000 connections, tens of milliseconds on PostgreSQL; bench/dashboard.py measures it). So do
the overview's totals and its list of what needs attention, once each; the list's own count
stops at COUNT_CAP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from authpipe_server.events.record import REFRESH_FAILED, REVOKED
from authpipe_server.store.models import Connection, Event

STATUSES: tuple[str, ...] = ("active", "error", "revoked")
FAILURE_EVENTS: tuple[str, ...] = (REFRESH_FAILED, REVOKED)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CONNECTION_ID_PREFIX = re.compile(rf"conn_[{_CROCKFORD}]{{0,26}}")

T = TypeVar("T", Connection, Event)


@dataclass(frozen=True)
class ConnectionFilter:
    """What the connection list is narrowed to; None means "any". Values are validated by the
    caller (the page); here they only become SQL parameters."""

    provider: str | None = None
    status: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    q: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        for column, value in (
            (Connection.provider, self.provider),
            (Connection.status, self.status),
            (Connection.tenant_id, self.tenant_id),
            (Connection.user_id, self.user_id),
        ):
            if value is not None:
                found.append(column == value)
        if self.q:
            found.append(search_condition(self.q))
        return found

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.provider, self.status, self.tenant_id, self.user_id, self.q))


def search_condition(q: str) -> ColumnElement[bool]:
    """A connection id prefix (`conn_01J`, any case) is a primary-key range; anything else
    matches a tenant, user or account id exactly, or the start of the account name (any case)."""
    upper = q[:5].lower() + q[5:].upper()
    if CONNECTION_ID_PREFIX.fullmatch(upper):
        body = upper[5:]
        if not body:
            return Connection.id.like("conn\\_%", escape="\\")
        # Every id with this prefix lies in [prefix, next prefix): a range the primary key serves.
        # Ids use only Crockford characters, which sort alike in byte and linguistic collations.
        condition = Connection.id >= upper
        following = _next_prefix(body)
        return condition & (Connection.id < f"conn_{following}") if following else condition
    pattern = _escape_like(q.lower()) + "%"
    return or_(
        Connection.tenant_id == q,
        Connection.user_id == q,
        Connection.account_id == q,
        func.lower(Connection.account_name).like(pattern, escape="\\"),
    )


def _next_prefix(body: str) -> str | None:
    """The smallest Crockford string greater than every string that starts with `body`, or None
    when there is none (`ZZZ`)."""
    chars = list(body)
    while chars:
        last = _CROCKFORD.index(chars[-1])
        if last + 1 < len(_CROCKFORD):
            chars[-1] = _CROCKFORD[last + 1]
            return "".join(chars)
        chars.pop()
    return None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One keyset page, newest first. `newer` / `older` are the cursors of the neighbouring pages
    (`?before=` / `?after=`), None where there is nothing more that way."""

    items: list[T]
    newer: str | None
    older: str | None


async def keyset_page(
    session: AsyncSession,
    query: Select[tuple[T]],
    key: InstrumentedAttribute[str],
    *,
    after: str | None,
    before: str | None,
    limit: int,
) -> Page[T]:
    """Rows of `query` ordered by `key` descending: the `limit` right after the cursor `after`
    (older), or right before `before` (newer), or the first ones. One more row than the page is
    read to tell whether the walk goes on; the other direction costs one indexed probe."""
    if after is not None and before is not None:
        raise ValueError("after and before are exclusive")
    if before is not None:
        rows = list((await session.scalars(query.where(key > before).order_by(key.asc()).limit(limit + 1))).all())
        more_newer = len(rows) > limit
        items = rows[:limit][::-1]
        more_older = bool(items) and await _exists(session, query.where(key < getattr(items[-1], key.key)))
    else:
        bounded = query.where(key < after) if after is not None else query
        rows = list((await session.scalars(bounded.order_by(key.desc()).limit(limit + 1))).all())
        more_older = len(rows) > limit
        items = rows[:limit]
        more_newer = after is not None and bool(items) and await _exists(session, query.where(key > getattr(items[0], key.key)))
    return Page(
        items=items,
        newer=getattr(items[0], key.key) if more_newer else None,
        older=getattr(items[-1], key.key) if more_older else None,
    )


async def _exists(session: AsyncSession, query: Select[Any]) -> bool:
    probe = query.with_only_columns(literal(1)).limit(1)
    return (await session.scalar(probe)) is not None


def project_connections(project_id: str, filters: ConnectionFilter) -> Select[tuple[Connection]]:
    return select(Connection).where(Connection.project_id == project_id, *filters.conditions())


async def connection_page(
    session: AsyncSession,
    project_id: str,
    filters: ConnectionFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> Page[Connection]:
    return await keyset_page(session, project_connections(project_id, filters), Connection.id, after=after, before=before, limit=limit)


COUNT_CAP = 10_000


async def count_connections(session: AsyncSession, project_id: str, filters: ConnectionFilter, *, cap: int = COUNT_CAP) -> int:
    """How many connections match, counted up to `cap` + 1 (more than `cap` reads as "more
    than"): an exact count of a project's 100,000 connections is a scan of them all, on every
    page; the overview has the exact totals."""
    matching = select(literal(1)).select_from(Connection).where(Connection.project_id == project_id, *filters.conditions()).limit(cap + 1)
    return int(await session.scalar(select(func.count()).select_from(matching.subquery())) or 0)


async def connection_events(
    session: AsyncSession,
    project_id: str,
    connection_id: str,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 20,
) -> Page[Event]:
    """The connection's timeline, newest first (the events of a deleted connection stay in the
    log; a connection id is never reused)."""
    query = select(Event).where(Event.project_id == project_id, Event.connection_id == connection_id)
    return await keyset_page(session, query, Event.id, after=after, before=before, limit=limit)


# -- health at a glance ------------------------------------------------------------------------


@dataclass
class Counts:
    """Connections by status, and by provider then status (providers sorted by name)."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)


async def connection_counts(session: AsyncSession, project_id: str) -> Counts:
    """One grouped read of the project's connections."""
    rows = await session.execute(
        select(Connection.provider, Connection.status, func.count())
        .where(Connection.project_id == project_id)
        .group_by(Connection.provider, Connection.status)
    )
    counts = Counts()
    for provider, status, n in sorted(rows.all()):
        counts.total += n
        counts.by_status[status] = counts.by_status.get(status, 0) + n
        counts.by_provider.setdefault(provider, dict.fromkeys(STATUSES, 0))[status] = n
    return counts


AttentionKind = Literal["error", "revoked", "expiring"]


@dataclass(frozen=True)
class Attention:
    """Connections of one kind that need an operator, the most urgent first; `more` says the
    list was cut at the limit."""

    kind: AttentionKind
    connections: list[Connection]
    more: bool


async def needing_attention(
    session: AsyncSession,
    project_id: str,
    now: datetime,
    *,
    limit: int = 10,
    revoked_within: timedelta = timedelta(days=7),
    expiring_within: timedelta = timedelta(hours=24),
) -> list[Attention]:
    """In the order an operator should look: `error` (the token ran out and refreshing keeps
    failing: calls fail now), the latest first; then `revoked` lately (the user must connect
    again), the latest first; then `active` connections whose token runs out soon (or has) while
    their last refreshes failed, the soonest first.

    One read of the project's connections, however many match: each kind is numbered in its
    own order and only the first `limit` + 1 of each come back (a project in a provider outage,
    half its connections failing, costs what a healthy one does)."""
    kind = case((Connection.status == "error", literal("error")), (Connection.status == "revoked", literal("revoked")), else_=literal("expiring"))
    ordinal = func.row_number().over(
        partition_by=kind,
        order_by=(
            case((Connection.status == "active", Connection.expires_at)).asc(),  # expiring: soonest first
            case((Connection.status != "active", Connection.last_error_at)).desc(),  # the others: latest failure first
            Connection.id.desc(),
        ),
    )
    candidates = (
        select(Connection, kind.label("kind"), ordinal.label("ordinal"))
        .where(
            Connection.project_id == project_id,
            or_(
                Connection.status == "error",
                (Connection.status == "revoked") & (Connection.last_error_at >= now - revoked_within),
                (Connection.status == "active")
                & (Connection.refresh_failures > 0)
                & Connection.expires_at.is_not(None)
                & (Connection.expires_at <= now + expiring_within),
            ),
        )
        .subquery()
    )
    row = aliased(Connection, candidates)
    query = select(row, candidates.c.kind).where(candidates.c.ordinal <= limit + 1).order_by(candidates.c.kind, candidates.c.ordinal)
    found: dict[str, list[Connection]] = {"error": [], "revoked": [], "expiring": []}
    for connection, which in await session.execute(query):
        found[which].append(connection)
    kinds: tuple[AttentionKind, ...] = ("error", "revoked", "expiring")
    return [Attention(k, found[k][:limit], len(found[k]) > limit) for k in kinds]


async def recent_failures(session: AsyncSession, project_id: str, *, limit: int = 10) -> list[Event]:
    """The project's latest `connection.refresh_failed` / `connection.revoked` events (walked
    newest first on the project's event index)."""
    query = (
        select(Event)
        .where(Event.project_id == project_id, Event.type.in_(FAILURE_EVENTS))
        .order_by(Event.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


def failure_reason(event: Event) -> dict[str, Any] | None:
    """The `last_error` ({code, message, at}) the connection had when the event was recorded."""
    connection = ((event.data or {}).get("data") or {}).get("connection") or {}
    error = connection.get("last_error")
    return error if isinstance(error, dict) else None
