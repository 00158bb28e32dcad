"""The audit log: who did what through the dashboard, when and from where.

Every sign-in (and failed attempt), sign-out and every change made through the dashboard is one
row. Pages record a change after it is made:

    await audit.record(runtime, operator, "key.revoke", key.prefix, request)

(`target`: what was acted on, short and never a secret; `detail`: a small JSON object, never a
secret either). `record` opens its own write transaction, so call it after yours has closed (on
SQLite a second write transaction waits for the first); to write the entry inside your own
transaction, `session.add(audit.entry(...))` instead.

The project of an entry is the request's `project_id` path parameter (the pages carry it in
their path, and have checked it with `auth.project_for` before changing anything), unless given.

Failed sign-ins are also what sign-in throttling counts (`retry_after`), so every process of an
installation refuses the same guesser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, select
from starlette.requests import Request

from authpipe_server.api.throttle import client_address
from authpipe_server.dashboard.sessions import client_host, user_agent
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import AuditEntry
from authpipe_server.store.types import utcnow

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in.failed"
SIGN_OUT = "sign_out"
FAILURE_LIMIT = 5
FAILURE_WINDOW = timedelta(minutes=15)
"""After FAILURE_LIMIT failed sign-ins in FAILURE_WINDOW, from one address or for one email,
sign-in is refused (429) without looking at the password until the oldest of them is that old."""
TARGET_LENGTH = 512
EMAIL_LENGTH = 320
PAGE_SIZE = 50


class HasEmail(Protocol):
    """An operator as far as the log is concerned (auth.Operator is one)."""

    @property
    def id(self) -> str: ...

    @property
    def email(self) -> str: ...


class Viewer(HasEmail, Protocol):
    @property
    def project_ids(self) -> frozenset[str] | None: ...


def entry(
    operator_or_email: HasEmail | str,
    action: str,
    target: str | None,
    request: Request,
    detail: dict[str, Any] | None = None,
    *,
    project_id: str | None = None,
    operator_id: str | None = None,
) -> AuditEntry:
    """The audit row of an action, to `session.add()` inside the caller's own transaction."""
    if isinstance(operator_or_email, str):
        email, who = operator_or_email, operator_id
    else:
        email, who = operator_or_email.email, operator_or_email.id
    host = client_host(request)
    path_project = request.path_params.get("project_id")
    return AuditEntry(
        created_at=utcnow(),
        operator_id=who,
        email=email.strip().lower()[:EMAIL_LENGTH],
        action=action,
        target=target[:TARGET_LENGTH] if target else None,
        project_id=project_id or (path_project if isinstance(path_project, str) else None),
        address=host,
        address_key=client_address(host),
        user_agent=user_agent(request),
        detail=detail,
    )


async def record(
    runtime: Runtime,
    operator_or_email: HasEmail | str,
    action: str,
    target: str | None,
    request: Request,
    detail: dict[str, Any] | None = None,
    *,
    project_id: str | None = None,
    operator_id: str | None = None,
) -> None:
    """Write one audit entry in its own transaction. `operator_or_email`: the signed-in
    operator (auth.Operator), or an email (a failed sign-in: what was typed)."""
    row = entry(operator_or_email, action, target, request, detail, project_id=project_id, operator_id=operator_id)
    async with runtime.db.writing() as session:
        session.add(row)


async def retry_after(runtime: Runtime, request: Request, email: str) -> int | None:
    """Whole seconds until sign-in may be tried again from this request's address and for this
    email, or None when neither is refused."""
    now = utcnow()
    address_key = client_address(client_host(request))
    waits = []
    async with runtime.db.sessions() as session:
        for condition in (AuditEntry.address_key == address_key, AuditEntry.email == email.strip().lower()[:EMAIL_LENGTH]):
            oldest = await session.scalar(
                select(AuditEntry.created_at)
                .where(AuditEntry.action == SIGN_IN_FAILED, condition, AuditEntry.created_at > now - FAILURE_WINDOW)
                .order_by(AuditEntry.created_at.desc())
                .offset(FAILURE_LIMIT - 1)
                .limit(1)
            )
            if oldest is not None:
                waits.append(max(1, math.ceil((oldest + FAILURE_WINDOW - now).total_seconds())))
    return max(waits) if waits else None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    newer: str | None
    """`after` of the page of newer entries, or None on the newest page."""
    older: str | None
    """`before` of the page of older entries, or None on the oldest page."""


def visible_to(operator: Viewer) -> ColumnElement[bool] | None:
    """What an operator limited to some projects sees: entries of those projects, and their
    own (their sign-ins included); None (everything) for an operator of every project."""
    if operator.project_ids is None:
        return None
    own = or_(AuditEntry.operator_id == operator.id, AuditEntry.email == operator.email)
    if not operator.project_ids:
        return own
    return or_(AuditEntry.project_id.in_(sorted(operator.project_ids)), own)


async def page(runtime: Runtime, operator: Viewer, *, before: str | None = None, after: str | None = None, size: int = PAGE_SIZE) -> AuditPage:
    """A keyset page of the entries the operator may see, newest first: the `size` entries
    older than `before`, or newer than `after`, or the newest ones (ids sort by time)."""
    query = select(AuditEntry)
    condition = visible_to(operator)
    if condition is not None:
        query = query.where(condition)
    if after:
        query = query.where(AuditEntry.id > after).order_by(AuditEntry.id.asc())
    else:
        if before:
            query = query.where(AuditEntry.id < before)
        query = query.order_by(AuditEntry.id.desc())
    async with runtime.db.sessions() as session:
        rows = list(await session.scalars(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    if after:
        rows.reverse()
        newer, older = (rows[0].id if more and rows else None), (rows[-1].id if rows else None)
    else:
        newer = rows[0].id if before and rows else None
        older = rows[-1].id if more else None
    return AuditPage(rows, newer, older)


def when(value: datetime) -> str:
    """An entry's time as the page shows it (UTC, to the second)."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")
