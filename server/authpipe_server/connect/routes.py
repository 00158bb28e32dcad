"""Browser routes of the connect flow: the hosted page, the start of each provider's flow, the
app-password form, and the one OAuth redirect URI."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.api.params import PROVIDER_PATTERN
from authpipe_server.connect.browser import identify, presented, remember, same_browser
from authpipe_server.connect.errors import ConnectError
from authpipe_server.connect.flow import Connected, complete_authorization, connect_app_password, session_provider, start_authorization
from authpipe_server.connect.sessions import allows, find_session
from authpipe_server.connections.views import connection_view
from authpipe_server.providers.apps import list_providers
from authpipe_server.store.models import ConnectSession
from authpipe_server.web.render import render

router = APIRouter(include_in_schema=False)
PROVIDER = re.compile(PROVIDER_PATTERN)
FIELD_MAX = 512


def error_page(request: Request, error: ConnectError) -> HTMLResponse:
    return result_page(request, error.session, ok=False, code=error.code, message=error.message, status=error.status)


def result_page(
    request: Request,
    connect_session: ConnectSession | None,
    *,
    ok: bool,
    connection: dict[str, Any] | None = None,
    code: str | None = None,
    message: str | None = None,
    status: int = 200,
    display_name: str | None = None,
) -> HTMLResponse:
    """The page that ends every flow. It posts the outcome to `window.opener` with the session's
    exact origin (never `*`), or, without an opener, goes on to the session's own return_url."""
    outcome: dict[str, Any] = {"type": "authpipe:connect", "ok": ok}
    if ok:
        outcome["connection"] = connection
    else:
        outcome |= {"code": code, "message": message}
    return_to = None
    if connect_session is not None and connect_session.return_url:
        extra = {"connection_id": connection["id"]} if ok and connection else {"error": code or "failed"}
        return_to = with_query(connect_session.return_url, extra)
    payload = {"message": outcome, "origin": connect_session.origin if connect_session else None, "returnUrl": return_to}
    # JSON inside <script type="application/json">: escape "<" so no value can close the element.
    data = json.dumps(payload).replace("<", "\\u003c")
    return render(request, "connect/result.html", status, ok=ok, code=code, message=message, connection=connection, data=data, return_to=return_to, display_name=display_name)


def with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


@router.get("/connect", response_class=HTMLResponse)
async def connect_page(request: Request, runtime: RuntimeDep, session: str | None = None) -> HTMLResponse:
    try:
        async with runtime.db.sessions() as db_session:
            connect_session = await find_session(db_session, session)
    except ConnectError as exc:
        return error_page(request, exc)
    providers = [
        spec
        for spec, configured in await list_providers(runtime, connect_session.project_id)
        if configured and allows(connect_session, spec.name)
    ]
    if connect_session.allowed_providers:  # in the order the app asked for
        order = {name: i for i, name in enumerate(connect_session.allowed_providers)}
        providers.sort(key=lambda spec: order[spec.name])
    cards = []
    for spec in providers:
        wanted = (connect_session.scopes or {}).get(spec.name) or []
        described = {s.name: s.description for s in spec.scopes}
        names = wanted or list(spec.default_scopes)
        cards.append({"spec": spec, "scopes": [(n, described.get(n, n)) for n in names]})
    public_url = runtime.settings.public_url
    page = render(request, "connect/choose.html", cards=cards, session=session)
    return remember(page, identify(request, public_url), public_url)


@router.get("/connect/{provider}", response_model=None)
async def start(request: Request, provider: str, runtime: RuntimeDep, session: str | None = None) -> Response:
    try:
        if not PROVIDER.match(provider):
            raise ConnectError("provider_not_found", "there is no such provider", 404)
        _, project_provider = await session_provider(runtime, session, provider)
        public_url = runtime.settings.public_url
        browser = identify(request, public_url)
        if project_provider.spec.auth_mode == "app_password":
            form = app_password_form(request, project_provider.spec.display_name, provider, session or "", browser.hash)
            return remember(form, browser, public_url)
        authorize = await start_authorization(runtime, session, provider, browser.hash)
        redirect = RedirectResponse(authorize, status_code=302, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        return remember(redirect, browser, public_url)
    except ConnectError as exc:
        return error_page(request, exc)


def app_password_form(
    request: Request, display_name: str, provider: str, session: str, browser: str, *, identifier: str = "", error: ConnectError | None = None
) -> HTMLResponse:
    """The form carries `browser`, the hash of the cookie of the browser it was given to: its POST
    is accepted only with that same cookie (connect.browser). Cross-site posts never carry the
    SameSite=Lax cookie, and a form copied to another browser fails the comparison."""
    return render(
        request,
        "connect/app_password.html",
        error.status if error else 200,
        provider=provider,
        display_name=display_name,
        session=session,
        browser=browser,
        identifier=identifier,
        error=error,
    )


@router.post("/connect/{provider}", response_model=None)
async def submit_app_password(request: Request, provider: str, runtime: RuntimeDep) -> Response:
    try:
        form = await request.form(max_files=0, max_fields=10)
    except Exception:
        return error_page(request, ConnectError("invalid_request", "the form could not be read"))
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    session, identifier, app_password = fields.get("session", ""), fields.get("identifier", ""), fields.get("app_password", "")
    browser = fields.get("browser", "")
    try:
        if not PROVIDER.match(provider):
            raise ConnectError("provider_not_found", "there is no such provider", 404)
        if any(len(v) > FIELD_MAX for v in (session, identifier, app_password, browser)):
            raise ConnectError("invalid_request", "a field is too long")
        _, project_provider = await session_provider(runtime, session, provider)
        if not same_browser(browser, presented(request, runtime.settings.public_url)):
            raise ConnectError("browser_mismatch", "finish connecting in the browser where you started", 403)
    except ConnectError as exc:
        return error_page(request, exc)
    name = project_provider.spec.display_name
    if not identifier.strip() or not app_password.strip():
        error = ConnectError("invalid_request", "enter your handle and an app password")
        return app_password_form(request, name, provider, session, browser, identifier=identifier, error=error)
    try:
        connected = await connect_app_password(runtime, session, provider, identifier, app_password)
    except ConnectError as exc:
        if exc.code in ("session_expired", "session_completed", "account_changed", "invalid_session", "provider_not_allowed", "provider_not_configured"):
            return error_page(request, exc)
        return app_password_form(request, name, provider, session, browser, identifier=identifier, error=exc)
    return success_page(request, connected)


def success_page(request: Request, connected: Connected) -> HTMLResponse:
    return result_page(request, connected.session, ok=True, connection=connection_view(connected.connection), display_name=connected.display_name)


@router.get("/oauth/callback", response_class=HTMLResponse)
async def callback(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params:  # a repeated parameter is ambiguous: refuse rather than pick one
            return error_page(request, ConnectError("invalid_request", f"the sign-in answer repeats {key!r}"))
        params[key] = value
    try:
        connected = await complete_authorization(runtime, params, presented(request, runtime.settings.public_url))
    except ConnectError as exc:
        return error_page(request, exc)
    return success_page(request, connected)
