"""The audit log page: newest first, keyset pages of 50 (`?before=<id>` older, `?after=<id>`
newer), as much as the operator may see (audit.visible_to)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.dashboard import audit
from authpipe_server.dashboard.auth import OperatorDep, not_found
from authpipe_server.dashboard.render import dashboard_page
from authpipe_server.store.models import Project

router = APIRouter()
ENTRY_ID = re.compile(r"aud_[0-9A-HJKMNP-TV-Z]{26}")


@router.get("/audit")
async def audit_log(
    request: Request, operator: OperatorDep, runtime: RuntimeDep, before: str | None = None, after: str | None = None
) -> HTMLResponse:
    for cursor in (before, after):
        if cursor is not None and not ENTRY_ID.fullmatch(cursor):
            raise not_found()
    page = await audit.page(runtime, operator, before=before, after=None if before else after)
    ids = {entry.project_id for entry in page.entries if entry.project_id}
    names: dict[str, str] = {}
    if ids:
        async with runtime.db.sessions() as session:
            names = dict((await session.execute(select(Project.id, Project.name).where(Project.id.in_(sorted(ids))))).all())
    return dashboard_page(
        request, "audit.html", operator, page=page, project_names=names, before=before, after=after, when=audit.when
    )
