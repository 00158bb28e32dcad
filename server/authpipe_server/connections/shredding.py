"""A shredded tenant's connections: their secrets can never be opened again, so they are
`revoked` (code `tenant_shredded`), their sealed secrets erased, and the application told
(`connection.revoked`), in the same transaction that destroys the tenant's data keys.

A connection is marked when its secrets were sealed under a shredded key version (read from the
ciphertext's header: no key is needed), so running the shred again finishes what an earlier run
or another process left (a secret sealed from a stale key cache) and touches nothing sealed
under the tenant's fresh key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.connections.service import mark_revoked
from authpipe_server.store.models import Connection, TenantKey
from authpipe_server.vault import DecryptionFailed
from authpipe_server.vault.envelope import read_key_version
from authpipe_server.vault.shredding import shred_tenant

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

TENANT_SHREDDED = "tenant_shredded"
SHREDDED_MESSAGE = "the tenant's data key was destroyed, and with it this connection's stored credentials; the user must connect again"


@dataclass(frozen=True)
class ShredReport:
    keys: int
    """Live data keys destroyed by this run."""
    shredded_versions: int
    """Key versions of the tenant destroyed by this run or an earlier one."""
    connections: int
    """Connections marked by this run."""


async def shred_tenant_and_connections(session: AsyncSession, project_id: str, tenant_id: str) -> ShredReport:
    keys = await shred_tenant(session, project_id, tenant_id)
    versions = set(
        (
            await session.scalars(
                select(TenantKey.version).where(
                    TenantKey.project_id == project_id, TenantKey.tenant_id == tenant_id, TenantKey.shredded_at.is_not(None)
                )
            )
        ).all()
    )
    marked = 0
    if versions:
        rows = await session.scalars(
            select(Connection).where(
                Connection.project_id == project_id, Connection.tenant_id == tenant_id, Connection.secrets.is_not(None)
            )
        )
        for row in rows.all():
            if _key_version(row.secrets) in versions:
                await mark_shredded(session, row)
                marked += 1
    return ShredReport(keys, len(versions), marked)


async def mark_shredded(session: AsyncSession, row: Connection) -> None:
    """Erase the secrets; a connection not already revoked becomes so, and the app is told."""
    row.secrets = None
    if row.status != "revoked":  # revoked by the provider earlier: the application already knows
        await mark_revoked(session, row, TENANT_SHREDDED, SHREDDED_MESSAGE)


async def mark_connection_shredded(runtime: "Runtime", connection_id: str, seen: bytes | None) -> None:
    """A connection found unreadable because its tenant key is shredded (it slipped past the
    shred): mark it, unless its secrets changed since `seen` was read (then someone reconnected)."""
    async with runtime.db.writing() as session:
        row = await session.get(Connection, connection_id, with_for_update=True, populate_existing=True)
        if row is not None and row.secrets is not None and row.secrets == seen:
            await mark_shredded(session, row)


def _key_version(secrets: bytes | None) -> int | None:
    try:
        return read_key_version(secrets) if secrets else None
    except DecryptionFailed:  # not a ciphertext of ours: not this function's to judge
        return None
