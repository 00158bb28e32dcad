"""The vault: seals and opens secrets with per-(project, tenant) data keys, unwrapped on demand
and cached in memory (bounded, with a TTL so a shred elsewhere reaches this process's cache)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from cachetools import TTLCache
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from authpipe_server.singleflight import SingleFlight
from authpipe_server.store.db import Database
from authpipe_server.store.models import TenantKey, TenantKeyWrap, VaultMeta
from authpipe_server.vault.envelope import DataKey, read_key_version
from authpipe_server.vault.errors import DecryptionFailed, MasterKeyMismatch, TenantShredded, VaultError
from authpipe_server.vault.keys import KEY_BYTES, MasterKey, encode_parts, wrap_context
from authpipe_server.vault.shredding import shred_tenant

PROJECT_SCOPE = ""
"""The tenant id under which project-level secrets (client secrets, webhook secrets) are sealed.
Tenant ids are 1-256 characters, so the empty string can never collide with a real tenant."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a secret lives; it becomes the ciphertext's associated data."""

    project_id: str
    tenant_id: str
    table: str
    row_id: str
    field: str

    def encode(self) -> bytes:
        return encode_parts(("authpipe/secret/v1", self.project_id, self.tenant_id, self.table, self.row_id, self.field))


@dataclass(slots=True)
class TenantKeys:
    """The unwrapped data keys of one (project, tenant): the current one seals, any opens."""

    current: DataKey | None = None
    versions: dict[int, DataKey] = field(default_factory=dict)
    shredded: set[int] = field(default_factory=set)


class Vault:
    def __init__(
        self,
        db: Database,
        keys: Sequence[MasterKey],
        *,
        cache_size: int = 10_000,
        cache_ttl: float = 60.0,
    ) -> None:
        if not keys:
            raise ValueError("the vault needs a master key")
        self._db = db
        self._keys = {key.id: key for key in keys}
        self.primary = keys[0]
        self._cache: TTLCache[tuple[str, str], TenantKeys] = TTLCache(cache_size, cache_ttl)
        self._loading: SingleFlight[tuple[str, str], TenantKeys] = SingleFlight()

    # -- start-up ----------------------------------------------------------------------------

    async def verify_master_key(self) -> None:
        """Record the master key's id at first start; afterwards refuse any other key.

        During a rotation (`vault rotate`) both the old and the new key are accepted.
        """
        try:
            async with self._db.writing() as session:
                meta = await session.get(VaultMeta, 1)
                if meta is None:
                    session.add(VaultMeta(id=1, kek_id=self.primary.id))
                    return
        except IntegrityError:  # another process recorded its key first: check against that one
            return await self.verify_master_key()
        if self.primary.id not in (meta.kek_id, meta.rotating_to):
            raise MasterKeyMismatch(
                f"AUTHPIPE_MASTER_KEY is not the key this database was set up with "
                f"(expected key id {meta.kek_id}, got {self.primary.id}); start with the original key"
            )

    # -- sealing and opening -----------------------------------------------------------------

    async def encrypt(self, place: Place, plaintext: bytes) -> bytes:
        """Seal `plaintext` for `place`. A tenant's first secret creates its data key in a write
        transaction of its own, so call this before opening the transaction that stores it."""
        keys = await self.tenant_keys(place.project_id, place.tenant_id)
        if keys.current is None:
            keys = await self._create_key(place.project_id, place.tenant_id)
        assert keys.current is not None
        return keys.current.seal(plaintext, place.encode())

    async def decrypt(self, place: Place, blob: bytes) -> bytes:
        version = read_key_version(blob)
        keys = await self.tenant_keys(place.project_id, place.tenant_id)
        key = keys.versions.get(version)
        if key is None and version not in keys.shredded:
            self.forget(place.project_id, place.tenant_id)  # sealed by a key newer than our cache
            keys = await self.tenant_keys(place.project_id, place.tenant_id)
            key = keys.versions.get(version)
        if key is None:
            if version in keys.shredded:
                raise TenantShredded("this tenant's data key was shredded; its secrets are unreadable")
            raise DecryptionFailed("no data key for this ciphertext under the current master key")
        return key.open(blob, place.encode())

    async def tenant_keys(self, project_id: str, tenant_id: str) -> TenantKeys:
        """The tenant's unwrapped keys, from the cache or (once per key, however many ask) the store."""
        cache_key = (project_id, tenant_id)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        return await self._loading.do(cache_key, lambda: self._load_and_cache(project_id, tenant_id))

    async def _load_and_cache(self, project_id: str, tenant_id: str) -> TenantKeys:
        keys = await self._load(project_id, tenant_id)
        self._cache[(project_id, tenant_id)] = keys
        return keys

    def forget(self, project_id: str, tenant_id: str) -> None:
        self._cache.pop((project_id, tenant_id), None)

    async def _load(self, project_id: str, tenant_id: str) -> TenantKeys:
        async with self._db.sessions() as session:
            rows = (
                await session.execute(
                    select(TenantKey.version, TenantKey.shredded_at, TenantKeyWrap.kek_id, TenantKeyWrap.wrapped)
                    .outerjoin(
                        TenantKeyWrap,
                        (TenantKeyWrap.tenant_key_id == TenantKey.id) & TenantKeyWrap.kek_id.in_(self._keys),
                    )
                    .where(TenantKey.project_id == project_id, TenantKey.tenant_id == tenant_id)
                    .order_by(TenantKey.version)
                )
            ).all()
        keys = TenantKeys()
        for version, shredded_at, kek_id, wrapped in rows:
            if shredded_at is not None:
                keys.shredded.add(version)
            elif kek_id is not None and version not in keys.versions:
                raw = self._keys[kek_id].unwrap(wrapped, wrap_context(project_id, tenant_id, version))
                keys.versions[version] = DataKey(raw, version)
        live = [v for v in keys.versions if v not in keys.shredded]
        if live:
            keys.current = keys.versions[max(live)]
        return keys

    async def _create_key(self, project_id: str, tenant_id: str) -> TenantKeys:
        """Make the tenant's next data key, wrapped under every master key the database accepts."""
        try:
            async with self._db.writing() as session:
                meta = await session.get(VaultMeta, 1)
                accepted = [k for k in (meta.kek_id, meta.rotating_to) if k] if meta else [self.primary.id]
                if self.primary.id not in accepted:
                    raise MasterKeyMismatch("the master key was rotated while this process ran; restart it with the new key")
                latest = await session.scalar(
                    select(func.max(TenantKey.version)).where(
                        TenantKey.project_id == project_id, TenantKey.tenant_id == tenant_id
                    )
                )
                version = (latest or 0) + 1
                raw = os.urandom(KEY_BYTES)
                row = TenantKey(project_id=project_id, tenant_id=tenant_id, version=version)
                session.add(row)
                await session.flush()
                context = wrap_context(project_id, tenant_id, version)
                session.add_all(
                    TenantKeyWrap(tenant_key_id=row.id, kek_id=kek_id, wrapped=self._keys[kek_id].wrap(raw, context))
                    for kek_id in accepted
                    if kek_id in self._keys
                )
        except IntegrityError:
            pass  # a concurrent writer made this version first; use theirs below
        self.forget(project_id, tenant_id)
        keys = await self.tenant_keys(project_id, tenant_id)
        if keys.current is None:
            raise VaultError("could not create a data key for this tenant")
        return keys

    async def shred(self, project_id: str, tenant_id: str) -> int:
        """Destroy the tenant's data keys (see `shredding.shred_tenant`) and drop them from this cache."""
        async with self._db.writing() as session:
            count = await shred_tenant(session, project_id, tenant_id)
        self.forget(project_id, tenant_id)
        return count
