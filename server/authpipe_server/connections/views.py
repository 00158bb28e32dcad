"""The public JSON of a connection (contract: `GET /v1/connections/{id}`). Never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from authpipe_server.store.models import Connection


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a Z, to the second: `2026-11-30T12:00:00Z`."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def connection_view(c: Connection) -> dict[str, Any]:
    return {
        "id": c.id,
        "provider": c.provider,
        "tenant_id": c.tenant_id,
        "user_id": c.user_id,
        "status": c.status,
        "account": {"id": c.account_id, "name": c.account_name},
        "resources": [{"id": r["id"], "name": r.get("name")} for r in c.resources or []],
        "scopes": list(c.scopes or []),
        "expires_at": iso(c.expires_at),
        "created_at": iso(c.created_at),
        "last_refreshed_at": iso(c.last_refreshed_at),
        "last_checked_at": iso(c.last_checked_at),
        "last_error": (
            {"code": c.last_error_code, "message": c.last_error_message, "at": iso(c.last_error_at)}
            if c.last_error_code
            else None
        ),
    }
