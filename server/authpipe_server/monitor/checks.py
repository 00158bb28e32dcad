"""One health check of one connection.

The provider's cheapest "who am I" call (docs/providers/). A 401 first tries a refresh (the token
may simply have expired); a provider refusing the grant makes the connection `revoked`; a 429,
5xx or timeout changes no status (never confuse a bad day with a gone grant). A
check also keeps the account's name and resources current. Bluesky is checked through
refreshSession: a revoked app password leaves access JWTs working for up to two hours.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.connections.schedule import check_due
from authpipe_server.connections.service import mark_revoked
from authpipe_server.connections.secrets import TokenSet, seal, unseal
from authpipe_server.credentials.refresh import ConnectionGone
from authpipe_server.events.record import UPDATED, record_event
from authpipe_server.providers.apps import ProviderNotConfigured, ProviderNotFound, load_provider
from authpipe_server.providers.base import Described
from authpipe_server.providers.errors import AccessTokenRejected, GrantRevoked, ProviderFailure, ProviderUnavailable
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow

if TYPE_CHECKING:
    from authpipe_server.runtime import Runtime

log = logging.getLogger(__name__)


class HealthChecker:
    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime

    async def check(self, connection_id: str) -> Connection:
        """Check the connection now; returns it as it is afterwards (ConnectionGone if deleted)."""
        runtime = self.runtime
        async with runtime.db.sessions() as session:
            row = await session.get(Connection, connection_id)
        if row is None:
            raise ConnectionGone(connection_id)
        if row.status == "revoked" or row.secrets is None:
            return row
        try:
            found = await load_provider(runtime, row.project_id, row.provider)
            if found.spec.refresh == "bluesky_session":
                row = await self._refreshed(row)
                if row.status == "revoked":
                    return await self._checked(row)
            tokens = await unseal(runtime.vault, row)
            try:
                described = await found.provider.check(tokens)
            except AccessTokenRejected:
                row = await self._refreshed(row)  # perhaps only expired: refresh, then look again
                if row.status == "revoked" or row.last_refreshed_at is None or row.refresh_failures:
                    return await self._checked(row)  # the refresh's verdict is the check's
                tokens = await unseal(runtime.vault, row)
                try:
                    described = await found.provider.check(tokens)
                except AccessTokenRejected as exc:
                    # A token fresh from the provider, refused by the same provider: the grant is gone.
                    return await self._revoked(row, GrantRevoked(exc.code, exc.message))
        except GrantRevoked as exc:
            return await self._revoked(row, exc)
        except (ProviderFailure, ProviderNotFound, ProviderNotConfigured) as exc:
            return await self._transient(row, exc)
        return await self._healthy(row, tokens, described)

    async def _refreshed(self, row: Connection) -> Connection:
        return await self.runtime.refresher.refresh(row.id, seen=row.secrets)

    @contextlib.asynccontextmanager
    async def _recording(self, row: Connection) -> AsyncIterator[tuple[AsyncSession, Connection, datetime]]:
        """The check's write: the connection as stored now, stamped checked and unclaimed."""
        async with self.runtime.db.writing() as session:
            current = await session.get(Connection, row.id)
            if current is None:
                raise ConnectionGone(row.id)
            now = utcnow()
            current.last_checked_at = now
            current.check_claimed_until = None
            yield session, current, now

    def _soon(self, now: datetime, at_least: float = 0.0) -> datetime:
        """When to look again after a check that could not conclude."""
        return now + timedelta(seconds=max(at_least, min(self.runtime.settings.health_interval, 300.0)))

    async def _checked(self, row: Connection) -> Connection:
        """A check its refresh concluded (a revoked grant, a failed refresh): it still happened."""
        async with self._recording(row) as (_, current, now):
            if current.status != "revoked":  # a failed refresh: look again soon, as after a transient failure
                current.check_due_at = self._soon(now)
        outcome = "revoked" if current.status == "revoked" else "failed"
        self.runtime.metrics.checks.labels(provider=row.provider, outcome=outcome).inc()
        return current

    async def _healthy(self, row: Connection, tokens: TokenSet, described: Described) -> Connection:
        runtime = self.runtime
        resources = [{"id": r.id, "name": r.name} for r in described.resources]
        account = (described.account.id or row.account_id, described.account.name or row.account_name)
        changed = account != (row.account_id, row.account_name) or (bool(resources) and resources != row.resources)
        sealed: bytes | None = None
        if described.resource_tokens and described.resource_tokens != tokens.resource_tokens:
            probe = Connection(id=row.id, project_id=row.project_id, tenant_id=row.tenant_id)
            await seal(runtime.vault, probe, replace(tokens, resource_tokens=described.resource_tokens))
            sealed = probe.secrets
        async with self._recording(row) as (session, current, now):
            current.check_due_at = check_due(runtime.settings.health_interval, now)
            if changed:
                current.account_id, current.account_name = account
                if resources:
                    current.resources = resources
                if sealed is not None and current.secrets == row.secrets:
                    current.secrets = sealed
                await session.flush()
                await record_event(session, current, UPDATED)
        runtime.metrics.checks.labels(provider=row.provider, outcome="changed" if changed else "ok").inc()
        return current

    async def _revoked(self, row: Connection, exc: GrantRevoked) -> Connection:
        async with self._recording(row) as (session, current, _):
            if current.status != "revoked":
                await mark_revoked(session, current, exc.code, exc.message)
        self.runtime.metrics.checks.labels(provider=row.provider, outcome="revoked").inc()
        return current

    async def _transient(self, row: Connection, exc: Exception) -> Connection:
        """Nothing changes status; the next check waits at least as long as the provider asked."""
        failure = exc if isinstance(exc, ProviderFailure) else ProviderFailure("provider_not_configured", str(exc))
        retry_after = failure.retry_after if isinstance(failure, ProviderUnavailable) else None
        async with self._recording(row) as (_, current, now):
            current.last_error_code, current.last_error_message, current.last_error_at = failure.code[:64], failure.message[:1024], now
            current.check_due_at = self._soon(now, retry_after or 0.0)
        self.runtime.metrics.checks.labels(provider=row.provider, outcome="failed").inc()
        log.info("health check of %s at %s failed transiently (%s)", row.id, row.provider, failure.code)
        return current
