"""The vault over a real store, on SQLite and PostgreSQL: data keys, rotation, shredding, and the
master-key check at start."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from authpipe_server.config import Settings, load_settings
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import TenantKeyWrap
from authpipe_server.vault import DecryptionFailed, MasterKey, MasterKeyMismatch, Place, TenantShredded, Vault
from authpipe_server.vault.rotation import rotate_master_key
from tests.conftest import new_master_key


def place(project_id: str, tenant: str, row: str, field: str = "secrets") -> Place:
    return Place(project_id, tenant, "connections", row, field)


async def seal_many(vault: Vault, project_id: str, tenants: int, per_tenant: int) -> dict[Place, bytes]:
    sealed = {}
    for t in range(tenants):
        for r in range(per_tenant):
            p = place(project_id, f"org_{t}", f"conn_{r}")
            sealed[p] = await vault.encrypt(p, f"token-{t}-{r}".encode())
    return sealed


def fresh_vault(runtime: Runtime, *keys: MasterKey) -> Vault:
    """A vault with an empty cache, as a newly started process would have."""
    return Vault(runtime.db, list(keys))


def key_of(settings: Settings) -> MasterKey:
    assert settings.master_key is not None
    return MasterKey(settings.master_key)


async def test_round_trip_and_one_key_per_tenant(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    sealed = await seal_many(runtime.vault, project_id, tenants=3, per_tenant=4)
    reader = fresh_vault(runtime, runtime.vault.primary)
    for p, blob in sealed.items():
        assert await reader.decrypt(p, blob) == f"token-{p.tenant_id[4:]}-{p.row_id[5:]}".encode()
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TenantKeyWrap)) == 3


async def test_a_ciphertext_moved_to_another_tenant_fails(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    blob = await runtime.vault.encrypt(place(project_id, "org_a", "conn_1"), b"secret")
    await runtime.vault.encrypt(place(project_id, "org_b", "conn_1"), b"other")
    with pytest.raises(DecryptionFailed):
        await runtime.vault.decrypt(place(project_id, "org_b", "conn_1"), blob)


async def test_wrong_master_key_refuses_to_start(settings: Settings, runtime: Runtime) -> None:
    other = load_settings({"AUTHPIPE_DATABASE_URL": _contract_url(settings), "AUTHPIPE_MASTER_KEY": new_master_key()})
    with pytest.raises(MasterKeyMismatch, match="not the key this database was set up with"):
        await Runtime.open(other)


async def test_rotation_keeps_every_value_readable_throughout(
    settings: Settings, runtime: Runtime, project: tuple[str, str]
) -> None:
    project_id, _ = project
    old = key_of(settings)
    new = MasterKey(base64.b64decode(new_master_key()))
    sealed = await seal_many(runtime.vault, project_id, tenants=5, per_tenant=2)
    checked_mid_rotation = []

    async def mid_rotation(done: int) -> None:
        # A server still on the old key, started now with a cold cache, reads everything.
        old_process = fresh_vault(runtime, old)
        for p, blob in sealed.items():
            assert await old_process.decrypt(p, blob)
        # A server on the old key may still onboard a tenant while the run is under way...
        if not checked_mid_rotation:
            p = place(project_id, "org_joined_mid_rotation", "conn_0")
            sealed[p] = await old_process.encrypt(p, b"late")
        checked_mid_rotation.append(done)

    report = await rotate_master_key(runtime.db, old, new, batch_size=2, after_batch=mid_rotation)
    assert checked_mid_rotation and report.rewrapped == 6  # ...and its key was re-wrapped too
    new_process = fresh_vault(runtime, new)
    for p, blob in sealed.items():
        assert await new_process.decrypt(p, blob)
    with pytest.raises(MasterKeyMismatch):  # the old key is no longer accepted at start...
        await fresh_vault(runtime, old).verify_master_key()
    await new_process.verify_master_key()
    with pytest.raises(DecryptionFailed):  # ...nor can it unwrap anything
        await fresh_vault(runtime, old).decrypt(*next(iter(sealed.items())))


async def test_rotation_resumes_after_an_interrupted_run(
    settings: Settings, runtime: Runtime, project: tuple[str, str]
) -> None:
    project_id, _ = project
    old, new = key_of(settings), MasterKey(base64.b64decode(new_master_key()))
    sealed = await seal_many(runtime.vault, project_id, tenants=4, per_tenant=1)

    async def crash(done: int) -> None:
        raise RuntimeError("killed mid-rotation")

    with pytest.raises(RuntimeError):
        await rotate_master_key(runtime.db, old, new, batch_size=2, after_batch=crash)
    for p, blob in sealed.items():  # the old key still reads everything after the crash
        assert await fresh_vault(runtime, old).decrypt(p, blob)
    await rotate_master_key(runtime.db, old, new, batch_size=2)
    for p, blob in sealed.items():
        assert await fresh_vault(runtime, new).decrypt(p, blob)


async def test_old_key_process_cannot_make_keys_after_rotation(
    settings: Settings, runtime: Runtime, project: tuple[str, str]
) -> None:
    project_id, _ = project
    new = MasterKey(base64.b64decode(new_master_key()))
    await rotate_master_key(runtime.db, key_of(settings), new)
    with pytest.raises(MasterKeyMismatch, match="restart it with the new key"):
        await fresh_vault(runtime, key_of(settings)).encrypt(place(project_id, "org_new", "conn_1"), b"x")


async def test_shredding_erases_one_tenant_only(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    sealed = await seal_many(runtime.vault, project_id, tenants=2, per_tenant=2)
    assert await runtime.vault.shred(project_id, "org_0") == 1
    for vault in (runtime.vault, fresh_vault(runtime, runtime.vault.primary)):
        for p, blob in sealed.items():
            if p.tenant_id == "org_0":
                with pytest.raises(TenantShredded):
                    await vault.decrypt(p, blob)
            else:
                assert await vault.decrypt(p, blob) == f"token-1-{p.row_id[5:]}".encode()
    # The tenant can start over under a new data key; the old secrets stay gone.
    p = place(project_id, "org_0", "conn_0")
    assert await runtime.vault.decrypt(p, await runtime.vault.encrypt(p, b"fresh")) == b"fresh"
    with pytest.raises(TenantShredded):
        await runtime.vault.decrypt(p, sealed[p])


async def test_concurrent_first_use_makes_one_data_key(runtime: Runtime, project: tuple[str, str]) -> None:
    import asyncio

    project_id, _ = project
    vaults = [fresh_vault(runtime, runtime.vault.primary) for _ in range(5)]
    p = place(project_id, "org_race", "conn_1")
    blobs = await asyncio.gather(*(v.encrypt(p, b"v") for v in vaults))
    reader = fresh_vault(runtime, runtime.vault.primary)
    assert all([await reader.decrypt(p, b) == b"v" for b in blobs])


def _contract_url(settings: Settings) -> str:
    url = settings.database_url
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql"
    return url.set(drivername=driver).render_as_string(hide_password=False)
