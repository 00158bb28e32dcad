"""Saving a grant as a connection: sealed secrets, public columns, its events, its schedule."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.connections.schedule import check_due, refresh_due
from authpipe_server.connections.secrets import seal
from authpipe_server.errors import AuthpipeError
from authpipe_server.events.record import ACCOUNT_CHANGED, CREATED, DELETED, RECOVERED, REVOKED, UPDATED, record_event
from authpipe_server.ids import new_id
from authpipe_server.providers.base import Described, Grant
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection, ConnectSession
from authpipe_server.store.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Owner:
    project_id: str
    tenant_id: str
    user_id: str
    provider: str


class SessionAlreadyCompleted(AuthpipeError):
    """The connect session this grant would complete has completed already; nothing was stored."""


class AccountChangeRefused(AuthpipeError):
    """The grant is for another provider account than the stored connection's, and the caller
    asked to refuse that; nothing was stored."""


async def find_connection_id(runtime: Runtime, owner: Owner) -> str | None:
    async with runtime.db.sessions() as session:
        return await session.scalar(
            select(Connection.id).where(
                Connection.project_id == owner.project_id,
                Connection.tenant_id == owner.tenant_id,
                Connection.user_id == owner.user_id,
                Connection.provider == owner.provider,
            )
        )


async def save_grant(
    runtime: Runtime,
    owner: Owner,
    grant: Grant,
    described: Described,
    requested_scopes: list[str],
    *,
    completes: str | None = None,
    refuse_account_change: bool = False,
) -> tuple[Connection, bool]:
    """Create the connection, or update the one this tenant/user already has at the provider.

    Returns (connection, created). Secrets are sealed before the write transaction opens.
    `completes` names the connect session this grant completes: it is marked completed in the
    same transaction, once (SessionAlreadyCompleted for a second completion). A grant for another
    provider account than the stored one is recorded (`connection.updated` and
    `connection.account_changed`, with `previous_account`), or refused with AccountChangeRefused
    when `refuse_account_change` is set.
    """
    tokens = replace(grant.tokens, resource_tokens=described.resource_tokens or grant.tokens.resource_tokens)
    for _ in range(2):  # a concurrent first connect may win the insert; then we update its row
        existing_id = await find_connection_id(runtime, owner)
        connection_id = existing_id or new_id("conn")
        sealed = Connection(id=connection_id, project_id=owner.project_id, tenant_id=owner.tenant_id)
        await seal(runtime.vault, sealed, tokens)
        try:
            async with runtime.db.writing() as session:
                if completes is not None:
                    await complete_session(session, completes)
                connection = await session.get(Connection, connection_id) if existing_id else None
                created = connection is None
                if connection is None:
                    connection = Connection(id=connection_id, project_id=owner.project_id, tenant_id=owner.tenant_id, user_id=owner.user_id, provider=owner.provider)
                    session.add(connection)
                previous = previous_account(connection, described)
                if previous is not None and refuse_account_change:
                    raise AccountChangeRefused(f"this {owner.provider} connection belongs to another account")
                was_active = connection.status == "active"
                now = utcnow()
                connection.status = "active"
                connection.secrets = sealed.secrets
                connection.account_id = described.account.id
                connection.account_name = described.account.name
                connection.resources = [{"id": r.id, "name": r.name} for r in described.resources]
                connection.scopes = grant.scopes if grant.scopes is not None else requested_scopes
                connection.expires_at = grant.expires_at
                connection.refresh_due_at = refresh_due(grant.expires_at, runtime.settings.refresh_margin, now)
                connection.check_due_at = check_due(runtime.settings.health_interval, now)
                connection.refresh_failures = 0
                connection.last_error_code = connection.last_error_message = None
                connection.last_error_at = None
                await session.flush()
                if created:
                    await record_event(session, connection, CREATED)
                elif not was_active:
                    await record_event(session, connection, RECOVERED)
                if previous is not None:
                    await record_event(session, connection, UPDATED, previous)
                    await record_event(session, connection, ACCOUNT_CHANGED, previous)
            return connection, created
        except IntegrityError:
            continue
    raise RuntimeError("could not save the connection after a concurrent write")


async def complete_session(session: AsyncSession, connect_session_id: str) -> None:
    """Mark the connect session completed; the conditional UPDATE lets exactly one of two
    concurrent completions through (the other's transaction stores nothing)."""
    completed = await session.execute(
        update(ConnectSession)
        .where(ConnectSession.id == connect_session_id, ConnectSession.completed_at.is_(None))
        .values(completed_at=utcnow())
    )
    if completed.rowcount != 1:  # type: ignore[attr-defined]
        raise SessionAlreadyCompleted("this connect session has completed already")


def previous_account(connection: Connection, described: Described) -> dict[str, Any] | None:
    """`{"previous_account": {"id", "name"}}` when the stored connection belongs to another
    provider account than the new grant; None for a new connection or the same account."""
    if connection.account_id is None or connection.account_id == described.account.id:
        return None
    return {"previous_account": {"id": connection.account_id, "name": connection.account_name}}


async def mark_revoked(session: AsyncSession, row: Connection, code: str, message: str) -> None:
    """The grant is gone (the provider refused it, or its tenant's key was destroyed): `revoked`
    for good (410 from now on), no more background work, and `connection.revoked`."""
    row.status = "revoked"
    row.refresh_due_at = row.check_due_at = None
    row.refresh_claimed_until = row.check_claimed_until = None
    row.last_error_code, row.last_error_message, row.last_error_at = code[:64], message[:1024], utcnow()
    await session.flush()
    await record_event(session, row, REVOKED)
    log.info("connection %s revoked (%s)", row.id, code)


async def delete_connection(runtime: Runtime, connection_id: str, *, revocation: dict[str, Any] | None = None) -> bool:
    """Erase the connection (its sealed secrets go with the row) and record `connection.deleted`.
    The caller revokes at the provider first; `revocation` (its outcome) goes into the event."""
    async with runtime.db.writing() as session:
        connection = await session.get(Connection, connection_id)
        if connection is None:
            return False
        await record_event(session, connection, DELETED, {"revocation": revocation} if revocation is not None else None)
        await session.delete(connection)
    return True
