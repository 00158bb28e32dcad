"""The consent page the OAuth emulators show, its error page, and reading the posted decision.

The consent form posts back to the authorization URL itself (it has no action attribute), so
the original query comes along and the emulator validates the request again rather than trust
hidden fields.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse

_USER_ID = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)


@dataclasses.dataclass(frozen=True)
class KnownUser:
    id: str
    label: str


@dataclasses.dataclass(frozen=True)
class Decision:
    approved: bool
    user_id: str
    granted: tuple[str, ...]
    declined: tuple[str, ...]


def consent_page(
    *,
    provider: str,
    app_name: str,
    scopes: Sequence[str],
    users: Sequence[KnownUser],
    user_id: str,
    selectable: bool,
    error: str | None = None,
    note: str | None = None,
) -> HTMLResponse:
    """`selectable`: the person may untick scopes (Facebook lets users decline permissions);
    `note`: a paragraph explaining the page (why Instagram's consent is Facebook's)."""
    html = _templates.get_template("consent.html").render(
        provider=provider,
        app_name=app_name,
        scopes=scopes,
        users=users,
        user_id=user_id,
        selectable=selectable,
        error=error,
        note=note,
    )
    return HTMLResponse(html, status_code=400 if error else 200)


def error_page(
    provider: str, title: str, message: str, *, status: int = 400, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    html = _templates.get_template("error.html").render(provider=provider, title=title, message=message)
    return HTMLResponse(html, status_code=status, headers=headers)


async def read_decision(request: Request, scopes: tuple[str, ...], *, selectable: bool) -> Decision | str:
    """The posted decision, or a sentence saying what to fix, to show on the page again.

    Without the `scope_choice` marker (a client posting the form by hand) every requested
    scope is granted.
    """
    form = await request.form()
    user_id = str(form.get("user") or "").strip()
    if not _USER_ID.fullmatch(user_id):
        return "Enter a user id: 1 to 64 letters, digits or . _ @ -"
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        return "Choose Approve or Deny."
    granted = scopes
    if selectable and form.get("scope_choice"):
        chosen = set(form.getlist("granted"))
        granted = tuple(scope for scope in scopes if scope in chosen)
    declined = tuple(scope for scope in scopes if scope not in granted)
    return Decision(approved=decision == "approve", user_id=user_id, granted=granted, declined=declined)
