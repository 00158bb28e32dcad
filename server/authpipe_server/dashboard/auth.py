"""Who is signed in to the dashboard, and what they may see.

Routes take the signed-in operator as a dependency:

    @router.get("/projects/{project_id}/keys")
    async def keys(request: Request, project_id: str, operator: OperatorDep, runtime: RuntimeDep) -> HTMLResponse:
        project = await project_for(runtime, operator, project_id)      # 404 page if not theirs
        ...

    @router.post("/projects/{project_id}/keys")
    async def create(request: Request, project_id: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
        ...                                                              # 403 page on a bad token

A request without a live session is answered 303 to `/dashboard/sign-in?next=<path>` (a GET) or
to the sign-in page without `next` (a form post: its target is no page to come back to). The
refusals are exceptions (`DashboardRedirect`, `PageRefusal`) that `routes.install` answers.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit

from fastapi import Depends, Request
from sqlalchemy import select

from authpipe_server.dashboard import audit, sessions
from authpipe_server.dashboard.accounts import SANDBOX_EMAIL
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Operator as OperatorRow
from authpipe_server.store.models import Project

SIGN_IN_PATH = "/dashboard/sign-in"
CSRF_FIELD = "csrf_token"
PROJECTS_STATE = "dashboard_projects"
"""request.state attribute: the projects the signed-in operator may see (for the switcher)."""


@dataclass(frozen=True)
class Operator:
    """The signed-in operator of a request. `project_ids`: the projects they may see, or None
    for every project. `csrf_token`: their session's form token (hidden field `csrf_token`)."""

    id: str
    email: str
    project_ids: frozenset[str] | None
    session_id: str
    csrf_token: str

    def can_see(self, project_id: str) -> bool:
        return self.project_ids is None or project_id in self.project_ids

    def __repr__(self) -> str:
        return f"Operator(id={self.id!r}, email={self.email!r})"


class DashboardRedirect(Exception):
    """Answered 303 to `location`; `set_session` also sets the session cookie (automatic sign-in)."""

    def __init__(self, location: str, *, set_session: str | None = None) -> None:
        super().__init__(location)
        self.location, self.set_session = location, set_session


class PageRefusal(Exception):
    """Answered with the dashboard page `template` (`forbidden.html`, `not_found.html`) at
    `status`, with `message`, an optional `heading` and `headers`."""

    def __init__(
        self, status: int, template: str, message: str, headers: dict[str, str] | None = None, *, heading: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.template, self.message, self.headers, self.heading = status, template, message, headers or {}, heading


NOT_FOUND_MESSAGE = "There is no such page, or it belongs to a project you cannot see."


def not_found() -> PageRefusal:
    return PageRefusal(404, "not_found.html", NOT_FOUND_MESSAGE)


def forbidden(
    message: str = "This form is out of date or did not come from the dashboard. Nothing was changed: go back, reload the page and try again.",
) -> PageRefusal:
    return PageRefusal(403, "forbidden.html", message, heading="Refused")


def bad_input() -> PageRefusal:
    return PageRefusal(
        400,
        "forbidden.html",
        "The form or address had a value this page cannot take (too long, or of the wrong kind). Nothing was changed.",
        heading="That did not work",
    )


def has_nul(request: Request) -> bool:
    """A NUL character in the URL: no column can store it (PostgreSQL refuses it in text)."""
    return "%00" in request.url.query or "\x00" in request.url.path


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def safe_next(value: str | None) -> str | None:
    """`value` when it is a path of this dashboard (`/dashboard`, `/dashboard/…`, with a query),
    else None: a `next` parameter never sends the browser to another site (`//evil`, `/\\evil`,
    `https://…`) or outside the dashboard."""
    if not value or len(value) > 2048 or any(ch in value for ch in "\\\r\n\t\x00"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    path = unquote(parts.path)  # browsers resolve `%2e%2e` as `..`
    if path != "/dashboard" and not path.startswith("/dashboard/"):
        return None
    if "/../" in path + "/" or "/./" in path + "/" or "//" in path or "\\" in path:
        return None
    return value


def sign_in_location(next_path: str | None) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_path, safe='/')}" if next_path else SIGN_IN_PATH


def _wanted_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def signed_in_operator(request: Request) -> Operator | None:
    """The operator of this request's live session, or None (no redirect, no automatic sign-in)."""
    cached = getattr(request.state, "dashboard_operator", None)
    if isinstance(cached, Operator):
        return cached
    runtime = runtime_of(request)
    token = sessions.presented(request, runtime.settings.public_url)
    found = await sessions.find(runtime.db, token) if token else None
    if found is None:
        return None
    row, account = found
    operator = Operator(
        id=account.id,
        email=account.email,
        project_ids=None if account.project_ids is None else frozenset(account.project_ids),
        session_id=row.id,
        csrf_token=row.csrf_token,
    )
    request.state.dashboard_operator = operator
    setattr(request.state, PROJECTS_STATE, await visible_projects(runtime, operator))
    return operator


async def current_operator(request: Request) -> Operator:
    """The signed-in operator, or a DashboardRedirect to the sign-in page. In the sandbox, a
    browser on this machine without a session is signed in as `sandbox@localhost` instead."""
    if has_nul(request):
        raise bad_input()
    operator = await signed_in_operator(request)
    if operator is not None:
        return operator
    page_load = request.method in ("GET", "HEAD")
    automatic = await sandbox_sign_in(request, runtime_of(request), _wanted_path(request)) if page_load else None
    if automatic is not None:
        raise automatic
    raise DashboardRedirect(sign_in_location(safe_next(_wanted_path(request)) if page_load else None))


OperatorDep = Annotated[Operator, Depends(current_operator)]


async def csrf_checked(request: Request, operator: OperatorDep) -> Operator:
    """The signed-in operator, once the form's `csrf_token` matches their session's (compared in
    constant time); else the 403 page, before the route does anything. A form with a NUL
    character anywhere is refused too (400), so no route has to think of it."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), operator.csrf_token.encode()):
        raise forbidden()
    if any(isinstance(value, str) and "\x00" in value for _, value in form.multi_items()):
        raise bad_input()
    return operator


CsrfDep = Annotated[Operator, Depends(csrf_checked)]


async def visible_projects(runtime: Runtime, operator: Operator) -> list[Project]:
    """The projects the operator may see, oldest first."""
    query = select(Project).order_by(Project.created_at, Project.id)
    if operator.project_ids is not None:
        if not operator.project_ids:
            return []
        query = query.where(Project.id.in_(sorted(operator.project_ids)))
    async with runtime.db.sessions() as session:
        return list(await session.scalars(query))


async def project_for(runtime: Runtime, operator: Operator, project_id: str) -> Project:
    """The project, when the operator may see it; else the 404 page (the same for a project that
    does not exist: a limited operator learns nothing about the others)."""
    if not operator.can_see(project_id) or len(project_id) > 40:
        raise not_found()
    async with runtime.db.sessions() as session:
        project = await session.get(Project, project_id)
    if project is None:
        raise not_found()
    return project


def sandbox_sign_in_allowed(request: Request, runtime: Runtime) -> bool:
    """`authpipe dev` only (never `serve`), a browser on this machine (a loopback client),
    addressing the sandbox by its public URL's host (so a DNS-rebound name cannot)."""
    if getattr(request.app.state, "sandbox", False) is not True:
        return False
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
    return loopback and request.headers.get("host") == urlsplit(runtime.settings.public_url).netloc


async def sandbox_sign_in(request: Request, runtime: Runtime, then: str) -> DashboardRedirect | None:
    """In the sandbox, sign this browser in as `sandbox@localhost`: the redirect to `then` that
    sets its cookie; None when that does not apply."""
    if not sandbox_sign_in_allowed(request, runtime):
        return None
    async with runtime.db.sessions() as session:
        operator_id = await session.scalar(select(OperatorRow.id).where(OperatorRow.email == SANDBOX_EMAIL))
    if operator_id is None:
        return None
    started = await sessions.start(runtime.db, operator_id, request)
    await audit.record(runtime, SANDBOX_EMAIL, audit.SIGN_IN, None, request, detail={"automatic": True}, operator_id=operator_id)
    return DashboardRedirect(safe_next(then) or "/dashboard", set_session=started.token)
