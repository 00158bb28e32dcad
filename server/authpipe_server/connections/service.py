"""Saving a grant as a connection: sealed secrets, public columns, its event, its schedule."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from authpipe_server.connections.schedule import check_due, refresh_due
from authpipe_server.connections.secrets import seal
from authpipe_server.events.record import CREATED, DELETED, RECOVERED, record_event
from authpipe_server.ids import new_id
from authpipe_server.providers.base import Described, Grant
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow


@dataclass(frozen=True)
class Owner:
    project_id: str
    tenant_id: str
    user_id: str
    provider: str


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
    runtime: Runtime, owner: Owner, grant: Grant, described: Described, requested_scopes: list[str]
) -> tuple[Connection, bool]:
    """Create the connection, or update the one this tenant/user already has at the provider.

    Returns (connection, created). Secrets are sealed before the write transaction opens.
    """
    tokens = replace(grant.tokens, resource_tokens=described.resource_tokens or grant.tokens.resource_tokens)
    for _ in range(2):  # a concurrent first connect may win the insert; then we update its row
        existing_id = await find_connection_id(runtime, owner)
        connection_id = existing_id or new_id("conn")
        sealed = Connection(id=connection_id, project_id=owner.project_id, tenant_id=owner.tenant_id)
        await seal(runtime.vault, sealed, tokens)
        try:
            async with runtime.db.writing() as session:
                connection = await session.get(Connection, connection_id) if existing_id else None
                created = connection is None
                if connection is None:
                    connection = Connection(id=connection_id, project_id=owner.project_id, tenant_id=owner.tenant_id, user_id=owner.user_id, provider=owner.provider)
                    session.add(connection)
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
            return connection, created
        except IntegrityError:
            continue
    raise RuntimeError("could not save the connection after a concurrent write")


async def delete_connection(runtime: Runtime, connection_id: str) -> bool:
    """Erase the connection (its sealed secrets go with the row) and record `connection.deleted`.
    The caller revokes at the provider first."""
    async with runtime.db.writing() as session:
        connection = await session.get(Connection, connection_id)
        if connection is None:
            return False
        await record_event(session, connection, DELETED)
        await session.delete(connection)
    return True
