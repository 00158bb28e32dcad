"""The dashboard's pages: `dashboard_page` renders `dashboard/<name>` in the layout
(`dashboard/base.html`: header, project switcher, navigation, signed-in operator, sign-out),
under the same security headers as every page (web/render.py: strict CSP, no-store).

    return dashboard_page(request, "keys.html", operator, project=project, keys=rows)

Context every dashboard template gets:
- `operator` (auth.Operator or None on the sign-in and error pages) and `csrf_token`: put
  `<input type="hidden" name="csrf_token" value="{{ csrf_token }}">` in every POST form;
- `projects`: the projects the operator may see; `project`: the current one (the `project`
  passed in, else the first visible one), which the navigation links point into;
- `nav`: the navigation items (key, label, url, current), `section`: the current item's key;
- `sandbox_auto`: True when this is `authpipe dev`'s automatically signed-in operator;
- `notice` (optional, pass it): a one-line confirmation shown above the content (role=status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from authpipe_server.dashboard.accounts import SANDBOX_EMAIL
from authpipe_server.dashboard.auth import PROJECTS_STATE, Operator
from authpipe_server.store.models import Project
from authpipe_server.web.render import render

SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("overview", "Overview", ""),
    ("connections", "Connections", "/connections"),
    ("providers", "Providers", "/providers"),
    ("webhook", "Webhook", "/webhook"),
    ("keys", "Keys", "/keys"),
)
"""Project-scoped navigation: key, label, path under /dashboard/projects/{id}."""
AUDIT = ("audit", "Audit log", "/dashboard/audit")


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: str
    current: bool


def section_of(path: str) -> str | None:
    """The navigation item a dashboard path belongs to (`/dashboard/projects/x/keys/…` → keys)."""
    if path == AUDIT[2] or path.startswith(AUDIT[2] + "/"):
        return AUDIT[0]
    parts = path.split("/")
    if len(parts) < 4 or parts[:3] != ["", "dashboard", "projects"]:
        return None
    if len(parts) == 4 or parts[4] == "":
        return "overview"
    return next((key for key, _, sub in SECTIONS if sub == "/" + parts[4]), None)


def navigation(project: Project | None, section: str | None) -> list[NavItem]:
    items = []
    if project is not None:
        base = f"/dashboard/projects/{project.id}"
        items = [NavItem(key, label, base + sub, key == section) for key, label, sub in SECTIONS]
    items.append(NavItem(AUDIT[0], AUDIT[1], AUDIT[2], section == AUDIT[0]))
    return items


def dashboard_page(
    request: Request,
    name: str,
    operator: Operator | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render `dashboard/<name>` in the layout (see the module's docstring for the context)."""
    projects: list[Project] = getattr(request.state, PROJECTS_STATE, []) if operator is not None else []
    project = context.pop("project", None) or (projects[0] if projects else None)
    section = section_of(request.url.path)
    sandbox_auto = bool(operator is not None and operator.email == SANDBOX_EMAIL and getattr(request.app.state, "sandbox", False))
    return render(
        request,
        f"dashboard/{name}",
        status,
        headers,
        operator=operator,
        csrf_token=operator.csrf_token if operator is not None else None,
        projects=projects,
        project=project,
        nav=navigation(project, section) if operator is not None else [],
        section=section,
        sandbox_auto=sandbox_auto,
        **context,
    )
