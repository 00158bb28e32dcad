"""What a running process holds: settings, the database, the vault. Built once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from authpipe_server.config import Settings
from authpipe_server.credentials.lookup import ConnectionLookup
from authpipe_server.errors import ConfigError
from authpipe_server.metrics import Metrics
from authpipe_server.egress import Egress
from authpipe_server.store.db import Database, current_revision, head_revision, upgrade
from authpipe_server.vault import MasterKey, Vault

if TYPE_CHECKING:
    from authpipe_server.credentials.refresh import Refresher

NO_MASTER_KEY = "AUTHPIPE_MASTER_KEY is not set; make one with `authpipe vault new-key` and export it"


class SchemaOutOfDate(ConfigError):
    pass


@dataclass
class Runtime:
    settings: Settings
    db: Database
    vault: Vault
    egress: Egress
    """The one way out for every outbound call (pooled connections, address policy, deadlines)."""
    refresher: "Refresher" = field(init=False)
    """One per process: its single-flight map is what makes in-process refreshes one at a time."""
    lookup: ConnectionLookup = field(init=False)
    """The credential read path's query."""
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        from authpipe_server.credentials.refresh import Refresher  # refresh → providers → runtime

        self.refresher = Refresher(self)
        self.lookup = ConnectionLookup(self.db)
        self.metrics = Metrics()

    @classmethod
    async def open(cls, settings: Settings, *, migrate_sqlite: bool = True) -> "Runtime":
        """Connect, bring SQLite's schema up to date (PostgreSQL: check it), and verify the master key.

        Raises ConfigError / VaultError with one readable line when the process must not start.
        """
        if settings.master_key is None:
            raise ConfigError(NO_MASTER_KEY)
        db = Database.connect(settings.database_url)
        try:
            await ensure_schema(db, migrate=migrate_sqlite and db.is_sqlite)
            vault = Vault(db, [MasterKey(settings.master_key)])
            await vault.verify_master_key()
        except BaseException:
            await db.dispose()
            raise
        return cls(settings, db, vault, new_egress(settings))

    async def close(self) -> None:
        self.lookup.close()
        await self.refresher.close()
        await self.egress.aclose()
        await self.db.dispose()


def new_egress(settings: Settings) -> Egress:
    return Egress(settings.egress, deadline=settings.egress_timeout, max_bytes=settings.egress_max_bytes)


async def ensure_schema(db: Database, *, migrate: bool) -> None:
    try:
        if migrate:
            await upgrade(db.engine)
            return
        current = await current_revision(db.engine)
    except OSError as exc:
        raise ConfigError(f"cannot reach the database: {exc.strerror or exc}") from None
    if current != head_revision():
        raise SchemaOutOfDate(
            f"the database schema is at {current or 'nothing'}, this server needs {head_revision()}: run `authpipe migrate`"
        )
