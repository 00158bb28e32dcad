"""Sandbox-only pages (`authpipe dev`): one click from the landing page through a whole connect
flow against the emulators; the connection's page with the Simulate controls; the webhook inbox."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from authpipe_server import projects
from authpipe_server.api.deps import RuntimeDep
from authpipe_server.api.events import event_view
from authpipe_server.connect.sessions import create_session
from authpipe_server.connections.views import connection_view
from authpipe_server.credentials.refresh import ConnectionGone
from authpipe_server.monitor.checks import HealthChecker
from authpipe_server.providers.apps import list_providers
from authpipe_server.runtime import Runtime
from authpipe_server.sandbox import DEFAULT_PROJECT, TENANT_ID, USER_ID
from authpipe_server.sandbox.inbox import INBOX_PATH, RECEIVE_PATH, Inbox, verify
from authpipe_server.sandbox.providers import EMULATOR_OF
from authpipe_server.sandbox.simulate import ACTIONS, FAILURES, SimulateError, Simulator
from authpipe_server.store.models import Connection, Event
from authpipe_server.vault import VaultError
from authpipe_server.web.render import render

router = APIRouter(include_in_schema=False)
CONNECTION_ID = re.compile(r"conn_[0-9A-Z]{26}")
AUTHPIPE_ACTIONS = ("refresh", "check")
EVENTS_SHOWN = 12


async def default_project_id(runtime: Runtime) -> str:
    async with runtime.db.sessions() as session:
        return (await projects.project_by_name(session, DEFAULT_PROJECT)).id


async def sandbox_connection(runtime: Runtime, connection_id: str) -> Connection | None:
    """The connection, if it is project `default`'s: the sandbox pages show no other project's."""
    if not CONNECTION_ID.fullmatch(connection_id):
        return None
    project_id = await default_project_id(runtime)
    async with runtime.db.sessions() as session:
        connection = await session.get(Connection, connection_id)
    return connection if connection is not None and connection.project_id == project_id else None


def simulator(request: Request, runtime: Runtime) -> Simulator:
    return Simulator(runtime, request.app.state.sandbox_emulators)


def same_origin(request: Request, runtime: Runtime) -> bool:
    """A form post from the sandbox's own pages. Browsers mark it `Sec-Fetch-Site: same-origin`
    (older ones send a matching Origin; the pages' no-referrer policy makes Chromium's Origin
    "null"), so a page elsewhere cannot press these buttons for the user; and the Host must be the
    public URL's, so a DNS-rebound name, same-origin with itself, cannot either."""
    public = urlsplit(runtime.settings.public_url)
    if request.headers.get("host") != public.netloc:
        return False
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    return request.headers.get("origin") == f"{public.scheme}://{public.netloc}"


def not_found(request: Request) -> HTMLResponse:
    return render(request, "sandbox/not_found.html", 404)


@router.get("/sandbox/try/{provider}", response_model=None)
async def try_provider(request: Request, provider: str, runtime: RuntimeDep) -> Response:
    if provider not in EMULATOR_OF:
        return not_found(request)
    project_id = await default_project_id(runtime)
    public_url = runtime.settings.public_url
    created = await create_session(
        runtime,
        project_id,
        tenant_id=TENANT_ID,
        user_id=USER_ID,
        allowed_providers=[provider],
        scopes=None,
        origin=public_url,
        return_url=f"{public_url}/sandbox/connected",
    )
    return RedirectResponse(f"/connect/{provider}?session={created.token}", status_code=303)


@router.get("/sandbox/connected", response_model=None)
async def connected(request: Request, runtime: RuntimeDep, connection_id: str | None = None, error: str | None = None) -> Response:
    """Where a sandbox connect flow returns: on to the connection's page, or the failure as the
    application would receive it (`?error=access_denied`)."""
    if connection_id is not None:
        if await sandbox_connection(runtime, connection_id) is None:
            return not_found(request)
        return RedirectResponse(f"/sandbox/connections/{connection_id}", status_code=303)
    if error is not None:
        known = error if error.replace("_", "").isalnum() and len(error) <= 64 else "failed"
        return render(request, "sandbox/declined.html", code=known, public_url=runtime.settings.public_url)
    return not_found(request)


@router.get("/sandbox/connections/{connection_id}", response_class=HTMLResponse)
async def connection_page(request: Request, connection_id: str, runtime: RuntimeDep) -> HTMLResponse:
    row = await sandbox_connection(runtime, connection_id)
    if row is None:
        return not_found(request)
    async with runtime.db.sessions() as session:
        events = (
            await session.scalars(
                select(Event).where(Event.connection_id == row.id).order_by(Event.id.desc()).limit(EVENTS_SHOWN)
            )
        ).all()
    providers = {spec.name: spec.display_name for spec, _ in await list_providers(runtime, row.project_id)}
    inbox: Inbox = request.app.state.sandbox_inbox
    outcome, failed = request.query_params.get("outcome"), request.query_params.get("failed")
    return render(
        request,
        "sandbox/connection.html",
        connection=connection_view(row),
        display_name=providers.get(row.provider, row.provider),
        events=[event_view(e) for e in events],
        faults=simulator(request, runtime).faults(row.provider),
        webhooks=len(inbox.newest_first(row.id)),
        outcome=OUTCOMES.get(outcome or ""),
        failure=FAILURES.get(failed or ""),
        public_url=runtime.settings.public_url,
        inbox_path=INBOX_PATH,
    )


@router.post("/sandbox/connections/{connection_id}", response_model=None)
async def connection_action(
    request: Request, connection_id: str, runtime: RuntimeDep, action: Annotated[str, Form(max_length=32)] = ""
) -> Response:
    """One button of the page: a Simulate action at the provider, or Authpipe's refresh or check.
    Post/redirect/get: the page afterwards names what happened (by key, never echoing input)."""
    if not same_origin(request, runtime):
        return render(request, "sandbox/not_found.html", 403, reason="forbidden")
    row = await sandbox_connection(runtime, connection_id)
    if row is None:
        return not_found(request)
    if action not in ACTIONS and action not in AUTHPIPE_ACTIONS:
        return render(request, "sandbox/not_found.html", 400, reason="bad_action")
    failure = ""
    try:
        if action == "refresh":
            await runtime.refresher.refresh(row.id, seen=row.secrets)
        elif action == "check":
            await HealthChecker(runtime).check(row.id)
        else:
            await simulator(request, runtime).act(action, row)  # type: ignore[arg-type]
    except SimulateError as exc:
        failure = f"&failed={exc.code}"
    except ConnectionGone:
        failure = "&failed=deleted"
    except VaultError:
        failure = "&failed=no_tokens"
    return RedirectResponse(f"/sandbox/connections/{row.id}?outcome={action}{failure}", status_code=303)


OUTCOMES: dict[str, str] = {
    "revoke": "Revoked at the provider. Authpipe does not know yet: press Check now, or wait for the scheduled health check (every AUTHPIPE_HEALTH_INTERVAL seconds).",
    "expire": "The access token expired. Authpipe's background refresh picks it up within a second or two; watch the events.",
    "outage": "The provider now answers 500 to every call. Refreshes back off and keep the current token; checks never change the status.",
    "rate_limit": "The provider now answers 429 with Retry-After. Authpipe pauses this provider app's background work for as long as it asks.",
    "end_faults": "The provider answers normally again.",
    "refresh": "Authpipe refreshed the connection (or recorded why it could not).",
    "check": "Authpipe checked the connection with the provider's cheapest \"who am I\" call.",
}


@router.get(INBOX_PATH, response_class=HTMLResponse)
async def webhook_inbox(request: Request, runtime: RuntimeDep, connection_id: str | None = None) -> HTMLResponse:
    inbox: Inbox = request.app.state.sandbox_inbox
    wanted = connection_id if connection_id and await sandbox_connection(runtime, connection_id) else None
    return render(
        request,
        "sandbox/inbox.html",
        received=inbox.newest_first(wanted),
        connection_id=wanted,
        receive_url=runtime.settings.public_url + RECEIVE_PATH,
    )


@router.post(RECEIVE_PATH)
async def receive_webhook(request: Request, runtime: RuntimeDep) -> Response:
    """The receiver project `default`'s webhook points at: 204 when the signature verifies, 400
    (as a careful receiver answers) when not; both are kept and shown."""
    body = await request.body()
    verified, problem = await verify(runtime, await default_project_id(runtime), request.headers, body)
    inbox: Inbox = request.app.state.sandbox_inbox
    inbox.keep(request.headers, body, verified, problem)
    return Response(status_code=204 if verified else 400)

