"""Sandbox-only pages (`authpipe dev`): one click from the landing page through a whole connect
flow against the emulators, ending on a page that shows the stored connection."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from authpipe_server import projects
from authpipe_server.api.deps import RuntimeDep
from authpipe_server.connect.sessions import create_session
from authpipe_server.connections.views import connection_view
from authpipe_server.sandbox_providers import EMULATOR_OF
from authpipe_server.store.models import Connection
from authpipe_server.web.render import render

router = APIRouter(prefix="/sandbox", include_in_schema=False)
DEFAULT_PROJECT = "default"
TENANT, USER = "sandbox", "you"


@router.get("/try/{provider}", response_model=None)
async def try_provider(request: Request, provider: str, runtime: RuntimeDep) -> Response:
    if provider not in EMULATOR_OF:
        return render(request, "sandbox/connected.html", 404, connection=None)
    async with runtime.db.sessions() as session:
        project = await projects.project_by_name(session, DEFAULT_PROJECT)
    public_url = runtime.settings.public_url
    created = await create_session(
        runtime,
        project.id,
        tenant_id=TENANT,
        user_id=USER,
        allowed_providers=[provider],
        scopes=None,
        origin=public_url,
        return_url=f"{public_url}/sandbox/connected",
    )
    return RedirectResponse(f"/connect/{provider}?session={created.token}", status_code=303)


@router.get("/connected", response_class=HTMLResponse)
async def connected(request: Request, runtime: RuntimeDep, connection_id: str | None = None) -> HTMLResponse:
    async with runtime.db.sessions() as session:
        project = await projects.project_by_name(session, DEFAULT_PROJECT)
        connection = await session.get(Connection, connection_id) if connection_id else None
    if connection is None or connection.project_id != project.id:
        return render(request, "sandbox/connected.html", 404, connection=None)
    return render(request, "sandbox/connected.html", connection=connection_view(connection), public_url=runtime.settings.public_url)
