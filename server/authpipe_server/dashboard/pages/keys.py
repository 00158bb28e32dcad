"""The project's secret keys (`ap_sk_…`): the list (prefix, created, last used, revoked), a new
key (its value shown on that one page, never again: only its hash is stored), and revoking one
after a confirmation. The same functions as `authpipe keys create|list|revoke` (projects.py).

This page also shows the project itself (name and id, read-only): display name, branding and
limits are not project settings yet, so there is nothing to change here.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from authpipe_server import projects
from authpipe_server.api.deps import RuntimeDep
from authpipe_server.dashboard import audit
from authpipe_server.dashboard.auth import CsrfDep, Operator, OperatorDep, not_found, project_for
from authpipe_server.dashboard.render import dashboard_page
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Project, SecretKey

router = APIRouter()

CREATED = "key.created"
REVOKED = "key.revoked"
KEY_ID = re.compile(r"^key_[0-9A-Z]{26}$")
NOTICES = {"revoked": "Key revoked. Requests with it are refused from now on (within a few seconds on every server process)."}
NO_STORE = {"Cache-Control": "no-store"}


def keys_url(project: Project) -> str:
    return f"/dashboard/projects/{project.id}/keys"


async def keys_page(
    request: Request, runtime: Runtime, operator: Operator, project: Project, *, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    async with runtime.db.sessions() as session:
        keys = await projects.list_keys(session, project)
    keys.reverse()  # newest first
    return dashboard_page(request, "keys.html", operator, 200, headers, project=project, keys=keys, base=keys_url(project), when=audit.when, **context)


@router.get("/projects/{project_id}/keys", response_class=HTMLResponse)
async def keys(request: Request, project_id: str, operator: OperatorDep, runtime: RuntimeDep, notice: str | None = None) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    return await keys_page(request, runtime, operator, project, notice=NOTICES.get(notice or ""))


@router.post("/projects/{project_id}/keys", response_class=HTMLResponse)
async def create(request: Request, project_id: str, operator: CsrfDep, runtime: RuntimeDep) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    async with runtime.db.writing() as session:
        new = await projects.create_key(session, project)
    await audit.record(runtime, operator, CREATED, new.secret[: projects.SHOWN_PREFIX_LENGTH], request)
    # This answer carries the key: no-store, said here as well as in every page's defaults.
    return await keys_page(request, runtime, operator, project, headers=NO_STORE, new_key=new.secret, new_key_id=new.id)


async def project_key(runtime: Runtime, project: Project, key_id: str) -> SecretKey:
    """The project's key `key_id`; else the 404 page (a key of another project too)."""
    if not KEY_ID.match(key_id):
        raise not_found()
    async with runtime.db.sessions() as session:
        key = await session.get(SecretKey, key_id)
    if key is None or key.project_id != project.id:
        raise not_found()
    return key


@router.get("/projects/{project_id}/keys/{key_id}/revoke", response_class=HTMLResponse)
async def confirm_revoke(request: Request, project_id: str, key_id: str, operator: OperatorDep, runtime: RuntimeDep) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    key = await project_key(runtime, project, key_id)
    return dashboard_page(request, "keys.html", operator, project=project, confirm=key, base=keys_url(project), when=audit.when, keys=[])


@router.post("/projects/{project_id}/keys/{key_id}/revoke", response_model=None)
async def revoke(request: Request, project_id: str, key_id: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    project = await project_for(runtime, operator, project_id)
    await project_key(runtime, project, key_id)
    async with runtime.db.writing() as session:
        key = await projects.revoke_project_key(session, project.id, key_id)
        prefix = key.prefix
    await audit.record(runtime, operator, REVOKED, prefix, request)
    return RedirectResponse(f"{keys_url(project)}?notice=revoked", status_code=303)
