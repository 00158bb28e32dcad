"""Operating on one connection now — refresh, health check, delete — for the API and the
dashboard alike: the rules live here once; each caller words the outcome its own way (a JSON
error, a page's notice).

Each function takes the project the caller is acting for and answers ConnectionNotFound for a
connection of another project, as for one that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from authpipe_server.connections.secrets import unseal
from authpipe_server.connections.service import delete_connection
from authpipe_server.connections.shredding import TENANT_SHREDDED
from authpipe_server.credentials.read import gone, unreadable
from authpipe_server.credentials.refresh import ConnectionGone
from authpipe_server.errors import AuthpipeError
from authpipe_server.monitor.checks import HealthChecker
from authpipe_server.providers.apps import ProviderNotConfigured, ProviderNotFound, load_provider
from authpipe_server.providers.errors import ProviderFailure
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow
from authpipe_server.vault import DecryptionFailed, TenantShredded, VaultError

log = logging.getLogger(__name__)


class ConnectionNotFound(AuthpipeError):
    """No such connection in this project (or it was deleted meanwhile)."""


class RefreshFailed(AuthpipeError):
    """The provider failed to refresh the token. The connection keeps its token while it is valid
    and the failure is in its `last_error`; Authpipe retries with backoff."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(f"the provider failed to refresh the token: {connection.last_error_message}")
        self.connection = connection


async def project_connection(runtime: Runtime, project_id: str, connection_id: str) -> Connection:
    async with runtime.db.sessions() as session:
        connection = await session.get(Connection, connection_id)
    if connection is None or connection.project_id != project_id:
        raise ConnectionNotFound(connection_id)
    return connection


async def refresh_now(runtime: Runtime, project_id: str, connection_id: str) -> Connection:
    """Refresh the token at the provider now, whatever its expiry; returns the refreshed
    connection. Raises ConnectionNotFound, CredentialError (410: revoked, shredded, unreadable)
    or RefreshFailed."""
    connection = await project_connection(runtime, project_id, connection_id)
    if connection.status == "revoked" or connection.secrets is None:
        raise gone(connection)
    started = utcnow()
    try:
        refreshed = await runtime.refresher.refresh(connection_id, seen=connection.secrets)
    except ConnectionGone:
        raise ConnectionNotFound(connection_id) from None
    except (DecryptionFailed, TenantShredded) as exc:
        raise await unreadable(runtime, connection, exc) from None
    if refreshed.status == "revoked":
        raise gone(refreshed)
    if refreshed.last_refreshed_at is None or refreshed.last_refreshed_at < started:
        raise RefreshFailed(refreshed)
    return refreshed


async def check_now(runtime: Runtime, project_id: str, connection_id: str) -> Connection:
    """Run the health check now; the outcome is in the returned connection's status,
    last_checked_at and last_error. Raises ConnectionNotFound or CredentialError (410: the
    stored credential cannot be opened)."""
    connection = await project_connection(runtime, project_id, connection_id)
    try:
        return await HealthChecker(runtime).check(connection_id)
    except ConnectionGone:
        raise ConnectionNotFound(connection_id) from None
    except (DecryptionFailed, TenantShredded) as exc:
        raise await unreadable(runtime, connection, exc) from None


async def delete_now(runtime: Runtime, project_id: str, connection_id: str) -> dict[str, Any]:
    """Revoke the grant at the provider where it can be, then erase the connection and record
    `connection.deleted`; deleting never depends on the provider. Returns how revoking went
    (`{"ok": bool, "code": str | None}`, as the event records it). Raises ConnectionNotFound."""
    connection = await project_connection(runtime, project_id, connection_id)
    revocation = await revoke(runtime, connection)
    if not revocation["ok"]:
        log.warning("connection %s deleted, but revoking it at %s failed (%s)", connection_id, connection.provider, revocation["code"])
    await delete_connection(runtime, connection_id, revocation=revocation)  # (gone meanwhile: deleted all the same)
    return revocation


async def revoke(runtime: Runtime, connection: Connection) -> dict[str, Any]:
    """Revoke the grant at the provider, within one outbound call's deadline; never raises, so
    deleting never depends on the provider (the secrets are erased either way). Returns what the
    `connection.deleted` event records: `{"ok": bool, "code": str | None}`."""
    if connection.status == "revoked" and connection.last_error_code != TENANT_SHREDDED:
        return {"ok": True, "code": "already_revoked"}  # the provider refused the grant itself
    if connection.secrets is None:  # erased by a shred: the grant may live on at the provider
        return {"ok": False, "code": TENANT_SHREDDED}
    try:
        async with asyncio.timeout(runtime.settings.egress_timeout):
            found = await load_provider(runtime, connection.project_id, connection.provider)
            await found.provider.revoke(await unseal(runtime.vault, connection))
    except ProviderFailure as exc:
        return {"ok": False, "code": exc.code}
    except (ProviderNotFound, ProviderNotConfigured):
        return {"ok": False, "code": "provider_not_configured"}
    except TenantShredded:
        return {"ok": False, "code": "tenant_shredded"}
    except VaultError:
        return {"ok": False, "code": "credential_unreadable"}
    except TimeoutError:
        return {"ok": False, "code": "provider_timeout"}
    except Exception:
        log.exception("revoking connection %s at %s failed unexpectedly", connection.id, connection.provider)
        return {"ok": False, "code": "internal_error"}
    return {"ok": True, "code": None}

