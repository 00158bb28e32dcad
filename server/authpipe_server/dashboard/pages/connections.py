"""The connections pages: the list (filters, search, keyset pages) and one connection (what the
API shows of it, its resources, scopes and event timeline, and the Refresh now / Check now /
Delete buttons).

The buttons act through connections.actions, as the API's routes do, and are recorded in the
audit log. Each answers 303 back to a page that names the outcome by a fixed code (post,
redirect, get): nothing a request carries is ever echoed into a page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Mapping, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.api.events import event_view
from authpipe_server.api.params import ID_PATTERN, PROVIDER_PATTERN
from authpipe_server.connections import actions
from authpipe_server.connections.views import connection_view
from authpipe_server.credentials.read import CredentialError
from authpipe_server.dashboard import audit, queries
from authpipe_server.dashboard.auth import CsrfDep, Operator, OperatorDep, not_found, project_for
from authpipe_server.dashboard.render import dashboard_page
from authpipe_server.providers.apps import list_providers
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection, Event, Project
from authpipe_server.store.types import utcnow
from authpipe_server.web.render import HERE as WEB

router = APIRouter()

PAGE_SIZE = 50
EVENTS_PAGE_SIZE = 20
MAX_SEARCH = 200
CONNECTION_ID = re.compile(r"conn_[0-9A-Z]{26}")
EVENT_ID_PATTERN = r"^evt_[0-9A-Z]{26}$"
CONNECTION_ID_PATTERN = r"^conn_[0-9A-Z]{26}$"
M = TypeVar("M", bound=BaseModel)
LOGOS = frozenset(p.stem for p in (WEB / "static" / "providers").glob("*.svg")) - {"generic"}

# -- how things look ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderLook:
    """A provider as the pages show it: its display name and logo (a lettermark; custom
    providers and unknown names get the generic one)."""

    name: str
    display_name: str
    logo: str


def generic_look(name: str) -> ProviderLook:
    return ProviderLook(name, name, "/static/providers/generic.svg")


async def provider_looks(runtime: Runtime, project_id: str) -> dict[str, ProviderLook]:
    looks = {}
    for spec, _ in await list_providers(runtime, project_id):
        logo = spec.name if spec.name in LOGOS and not spec.custom else "generic"
        looks[spec.name] = ProviderLook(spec.name, spec.display_name, f"/static/providers/{logo}.svg")
    return looks


def look_of(looks: Mapping[str, ProviderLook], name: str) -> ProviderLook:
    return looks.get(name) or generic_look(name)


@dataclass(frozen=True)
class Moment:
    """A time as the pages show it: how far from now, in words; ISO-8601 for `<time datetime>`;
    and in full (UTC, to the second) where the exact time matters."""

    iso: str
    text: str
    utc: str


def moment(value: datetime | None, now: datetime) -> Moment | None:
    if value is None:
        return None
    seconds = (value - now).total_seconds()
    span = abs(seconds)
    iso, utc = value.strftime("%Y-%m-%dT%H:%M:%SZ"), value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if span < 60:
        words = "less than a minute"
    elif span < 3600:
        words = f"{int(span // 60)} min"
    elif span < 48 * 3600:
        words = f"{int(span // 3600)} h"
    elif span < 60 * 86400:
        words = f"{int(span // 86400)} days"
    else:
        return Moment(iso, value.strftime("%Y-%m-%d"), utc)
    return Moment(iso, f"{words} ago" if seconds < 0 else f"in {words}", utc)


def row_of(connection: Connection, looks: Mapping[str, ProviderLook], now: datetime) -> dict[str, Any]:
    """A connection for a template: the API's view (never a secret) with its provider's look and
    its times in words."""
    view = connection_view(connection)
    view["look"] = look_of(looks, connection.provider)
    view["url"] = connection_url(connection.project_id, connection.id)
    view["times"] = {
        "expires_at": moment(connection.expires_at, now),
        "created_at": moment(connection.created_at, now),
        "last_refreshed_at": moment(connection.last_refreshed_at, now),
        "last_checked_at": moment(connection.last_checked_at, now),
        "last_error_at": moment(connection.last_error_at, now),
    }
    return view


def connections_url(project_id: str, **query: str | None) -> str:
    """The list, with these filters (None and empty values left out)."""
    kept = {k: v for k, v in query.items() if v}
    base = f"/dashboard/projects/{project_id}/connections"
    return f"{base}?{urlencode(kept)}" if kept else base


def connection_url(project_id: str, connection_id: str, **query: str | None) -> str:
    kept = {k: v for k, v in query.items() if v}
    base = f"/dashboard/projects/{project_id}/connections/{connection_id}"
    return f"{base}?{urlencode(kept)}" if kept else base


EVENT_LABELS = {
    "connection.created": "Connected",
    "connection.refreshed": "Token refreshed",
    "connection.refresh_failed": "Refresh failed after expiry",
    "connection.revoked": "Revoked",
    "connection.recovered": "Recovered",
    "connection.updated": "Account details changed",
    "connection.account_changed": "Reconnected with another account",
    "connection.deleted": "Deleted",
}


def event_item(event: Event, now: datetime) -> dict[str, Any]:
    view = event_view(event)
    view["label"] = EVENT_LABELS.get(event.type, event.type)
    view["when"] = moment(event.created_at, now)
    view["failure"] = event.type in queries.FAILURE_EVENTS
    return view


# -- what the buttons did ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


OUTCOMES: dict[str, Outcome] = {
    "refreshed": Outcome(True, "Refreshed: the provider issued a new access token."),
    "refresh_failed": Outcome(
        False,
        "The provider failed to refresh the token. The connection keeps its current token while it is valid and "
        "Authpipe retries with backoff; the last error below says what the provider answered.",
    ),
    "refresh_revoked": Outcome(False, "Not refreshed: the provider refused the grant. The connection is revoked; the user must connect again."),
    "checked": Outcome(True, "Checked: the provider accepted the token."),
    "check_revoked": Outcome(False, "Checked: the provider refused the grant. The connection is revoked; the user must connect again."),
    "check_failed": Outcome(
        False,
        "The check could not conclude: the provider failed or could not be reached. No status changed; the last error "
        "below says what happened, and Authpipe checks again soon.",
    ),
    "already_revoked": Outcome(False, "This connection is revoked: there is no grant left to refresh or check. The user must connect again."),
    "tenant_shredded": Outcome(False, "Not done: this tenant's data key was destroyed, so the connection's credential is gone for good."),
    "credential_unreadable": Outcome(False, "Not done: the stored credential failed to decrypt (it was altered). The user must connect again."),
    "deleted": Outcome(True, "Deleted: the connection and its secrets are erased, and its grant revoked at the provider where the provider offers that."),
    "deleted_not_revoked": Outcome(
        False,
        "Deleted: the connection and its secrets are erased, but revoking the grant at the provider failed, so the "
        "provider may still list your app in the user's account. The audit log has the reason.",
    ),
}
LIST_OUTCOMES = ("deleted", "deleted_not_revoked")


def credential_outcome(error: CredentialError, before: Connection, revoked_code: str) -> str:
    if error.code in ("tenant_shredded", "credential_unreadable"):
        return error.code
    return "already_revoked" if before.status == "revoked" else revoked_code


# -- input ----------------------------------------------------------------------------------------

IdFilter = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

RULES = {
    "provider": "a provider's name (lowercase letters, digits and -)",
    "status": "active, error or revoked",
    "tenant": "a tenant id (up to 256 letters, digits and . _ : @ -)",
    "user": "a user id (up to 256 letters, digits and . _ : @ -)",
    "q": f"at most {MAX_SEARCH} characters, none of them control characters",
    "after": "a connection id (conn_…)",
    "before": "a connection id (conn_…)",
    "limit": "a whole number from 1 to 100",
    "outcome": "one of the dashboard's own outcome codes",
    "events_after": "an event id (evt_…)",
    "events_before": "an event id (evt_…)",
}


class ListQuery(BaseModel):
    """The list's query string. Unknown parameters are ignored; empty ones mean "any"."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    provider: Annotated[str, StringConstraints(pattern=PROVIDER_PATTERN)] | None = None
    status: Annotated[str, StringConstraints(pattern="^(active|error|revoked)$")] | None = None
    tenant: IdFilter | None = None
    user: IdFilter | None = None
    q: Annotated[str, StringConstraints(max_length=MAX_SEARCH, strip_whitespace=True)] | None = None
    after: Annotated[str, StringConstraints(pattern=CONNECTION_ID_PATTERN)] | None = None
    before: Annotated[str, StringConstraints(pattern=CONNECTION_ID_PATTERN)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = PAGE_SIZE
    outcome: Annotated[str, StringConstraints(pattern="^(" + "|".join(LIST_OUTCOMES) + ")$")] | None = None

    @field_validator("q")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in value):
            raise ValueError("control characters")
        return value or None

    @field_validator("limit", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        if isinstance(value, str) and not (value.isascii() and value.isdigit()):
            raise ValueError("not a whole number")
        return value

    def filters(self) -> queries.ConnectionFilter:
        return queries.ConnectionFilter(provider=self.provider, status=self.status, tenant_id=self.tenant, user_id=self.user, q=self.q)

    def filter_query(self) -> dict[str, str | None]:
        """The filters as URL parameters (pager links keep them)."""
        return {
            "provider": self.provider,
            "status": self.status,
            "tenant": self.tenant,
            "user": self.user,
            "q": self.q,
            "limit": str(self.limit) if self.limit != PAGE_SIZE else None,
        }


class ConnectionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    events_after: Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)] | None = None
    events_before: Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)] | None = None
    outcome: Annotated[str, StringConstraints(pattern="^(" + "|".join(o for o in OUTCOMES if o not in LIST_OUTCOMES) + ")$")] | None = None


class BadQuery(Exception):
    """A query parameter given twice or breaking its rule; `parameter` is its name."""

    def __init__(self, parameter: str) -> None:
        super().__init__(parameter)
        self.parameter = parameter


def bad_request_page(request: Request, operator: Operator, project: Project, parameter: str) -> HTMLResponse:
    """The 400 page, naming the parameter (from a fixed list) and its rule; never its value."""
    message = f"The address has a bad “{parameter}”: it must be {RULES[parameter]}. Nothing was looked up."
    return dashboard_page(request, "_conn_bad_request.html", operator, status=400, project=project, message=message)


def parse_query(model: type[M], request: Request, *, exclusive: tuple[str, str] | None = None) -> M:
    """The request's query string as `model`; BadQuery for a parameter given twice, one that
    breaks its rule, or both of an exclusive pair."""
    params = request.query_params
    given: dict[str, str] = {}
    for name in model.model_fields:
        values = params.getlist(name)
        if len(values) > 1:
            raise BadQuery(name)
        if values and values[0] != "":
            given[name] = values[0]
    if exclusive is not None and all(name in given for name in exclusive):
        raise BadQuery(exclusive[1])
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"][0]
        raise BadQuery(str(first)) from None


def connection_id_or_404(connection_id: str) -> str:
    if not CONNECTION_ID.fullmatch(connection_id):
        raise not_found()
    return connection_id


# -- the pages ------------------------------------------------------------------------------------


@router.get("/projects/{project_id}/connections", response_class=HTMLResponse)
async def list_page(request: Request, project_id: str, operator: OperatorDep, runtime: RuntimeDep) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    try:
        query = parse_query(ListQuery, request, exclusive=("after", "before"))
    except BadQuery as exc:
        return bad_request_page(request, operator, project, exc.parameter)
    filters = query.filters()
    now = utcnow()
    async with runtime.db.sessions() as session:
        page = await queries.connection_page(session, project.id, filters, after=query.after, before=query.before, limit=query.limit)
        if query.after is None and query.before is None and page.older is None:
            matching = len(page.items)  # all there is: a rare filter's scan is not done twice
        else:
            matching = await queries.count_connections(session, project.id, filters)
    looks = await provider_looks(runtime, project.id)
    kept = query.filter_query()
    providers = sorted(looks.values(), key=lambda p: p.display_name.lower())
    if query.provider and query.provider not in looks:
        providers.append(generic_look(query.provider))
    return dashboard_page(
        request,
        "connections.html",
        operator,
        project=project,
        query=query,
        filters_active=filters.active,
        providers=providers,
        statuses=queries.STATUSES,
        rows=[row_of(c, looks, now) for c in page.items],
        matching=min(matching, queries.COUNT_CAP),
        more_than=matching > queries.COUNT_CAP,
        paged=query.after is not None or query.before is not None,
        newer_url=connections_url(project.id, **kept, before=page.newer) if page.newer else None,
        older_url=connections_url(project.id, **kept, after=page.older) if page.older else None,
        first_url=connections_url(project.id, **kept),
        clear_url=connections_url(project.id),
        outcome=OUTCOMES.get(query.outcome or ""),
    )


@router.get("/projects/{project_id}/connections/{connection_id}", response_class=HTMLResponse)
async def connection_page(request: Request, project_id: str, connection_id: str, operator: OperatorDep, runtime: RuntimeDep) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    connection = await _connection(runtime, project, connection_id)
    try:
        query = parse_query(ConnectionQuery, request, exclusive=("events_after", "events_before"))
    except BadQuery as exc:
        return bad_request_page(request, operator, project, exc.parameter)
    now = utcnow()
    async with runtime.db.sessions() as session:
        timeline = await queries.connection_events(
            session, project.id, connection.id, after=query.events_after, before=query.events_before, limit=EVENTS_PAGE_SIZE
        )
    looks = await provider_looks(runtime, project.id)
    return dashboard_page(
        request,
        "connection.html",
        operator,
        project=project,
        connection=row_of(connection, looks, now),
        api_view=connection_view(connection),
        events=[event_item(e, now) for e in timeline.items],
        newer_events_url=connection_url(project.id, connection.id, events_before=timeline.newer) + "#timeline" if timeline.newer else None,
        older_events_url=connection_url(project.id, connection.id, events_after=timeline.older) + "#timeline" if timeline.older else None,
        events_paged=query.events_after is not None or query.events_before is not None,
        outcome=OUTCOMES.get(query.outcome or ""),
        list_url=connections_url(project.id),
    )


async def _connection(runtime: Runtime, project: Project, connection_id: str) -> Connection:
    """The project's connection, or the 404 page (another project's answers the same)."""
    try:
        return await actions.project_connection(runtime, project.id, connection_id_or_404(connection_id))
    except actions.ConnectionNotFound:
        raise not_found() from None


async def _done(runtime: Runtime, operator: Operator, request: Request, action: str, connection: Connection, outcome: str, **detail: Any) -> None:
    await audit.record(runtime, operator, action, connection.id, request, {"outcome": outcome, "provider": connection.provider} | detail)


@router.post("/projects/{project_id}/connections/{connection_id}/refresh")
async def refresh(request: Request, project_id: str, connection_id: str, operator: CsrfDep, runtime: RuntimeDep) -> RedirectResponse:
    project = await project_for(runtime, operator, project_id)
    before = await _connection(runtime, project, connection_id)
    try:
        await actions.refresh_now(runtime, project.id, before.id)
        outcome = "refreshed"
    except actions.RefreshFailed:
        outcome = "refresh_failed"
    except CredentialError as exc:
        outcome = credential_outcome(exc, before, "refresh_revoked")
    except actions.ConnectionNotFound:
        raise not_found() from None
    await _done(runtime, operator, request, "connection.refresh", before, outcome)
    return RedirectResponse(connection_url(project.id, before.id, outcome=outcome), status_code=303)


@router.post("/projects/{project_id}/connections/{connection_id}/check")
async def check(request: Request, project_id: str, connection_id: str, operator: CsrfDep, runtime: RuntimeDep) -> RedirectResponse:
    project = await project_for(runtime, operator, project_id)
    before = await _connection(runtime, project, connection_id)
    started = utcnow()
    try:
        checked = await actions.check_now(runtime, project.id, before.id)
    except CredentialError as exc:
        outcome = credential_outcome(exc, before, "check_revoked")
    except actions.ConnectionNotFound:
        raise not_found() from None
    else:
        if checked.status == "revoked":
            outcome = "already_revoked" if before.status == "revoked" else "check_revoked"
        elif checked.last_error_at is not None and checked.last_error_at >= started:
            outcome = "check_failed"
        else:
            outcome = "checked"
    await _done(runtime, operator, request, "connection.check", before, outcome)
    return RedirectResponse(connection_url(project.id, before.id, outcome=outcome), status_code=303)


@router.get("/projects/{project_id}/connections/{connection_id}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, project_id: str, connection_id: str, operator: OperatorDep, runtime: RuntimeDep) -> HTMLResponse:
    """The confirmation step: what deleting does, and a box to tick (no script needed)."""
    project = await project_for(runtime, operator, project_id)
    connection = await _connection(runtime, project, connection_id)
    return await _confirm_page(request, runtime, operator, project, connection)


async def _confirm_page(
    request: Request, runtime: Runtime, operator: Operator, project: Project, connection: Connection, *, unconfirmed: bool = False
) -> HTMLResponse:
    looks = await provider_looks(runtime, project.id)
    return dashboard_page(
        request,
        "_conn_delete.html",
        operator,
        status=400 if unconfirmed else 200,
        project=project,
        connection=row_of(connection, looks, utcnow()),
        unconfirmed=unconfirmed,
    )


@router.post("/projects/{project_id}/connections/{connection_id}/delete", response_model=None)
async def delete(
    request: Request,
    project_id: str,
    connection_id: str,
    operator: CsrfDep,
    runtime: RuntimeDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> HTMLResponse | RedirectResponse:
    """Deletes only with the box ticked (`confirm=yes`); otherwise the confirmation page again,
    saying so. Revokes at the provider first, as DELETE /v1/connections/{id} does."""
    project = await project_for(runtime, operator, project_id)
    connection = await _connection(runtime, project, connection_id)
    if confirm != "yes":
        return await _confirm_page(request, runtime, operator, project, connection, unconfirmed=True)
    try:
        revocation = await actions.delete_now(runtime, project.id, connection.id)
    except actions.ConnectionNotFound:
        raise not_found() from None
    outcome = "deleted" if revocation["ok"] else "deleted_not_revoked"
    await _done(runtime, operator, request, "connection.delete", connection, outcome, revocation=revocation)
    return RedirectResponse(connections_url(project.id, outcome=outcome), status_code=303)
