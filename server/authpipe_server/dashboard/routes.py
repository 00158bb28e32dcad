"""The dashboard's one router (`/dashboard/…`, not in the API reference) and its error pages.

`install(app)` registers what the dependencies in `auth` raise (a 303 to the sign-in page, a
403 or 404 page) and answers the framework's own 404/405/400 under /dashboard with pages
instead of the API's JSON errors.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.dashboard import sessions
from authpipe_server.dashboard.auth import (
    NOT_FOUND_MESSAGE,
    DashboardRedirect,
    OperatorDep,
    PageRefusal,
    bad_input,
    project_for,
    runtime_of,
    signed_in_operator,
)
from authpipe_server.dashboard.pages import audit, connections, keys, overview, providers, signin, webhook
from authpipe_server.dashboard.render import SECTIONS, dashboard_page

PREFIX = "/dashboard"
router = APIRouter(prefix=PREFIX, include_in_schema=False)
for pages in (signin, audit, overview, connections, providers, webhook, keys):
    router.include_router(pages.router)


@router.get("", response_model=None)
async def home(request: Request, operator: OperatorDep) -> Response:
    """The first visible project's overview."""
    projects = getattr(request.state, "dashboard_projects", [])
    if not projects:
        return dashboard_page(request, "no_projects.html", operator)
    return RedirectResponse(f"{PREFIX}/projects/{projects[0].id}", status_code=303)


@router.get("/switch", response_model=None)
async def switch(request: Request, operator: OperatorDep, runtime: RuntimeDep, project: str = "", section: str = "overview") -> Response:
    """The project switcher (a GET form): the same section of another project."""
    target = await project_for(runtime, operator, project)
    sub = next((path for key, _, path in SECTIONS if key == section), "")
    return RedirectResponse(f"{PREFIX}/projects/{target.id}{sub}", status_code=303)


def is_dashboard(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def install(app: FastAPI) -> None:
    """Include the router and answer its refusals as pages."""
    app.include_router(router)
    previous_http: Callable[[Request, Any], Awaitable[Response]] | None = app.exception_handlers.get(StarletteHTTPException)
    previous_invalid: Callable[[Request, Any], Awaitable[Response]] | None = app.exception_handlers.get(RequestValidationError)

    @app.exception_handler(DashboardRedirect)
    async def _redirect(request: Request, exc: DashboardRedirect) -> Response:
        response = RedirectResponse(exc.location, status_code=303, headers={"Cache-Control": "no-store"})
        if exc.set_session:
            sessions.set_cookie(response, exc.set_session, runtime_of(request).settings.public_url)
        return response

    @app.exception_handler(PageRefusal)
    async def _refused(request: Request, exc: PageRefusal) -> HTMLResponse:
        operator = getattr(request.state, "dashboard_operator", None)
        return dashboard_page(request, exc.template, operator, exc.status, exc.headers, message=exc.message, heading=exc.heading)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_dashboard(request.url.path) and exc.status_code in (404, 405):
            operator = await signed_in_operator(request)  # the layout, for an operator who mistyped a URL
            return dashboard_page(request, "not_found.html", operator, exc.status_code, exc.headers, message=NOT_FOUND_MESSAGE)
        if previous_http is None:
            raise exc
        return await previous_http(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if is_dashboard(request.url.path):
            return await _refused(request, bad_input())
        if previous_invalid is None:
            raise exc
        return await previous_invalid(request, exc)
