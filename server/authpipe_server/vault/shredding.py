"""Crypto-shredding: destroying a tenant's data keys makes every secret sealed under them
unreadable, in the database and in every backup of it. Needs no master key."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.store.models import TenantKey, TenantKeyWrap
from authpipe_server.store.types import utcnow


async def shred_tenant(session: AsyncSession, project_id: str, tenant_id: str) -> int:
    """Delete every wrap of the tenant's live data keys and mark them shredded; returns how many.

    The key rows stay as tombstones, so reading an old secret says "shredded" rather than
    "corrupt", and the tenant's next secret gets a fresh key under the next version.
    """
    ids = (
        await session.scalars(
            select(TenantKey.id).where(
                TenantKey.project_id == project_id, TenantKey.tenant_id == tenant_id, TenantKey.shredded_at.is_(None)
            )
        )
    ).all()
    if ids:
        await session.execute(delete(TenantKeyWrap).where(TenantKeyWrap.tenant_key_id.in_(ids)))
        await session.execute(update(TenantKey).where(TenantKey.id.in_(ids)).values(shredded_at=utcnow()))
    return len(ids)
