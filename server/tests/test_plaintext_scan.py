"""A token written through the vault is nowhere in the raw database, in any encoding."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import text

from authpipe_server.connections.secrets import TokenSet, seal, unseal
from authpipe_server.ids import new_id
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection

ACCESS = "BQDk3Zx-access-token-with-a-very-recognisable-value-7Hq9"
REFRESH = "AQCrefresh-token-also-easy-to-recognise-Qm4Kz"


def encodings(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw), secret.encode("utf-16-le")]


async def test_token_is_not_in_the_raw_database(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    connection = Connection(id=new_id("conn"), project_id=project_id, tenant_id="org_acme", user_id="user_1", provider="spotify")
    await seal(runtime.vault, connection, TokenSet(access_token=ACCESS, refresh_token=REFRESH))  # seal, then write
    async with runtime.db.writing() as session:
        session.add(connection)
    async with runtime.db.sessions() as session:
        stored = await session.get(Connection, connection.id)
        assert stored is not None and (await unseal(runtime.vault, stored)).access_token == ACCESS

    if runtime.db.is_sqlite:
        async with runtime.db.engine.connect() as conn:  # everything into the main file, then read both
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
        path = Path(runtime.settings.database_url.database or "")
        dumps = [p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()]
    else:
        dumps = []
        async with runtime.db.engine.connect() as conn:
            tables = (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars()
            for table in list(tables):
                rows = await conn.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t'))
                dumps.append("\n".join(rows.scalars()).encode())
            # and the raw bytea, not just its JSON rendering
            raw = await conn.execute(text("SELECT secrets FROM connections"))
            dumps.extend(bytes(value) for value in raw.scalars())
    haystack = b"\n".join(dumps)
    assert b"conn_" in haystack  # we really are looking at the data
    for secret in (ACCESS, REFRESH):
        for form in encodings(secret):
            assert form not in haystack, f"{secret[:8]}… found in the raw database"


def test_token_set_repr_hides_tokens() -> None:
    tokens = TokenSet(access_token=ACCESS, refresh_token=REFRESH, resource_tokens={"page:1": "PAGETOKEN"})
    shown = repr(tokens) + str(tokens)
    assert ACCESS not in shown and REFRESH not in shown and "PAGETOKEN" not in shown
