"""Refreshing a connection's tokens, one refresh at a time per connection.

In-process: concurrent callers for one connection share one future (single flight). Across
processes: the connection's advisory lock (PostgreSQL, credentials.locking; no pooled connection
is held while the provider answers), and a re-check once it is held — if another process
refreshed meanwhile, its result is used and the provider is not called again.

Failures are classified (providers/errors.py): a gone grant makes the connection
`revoked`; a provider or network having a bad time changes nothing the caller can see while the
current token is valid, and is retried with backoff; still failing once the token has run out,
the connection becomes `error`; a later success makes it `active` again.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Awaitable, Callable

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.connections.schedule import refresh_due
from authpipe_server.connections.secrets import TokenSet, seal, unseal
from authpipe_server.connections.service import mark_revoked
from authpipe_server.credentials.backoff import retry_delay
from authpipe_server.credentials.locking import refresh_locks
from authpipe_server.events.record import RECOVERED, REFRESH_FAILED, REFRESHED, record_event
from authpipe_server.providers.apps import ProviderNotConfigured, ProviderNotFound, load_provider
from authpipe_server.providers.base import Grant
from authpipe_server.providers.errors import GrantRevoked, ProviderFailure, ProviderUnavailable
from authpipe_server.singleflight import SingleFlight
from authpipe_server.store.models import Connection, RefreshAttempt
from authpipe_server.store.types import utcnow

if TYPE_CHECKING:
    from authpipe_server.credentials.lookup import ConnectionRecord
    from authpipe_server.runtime import Runtime

log = logging.getLogger(__name__)
Mutation = Callable[[AsyncSession, Connection], Awaitable[None]]
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


class ConnectionGone(LookupError):
    """The connection was deleted."""


def fresh_enough(row: "Connection | ConnectionRecord", min_ttl: int, now: datetime) -> bool:
    return row.expires_at is None or row.expires_at - now > timedelta(seconds=min_ttl)


class Refresher:
    def __init__(self, runtime: "Runtime", *, backoff_base: float = 10.0, backoff_cap: float = 1800.0) -> None:
        self.runtime = runtime
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._inflight: SingleFlight[str, Connection] = SingleFlight()
        self.locks = refresh_locks(runtime.settings.database_url)
        # Another process's refresh is awaited about as long as it can take (two provider calls).
        self.lock_wait = 2 * runtime.settings.egress_timeout + 5.0

    async def close(self) -> None:
        await self.locks.close()

    async def refresh(self, connection_id: str, *, seen: bytes | None = None) -> Connection:
        """Refresh the connection's tokens, once however many callers ask at the same time.

        `seen` is the sealed secrets the caller read before deciding a refresh was needed: if,
        once the lock is held, they are no longer what is stored, someone else refreshed
        meanwhile and their result is returned. Without `seen` (the scheduler), the connection
        is refreshed only if it is still due. Returns the connection as it is afterwards.
        """
        return await self._inflight.do(connection_id, lambda: self._refresh(connection_id, seen))

    async def _refresh(self, connection_id: str, seen: bytes | None) -> Connection:
        runtime = self.runtime
        async with self.locks.hold(connection_id, self.lock_wait) as held:
            row = await self._load(connection_id)
            if not held or row.status == "revoked" or row.secrets is None:
                return row  # (not held: another process is still at it; its result comes later)
            if seen is not None and row.secrets != seen:
                return row  # refreshed (or reconnected) by someone else while we waited
            if seen is None and (row.refresh_due_at is None or row.refresh_due_at > utcnow()):
                return await self._save(row, self._released)  # no longer due
            tokens = await unseal(runtime.vault, row)  # before the marker: an unreadable row leaves none
            interrupted = await self._mark_attempt(row.id)
            try:
                found = await load_provider(runtime, row.project_id, row.provider)
                grant = await found.provider.refresh(tokens)
            except GrantRevoked as exc:
                message = exc.message
                if interrupted is not None:
                    message = (
                        f"{exc.message} (a refresh interrupted at {interrupted:%Y-%m-%dT%H:%M:%SZ} may have lost "
                        "a rotated refresh token); the user must connect again"
                    )
                code = exc.code
                return await self._save(row, lambda s, r: self._revoked(s, r, code, message))
            except (ProviderFailure, ProviderNotFound, ProviderNotConfigured) as exc:
                failure = exc if isinstance(exc, ProviderFailure) else ProviderFailure("provider_not_configured", str(exc))
                return await self._save(row, lambda s, r: self._failed(s, r, failure))
            new_tokens = merge(tokens, grant)
            probe = Connection(id=row.id, project_id=row.project_id, tenant_id=row.tenant_id)
            await seal(runtime.vault, probe, new_tokens)
            return await self._save(row, lambda s, r: self._succeeded(s, r, grant, probe.secrets))

    async def _load(self, connection_id: str) -> Connection:
        async with self.runtime.db.sessions() as session:
            row = await session.get(Connection, connection_id, populate_existing=True)
        if row is None:
            raise ConnectionGone(connection_id)
        return row

    async def _save(self, started: Connection, mutate: Mutation) -> Connection:
        """Apply `mutate` in a short write transaction, only if the stored secrets are still
        those the refresh started from (compare-and-set): otherwise someone else refreshed or
        reconnected meanwhile, and their row wins."""
        async with self.runtime.db.writing() as session:
            current = await session.get(Connection, started.id, with_for_update=True, populate_existing=True)
            if current is None:
                raise ConnectionGone(started.id)
            if current.secrets != started.secrets:
                await self._clear_attempt(session, current.id)
                log.warning("refresh of %s discarded: the connection changed while the provider answered", current.id)
                return current
            current.refresh_claimed_until = None
            await mutate(session, current)
        return current

    @staticmethod
    async def _released(session: AsyncSession, row: Connection) -> None:
        """Nothing to do but give the claim back."""

    async def _mark_attempt(self, connection_id: str) -> datetime | None:
        """Record (committed at once) that a refresh is starting; return when an earlier one that
        never finished started, if one did."""
        async with self.runtime.db.writing() as session:
            earlier = await session.get(RefreshAttempt, connection_id)
            started = earlier.started_at if earlier is not None else None
            insert = sqlite_insert if self.runtime.db.is_sqlite else pg_insert
            now = utcnow()
            statement = insert(RefreshAttempt).values(connection_id=connection_id, started_at=now, holder=HOLDER)
            await session.execute(
                statement.on_conflict_do_update(index_elements=["connection_id"], set_={"started_at": now, "holder": HOLDER})
            )
        return started

    async def _clear_attempt(self, session: AsyncSession, connection_id: str) -> None:
        await session.execute(delete(RefreshAttempt).where(RefreshAttempt.connection_id == connection_id))

    async def _succeeded(self, session: AsyncSession, row: Connection, grant: Grant, sealed: bytes | None) -> None:
        now = utcnow()
        was = row.status
        row.secrets = sealed
        row.expires_at = grant.expires_at
        if grant.scopes is not None:
            row.scopes = grant.scopes
        row.status = "active"
        row.refresh_failures = 0
        row.last_error_code = row.last_error_message = None
        row.last_error_at = None
        row.last_refreshed_at = now
        row.refresh_due_at = refresh_due(grant.expires_at, self.runtime.settings.refresh_margin, now)
        await self._clear_attempt(session, row.id)
        await session.flush()
        if was == "error":
            await record_event(session, row, RECOVERED)
        await record_event(session, row, REFRESHED)
        self.runtime.metrics.refreshes.labels(provider=row.provider, outcome="ok").inc()

    async def _revoked(self, session: AsyncSession, row: Connection, code: str, message: str) -> None:
        await self._clear_attempt(session, row.id)
        await mark_revoked(session, row, code, message)
        self.runtime.metrics.refreshes.labels(provider=row.provider, outcome="revoked").inc()

    async def _failed(self, session: AsyncSession, row: Connection, failure: ProviderFailure) -> None:
        now = utcnow()
        row.refresh_failures += 1
        retry_after = failure.retry_after if isinstance(failure, ProviderUnavailable) else None
        delay = retry_delay(row.refresh_failures, retry_after, base=self.backoff_base, cap=self.backoff_cap)
        row.refresh_due_at = now + timedelta(seconds=delay)
        row.last_error_code, row.last_error_message, row.last_error_at = failure.code[:64], failure.message[:1024], now
        await self._clear_attempt(session, row.id)
        if row.status == "active" and row.expires_at is not None and row.expires_at <= now:
            row.status = "error"
            await session.flush()
            await record_event(session, row, REFRESH_FAILED)
        self.runtime.metrics.refreshes.labels(provider=row.provider, outcome="failed").inc()
        log.warning("refresh of %s at %s failed (%s); retrying in %.0f s", row.id, row.provider, failure.code, delay)


def merge(previous: TokenSet, grant: Grant) -> TokenSet:
    """The new tokens, keeping what the provider did not send again (resource tokens, and the
    refresh token where it does not rotate)."""
    new = grant.tokens
    return replace(
        new,
        refresh_token=new.refresh_token or previous.refresh_token,
        resource_tokens=new.resource_tokens or previous.resource_tokens,
        extra={**previous.extra, **new.extra},
    )
