"""Master-key rotation, online: data keys gain a second wrap under the new key while the old
wraps stay, so servers still running on the old key read everything until the run finishes.

    1. mark the rotation (servers started with either key are accepted from now on)
    2. add a new-key wrap to every data key that lacks one, in batches
    3. make the new key current (no process on the old key may create data keys after this)
    4. sweep again: data keys created on the old key between 2 and 3 get their new wrap
    5. delete the old wraps: the old key is no longer accepted

A run that stops half-way is resumed by running the same command again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import delete, select
from sqlalchemy.orm import aliased

from authpipe_server.store.db import Database
from authpipe_server.store.models import TenantKey, TenantKeyWrap, VaultMeta
from authpipe_server.store.types import utcnow
from authpipe_server.vault.errors import MasterKeyMismatch, VaultError
from authpipe_server.vault.keys import MasterKey, wrap_context


@dataclass
class RotationReport:
    rewrapped: int = 0
    removed_old_wraps: int = 0


BatchHook = Callable[[int], Awaitable[None]]


async def rotate_master_key(
    db: Database,
    old: MasterKey,
    new: MasterKey,
    *,
    batch_size: int = 500,
    after_batch: BatchHook | None = None,
) -> RotationReport:
    """Re-wrap every data key from `old` to `new`. `after_batch` lets tests look mid-rotation."""
    if old.id == new.id:
        raise VaultError("the new master key is the same as the current one")
    report = RotationReport()
    await _begin(db, old, new)
    report.rewrapped += await _add_new_wraps(db, old, new, batch_size, after_batch)
    async with db.writing() as session:
        meta = await session.get(VaultMeta, 1, with_for_update=True)
        assert meta is not None
        meta.kek_id, meta.rotating_to, meta.updated_at = new.id, None, utcnow()
    report.rewrapped += await _add_new_wraps(db, old, new, batch_size, after_batch)
    async with db.writing() as session:
        result = await session.execute(delete(TenantKeyWrap).where(TenantKeyWrap.kek_id != new.id))
        report.removed_old_wraps = result.rowcount or 0  # type: ignore[attr-defined]  # a DELETE's CursorResult
    return report


async def _begin(db: Database, old: MasterKey, new: MasterKey) -> None:
    async with db.writing() as session:
        meta = await session.get(VaultMeta, 1, with_for_update=True)
        if meta is None:
            raise VaultError("this database has no vault yet: start the server once before rotating")
        if meta.kek_id == old.id and meta.rotating_to in (None, new.id):
            meta.rotating_to, meta.updated_at = new.id, utcnow()
        elif meta.kek_id == new.id and meta.rotating_to is None:
            pass  # an earlier run got past step 3; finish its sweep and clean-up
        else:
            raise MasterKeyMismatch(
                f"AUTHPIPE_MASTER_KEY (key id {old.id}) is not this database's current master key "
                f"(key id {meta.kek_id})"
            )


async def _add_new_wraps(
    db: Database,
    old: MasterKey,
    new: MasterKey,
    batch_size: int,
    after_batch: BatchHook | None,
) -> int:
    done = 0
    new_wrap = aliased(TenantKeyWrap)
    while True:
        async with db.writing() as session:
            rows = (
                await session.execute(
                    select(TenantKey.id, TenantKey.project_id, TenantKey.tenant_id, TenantKey.version, TenantKeyWrap.wrapped)
                    .join(TenantKeyWrap, TenantKeyWrap.tenant_key_id == TenantKey.id)
                    .outerjoin(new_wrap, (new_wrap.tenant_key_id == TenantKey.id) & (new_wrap.kek_id == new.id))
                    .where(TenantKeyWrap.kek_id == old.id, new_wrap.tenant_key_id.is_(None))
                    .order_by(TenantKey.id)
                    .limit(batch_size)
                )
            ).all()
            for key_id, project_id, tenant_id, version, wrapped in rows:
                context = wrap_context(project_id, tenant_id, version)
                session.add(TenantKeyWrap(tenant_key_id=key_id, kek_id=new.id, wrapped=new.wrap(old.unwrap(wrapped, context), context)))
        done += len(rows)
        if after_batch is not None and rows:
            await after_batch(done)
        if len(rows) < batch_size:
            return done
