"""Signing in and out.

The sign-in form is protected against cross-site posting before there is a session with a
double-submit token: the form page gives the browser a random cookie (HttpOnly, SameSite=Lax,
`__Host-` under https) and puts the same value in the form; a post whose field and cookie differ
is refused. Failed attempts are counted in the audit log (audit.retry_after): after 5 in 15
minutes from one address or for one email, the form answers 429 without checking the password.
A wrong email and a wrong password get the same message, after about the same time. Attempts
refused by throttling are not recorded: a guesser cannot grow the log past 5 rows per address
per window.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.connect.browser import secure
from authpipe_server.dashboard import accounts, audit, sessions
from authpipe_server.dashboard.auth import CsrfDep, bad_input, has_nul, runtime_of, safe_next, signed_in_operator
from authpipe_server.dashboard.render import dashboard_page
from authpipe_server.tokens import new_token

router = APIRouter()
FORM_COOKIE = "authpipe_dashboard_form"
WRONG = "Wrong email or password."
FIELD_LENGTH = 2048


def form_cookie_name(public_url: str) -> str:
    return f"__Host-{FORM_COOKIE}" if secure(public_url) else FORM_COOKIE


def sign_in_page(
    request: Request, *, status: int = 200, error: str | None = None, email: str = "", next_path: str | None = None,
    headers: dict[str, str] | None = None, signed_out: bool = False,
) -> HTMLResponse:
    """The form, with the browser's form token (made and set here when it has none)."""
    public_url = runtime_of(request).settings.public_url
    token = request.cookies.get(form_cookie_name(public_url))
    fresh = not (token and sessions.TOKEN.match(token))
    if fresh:
        token = new_token()
    page = dashboard_page(
        request,
        "sign_in.html",
        None,
        status,
        headers,
        form_token=token,
        error=error,
        email=email[:accounts.MAX_EMAIL_LENGTH],
        next=next_path,
        signed_out=signed_out,
        sandbox=getattr(request.app.state, "sandbox", False),
    )
    if fresh:
        page.set_cookie(form_cookie_name(public_url), token, path="/", httponly=True, samesite="lax", secure=secure(public_url))
    return page


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


@router.get("/sign-in", response_model=None)
async def sign_in_form(request: Request, runtime: RuntimeDep, next: str | None = None, signed_out: str | None = None) -> Response:
    if has_nul(request):
        raise bad_input()
    next_path = safe_next(next)
    if await signed_in_operator(request) is not None:
        return see_other(next_path or "/dashboard")
    return sign_in_page(request, next_path=next_path, signed_out=signed_out is not None)


@router.post("/sign-in", response_model=None)
async def sign_in(
    request: Request,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=FIELD_LENGTH)] = "",
    password: Annotated[str, Form(max_length=FIELD_LENGTH)] = "",
    csrf_token: Annotated[str, Form(max_length=FIELD_LENGTH)] = "",
    next: Annotated[str | None, Form(max_length=FIELD_LENGTH)] = None,
) -> Response:
    if has_nul(request) or "\x00" in email + password + csrf_token + (next or ""):
        raise bad_input()
    public_url = runtime.settings.public_url
    next_path = safe_next(next)
    expected = request.cookies.get(form_cookie_name(public_url))
    if not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
        return sign_in_page(
            request, status=403, email=email, next_path=next_path,
            error="This sign-in form expired or did not come from this page. Nothing was checked: try again.",
        )
    email = email.strip()
    wait = await audit.retry_after(runtime, request, email)
    if wait is not None:
        minutes = max(1, round(wait / 60))
        return sign_in_page(
            request, status=429, email=email, next_path=next_path, headers={"Retry-After": str(wait)},
            error=f"Too many failed sign-ins. Try again in about {minutes} minute{'s' if minutes != 1 else ''}.",
        )
    operator = await accounts.authenticate(runtime, email, password)
    if operator is None:
        await audit.record(runtime, email or "(none)", audit.SIGN_IN_FAILED, None, request)
        return sign_in_page(request, status=200, email=email, next_path=next_path, error=WRONG)
    previous = sessions.presented(request, public_url)
    if previous:  # a browser signing in again (maybe as someone else) starts afresh
        found = await sessions.find(runtime.db, previous)
        if found is not None:
            await sessions.revoke(runtime.db, found[0].id)
    started = await sessions.start(runtime.db, operator.id, request)
    await audit.record(runtime, operator, audit.SIGN_IN, None, request)
    return sessions.set_cookie(see_other(next_path or "/dashboard"), started.token, public_url)


@router.post("/sign-out", response_model=None)
async def sign_out(request: Request, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    await sessions.revoke(runtime.db, operator.session_id)
    await audit.record(runtime, operator, audit.SIGN_OUT, None, request)
    return sessions.clear_cookie(see_other("/dashboard/sign-in?signed_out=1"), runtime.settings.public_url)
