"""A project's health at a glance: connections by status and by provider, the ones that need an
operator (in the order to look at them), and the latest failures with their reasons. Every
figure links into the connection list with the matching filters."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.dashboard import queries
from authpipe_server.dashboard.auth import OperatorDep, project_for
from authpipe_server.dashboard.pages.connections import (
    EVENT_LABELS,
    ProviderLook,
    connection_url,
    connections_url,
    look_of,
    moment,
    provider_looks,
    row_of,
)
from authpipe_server.dashboard.render import dashboard_page
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Event
from authpipe_server.store.types import utcnow

router = APIRouter()
T = TypeVar("T")

ATTENTION_SHOWN = 10
FAILURES_SHOWN = 10

ATTENTION = {
    "error": (
        "Failing now",
        "The token ran out and refreshing it keeps failing: calls for these users fail until the provider answers again.",
    ),
    "revoked": (
        "Revoked in the last 7 days",
        "The provider refused the grant (the user removed your app, or changed their password): they must connect again.",
    ),
    "expiring": (
        "Expiring soon, refresh failing",
        "Still active, but the token runs out within a day and its last refreshes failed.",
    ),
}


@router.get("/projects/{project_id}", response_class=HTMLResponse)
async def overview(request: Request, project_id: str, operator: OperatorDep, runtime: RuntimeDep) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    now = utcnow()
    # Three independent reads, each of which may scan the project's connections: side by side,
    # on connections of their own, the page waits for the slowest instead of their sum.
    counts, attention, failures = await asyncio.gather(
        read(runtime, lambda session: queries.connection_counts(session, project.id)),
        read(runtime, lambda session: queries.needing_attention(session, project.id, now, limit=ATTENTION_SHOWN)),
        read(runtime, lambda session: queries.recent_failures(session, project.id, limit=FAILURES_SHOWN)),
    )
    looks = await provider_looks(runtime, project.id)
    sections: list[dict[str, Any]] = []
    for found in attention:
        title, hint = ATTENTION[found.kind]
        sections.append(
            {
                "kind": found.kind,
                "title": title,
                "hint": hint,
                "rows": [row_of(c, looks, now) for c in found.connections],
                "more": found.more,
                "list_url": connections_url(project.id, status=found.kind) if found.kind != "expiring" else None,
            }
        )
    providers = [
        {
            "look": look_of(looks, name),
            "total": sum(by_status.values()),
            "by_status": by_status,
            "url": connections_url(project.id, provider=name),
            "status_urls": {s: connections_url(project.id, provider=name, status=s) for s in queries.STATUSES},
        }
        for name, by_status in counts.by_provider.items()
    ]
    return dashboard_page(
        request,
        "overview.html",
        operator,
        project=project,
        counts=counts,
        statuses=queries.STATUSES,
        status_urls={s: connections_url(project.id, status=s) for s in queries.STATUSES},
        all_url=connections_url(project.id),
        providers=providers,
        attention=sections,
        needs_attention=any(s["rows"] for s in sections),
        failures=[failure_item(e, looks, now) for e in failures],
        sandbox=bool(getattr(request.app.state, "sandbox", False)),
    )


def failure_item(event: Event, looks: Mapping[str, ProviderLook], now: datetime) -> dict[str, Any]:
    """A failure event as the overview lists it: the connection as it was then (the event's own
    copy: the connection may have changed or gone since) and the reason it had."""
    connection: dict[str, Any] = ((event.data or {}).get("data") or {}).get("connection") or {}
    return {
        "label": EVENT_LABELS.get(event.type, event.type),
        "type": event.type,
        "when": moment(event.created_at, now),
        "reason": queries.failure_reason(event),
        "connection": connection,
        "connection_id": event.connection_id,
        "look": look_of(looks, str(connection.get("provider", ""))),
        "url": connection_url(event.project_id, event.connection_id) if event.connection_id else None,
    }


async def read(runtime: Runtime, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with runtime.db.sessions() as session:
        return await query(session)
