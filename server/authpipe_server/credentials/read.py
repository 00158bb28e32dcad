"""Reading a credential: one indexed query and one decrypt on the hot path; a refresh only when
the token is about to run out (or the caller forces one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from authpipe_server.connections.secrets import unseal
from authpipe_server.connections.shredding import SHREDDED_MESSAGE, TENANT_SHREDDED, mark_connection_shredded
from authpipe_server.credentials.lookup import ConnectionRecord
from authpipe_server.credentials.refresh import ConnectionGone, fresh_enough
from authpipe_server.errors import AuthpipeError
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow
from authpipe_server.vault import DecryptionFailed, TenantShredded


class CredentialError(AuthpipeError):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def gone(row: Connection | ConnectionRecord) -> CredentialError:
    """The 410 of a revoked connection: its tenant's key destroyed, or its grant refused."""
    if row.last_error_code == TENANT_SHREDDED:
        return CredentialError(410, TENANT_SHREDDED, SHREDDED_MESSAGE)
    return CredentialError(410, "connection_revoked", f"the provider rejected this connection's grant ({row.last_error_code or 'revoked'}); the user must connect again")


async def unreadable(runtime: Runtime, row: Connection | ConnectionRecord, exc: DecryptionFailed | TenantShredded) -> CredentialError:
    """The 410 of secrets that cannot be opened. A tenant key found shredded marks the connection
    revoked (it slipped past `tenants shred`), so listings and webhooks say so too."""
    if isinstance(exc, TenantShredded):
        await mark_connection_shredded(runtime, row.id, row.secrets)
        return CredentialError(410, TENANT_SHREDDED, SHREDDED_MESSAGE)
    return CredentialError(410, "credential_unreadable", "this connection's stored credential failed to decrypt (it was altered); the user must connect again")


@dataclass(frozen=True)
class Credential:
    credential: str
    expires_at: datetime | None
    connection: Connection | ConnectionRecord

    def __repr__(self) -> str:
        return f"Credential(connection={self.connection.id!r}, expires_at={self.expires_at!r})"


async def read_credential(
    runtime: Runtime,
    project_id: str,
    *,
    provider: str,
    tenant_id: str,
    user_id: str,
    min_ttl: int = 60,
    force_refresh: bool = False,
    resource: str | None = None,
) -> Credential:
    found = await runtime.lookup.by_owner(project_id, tenant_id, user_id, provider)
    if found is None:
        raise CredentialError(404, "connection_not_found", f"no {provider} connection for tenant {tenant_id}, user {user_id}")
    row: Connection | ConnectionRecord = found
    now = utcnow()
    try:
        if row.status != "revoked" and (force_refresh or not fresh_enough(row, min_ttl, now)):
            row = await _refreshed(runtime, found, force_refresh, now)
        if row.status == "revoked" or row.secrets is None:
            raise gone(row)
        if row.expires_at is not None and row.expires_at <= utcnow():
            retry = int((row.refresh_due_at - utcnow()).total_seconds()) + 1 if row.refresh_due_at else None
            if row.last_error_code == "rate_limited":
                raise CredentialError(429, "rate_limited", "the token expired and the provider is rate limiting its refresh; retry later", retry)
            raise CredentialError(502, "provider_error", f"the token expired and the provider failed to refresh it: {row.last_error_message or 'unknown error'}", retry)
        tokens = await unseal(runtime.vault, row)
    except (DecryptionFailed, TenantShredded) as exc:
        raise await unreadable(runtime, row, exc) from None
    if resource is None:
        return Credential(tokens.access_token, row.expires_at, row)
    token = tokens.resource_tokens.get(resource)
    if token is None:
        raise CredentialError(404, "resource_not_found", f"connection {row.id} has no resource {resource} (see its resources)")
    return Credential(token, None, row)  # page tokens made from a long-lived user token never expire


async def _refreshed(runtime: Runtime, row: ConnectionRecord, force: bool, now: datetime) -> Connection | ConnectionRecord:
    """Refresh, unless an earlier failure's backoff is still running (then the current token,
    while valid, is served as it is: the provider is not hammered by every read)."""
    backing_off = row.refresh_failures > 0 and row.refresh_due_at is not None and row.refresh_due_at > now
    if backing_off and not force:
        return row
    try:
        return await runtime.refresher.refresh(row.id, seen=row.secrets)
    except ConnectionGone:
        raise CredentialError(404, "connection_not_found", f"connection {row.id} was deleted") from None


