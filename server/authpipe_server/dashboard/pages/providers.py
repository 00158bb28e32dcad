"""Provider apps: every catalog provider and the project's custom ones, a form for each, and a
form to declare a custom OAuth 2.0 provider.

Saving goes through `api.providers.configure_provider`, exactly as `PUT /v1/providers/{name}`
(the same body model, checks, egress policy and discovery). A client secret is write-only: the
form never carries it back, only whether one is set; an empty secret field keeps the stored one.
A refused form is shown again with the reason and what was typed, except the secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.api.errors import ApiError
from authpipe_server.api.params import PROVIDER_PATTERN
from authpipe_server.api.providers import ProviderBody, configure_provider
from authpipe_server.dashboard import audit
from authpipe_server.dashboard.auth import CsrfDep, Operator, OperatorDep, not_found, project_for, runtime_of
from authpipe_server.dashboard.render import dashboard_page
from authpipe_server.providers.apps import app_row, is_configured, project_providers, spec_for
from authpipe_server.providers.catalog import catalog
from authpipe_server.providers.spec import ProviderSpec
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Project, ProviderApp

router = APIRouter()

SAVED = "provider.saved"
NOTICES = {"saved": "Provider saved."}
NAME = re.compile(PROVIDER_PATTERN)
OAUTH_OVERRIDES = ("authorization_url", "token_url", "api_base_url")
APP_PASSWORD_OVERRIDES = ("api_base_url", "plc_url")
OVERRIDE_LABELS = {
    "authorization_url": "Authorization URL",
    "token_url": "Token URL",
    "api_base_url": "API base URL",
    "plc_url": "PLC directory URL",
}
CUSTOM_URLS = ("issuer", "authorization_url", "token_url", "userinfo_url", "revocation_url", "api_base_url")
TOKEN_AUTH = ("client_secret_basic", "client_secret_post", "none")
LOGOS = frozenset({"bluesky", "buffer", "facebook", "instagram", "spotify"})


def base_url(project: Project) -> str:
    return f"/dashboard/projects/{project.id}/providers"


def logo(name: str, custom: bool) -> str:
    return f"/static/providers/{name if name in LOGOS and not custom else 'generic'}.svg"


@dataclass(frozen=True)
class ScopeChoice:
    name: str
    description: str
    checked: bool


@dataclass
class ProviderForm:
    """What a provider's form shows: the saved app, or what was just typed (never the secret)."""

    spec: ProviderSpec
    configured: bool
    secret_set: bool
    client_id: str = ""
    scopes: list[ScopeChoice] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def override_fields(self) -> tuple[str, ...]:
        return APP_PASSWORD_OVERRIDES if self.spec.auth_mode == "app_password" else OAUTH_OVERRIDES


@dataclass
class CustomForm:
    """The custom provider form's values: a saved definition, or what was just typed."""

    name: str = ""
    display_name: str = ""
    client_id: str = ""
    secret_set: bool = False
    scopes: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    token_auth: str = ""
    require_iss: str = ""
    """"" (the default: on when there is an issuer), "on" or "off"."""
    pkce: bool = True
    scope_separator: str = " "
    account_id_field: str = ""


async def load_app(runtime: Runtime, project_id: str, name: str) -> ProviderApp | None:
    async with runtime.db.sessions() as session:
        return await app_row(session, project_id, name)


def catalog_form(spec: ProviderSpec, app: ProviderApp | None) -> ProviderForm:
    chosen = set(app.scopes) if app is not None and app.scopes else set(spec.default_scopes)
    return ProviderForm(
        spec=spec,
        configured=is_configured(spec, app),
        secret_set=bool(app and app.client_secret),
        client_id=(app.client_id or "") if app is not None else "",
        scopes=[ScopeChoice(s.name, s.description, s.name in chosen) for s in spec.scopes],
        overrides=dict(app.overrides) if app is not None and app.overrides else {},
    )


def custom_form(app: ProviderApp) -> CustomForm:
    """The form of a saved custom provider, read back from its catalog entry."""
    entry: dict[str, Any] = app.definition or {}
    account = entry.get("account") or {}
    revocation = entry.get("revocation") or {}
    urls = {key: entry[key] for key in ("issuer", "authorization_url", "token_url", "api_base_url") if entry.get(key)}
    if (account.get("request") or {}).get("url"):
        urls["userinfo_url"] = account["request"]["url"]
    if revocation.get("url"):
        urls["revocation_url"] = revocation["url"]
    return CustomForm(
        name=app.provider,
        display_name=entry.get("display_name", app.provider),
        client_id=app.client_id or "",
        secret_set=app.client_secret is not None,
        scopes=" ".join(s["name"] for s in entry.get("scopes", [])),
        urls=urls,
        token_auth=entry.get("token_auth", ""),
        require_iss="on" if entry.get("require_iss") else "off",
        pkce=bool(entry.get("pkce", True)),
        scope_separator=entry.get("scope_separator", " "),
        account_id_field=(account.get("id") or [""])[0] if urls.get("userinfo_url") else "",
    )


def text(form: FormData, name: str) -> str:
    """A form field, trimmed. Never cut short: a value too long is the API model's to refuse
    (a secret cut to fit would be saved wrong); the body limit bounds it meanwhile."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def validation_message(exc: ValidationError) -> str:
    """The first problem, as the API words it (`field: message`), never the value typed."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def page(request: Request, operator: Operator, project: Project, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of this area: with the providers' URL and the redirect URI to register."""
    settings = runtime_of(request).settings
    return dashboard_page(request, template, operator, status, project=project, providers_url=base_url(project), redirect_uri=settings.redirect_uri, **context)


def catalog_page(request: Request, operator: Operator, project: Project, form: ProviderForm, status: int = 200, **context: Any) -> HTMLResponse:
    """A catalog provider's form; its override fields show the catalog's own URLs as placeholders."""
    base = catalog()[form.spec.name]
    own = {key: getattr(base, key) for key in (*OAUTH_OVERRIDES, *APP_PASSWORD_OVERRIDES)}
    return page(
        request, operator, project, "provider.html", status, form=form, labels=OVERRIDE_LABELS, catalog_urls=own,
        logo=logo(form.spec.name, False), **context,
    )


def custom_page(request: Request, operator: Operator, project: Project, form: CustomForm, *, new: bool, status: int = 200, **context: Any) -> HTMLResponse:
    return page(
        request, operator, project, "custom_provider.html", status, form=form, new=new, token_auth_choices=TOKEN_AUTH,
        logo=logo(form.name, True), **context,
    )


# -- the list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderRow:
    spec: ProviderSpec
    configured: bool
    logo: str
    scopes: list[str]
    """What it asks for by default: the app's scopes, else the catalog's defaults."""


@router.get("/projects/{project_id}/providers", response_class=HTMLResponse)
async def providers(request: Request, project_id: str, operator: OperatorDep, runtime: RuntimeDep, notice: str | None = None) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    listed = [
        ProviderRow(
            item.spec, item.configured, logo(item.spec.name, item.spec.custom),
            list(item.app.scopes) if item.app is not None and item.app.scopes else list(item.spec.default_scopes),
        )
        for item in await project_providers(runtime, project.id)
    ]
    return page(request, operator, project, "providers.html", listed=listed, notice=NOTICES.get(notice or ""))


# -- a custom provider, new ----------------------------------------------------------------------


@router.get("/projects/{project_id}/custom-providers/new", response_class=HTMLResponse)
async def new_custom(request: Request, project_id: str, operator: OperatorDep, runtime: RuntimeDep) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    return custom_page(request, operator, project, CustomForm(), new=True, error=None)


@router.post("/projects/{project_id}/custom-providers", response_model=None)
async def create_custom(request: Request, project_id: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    project = await project_for(runtime, operator, project_id)
    form = await request.form()
    name = text(form, "name")
    typed = typed_custom(form, name, secret_set=False)
    error = None
    if not NAME.match(name):
        error = "name: use 2–64 lowercase letters, digits or '-'"
    elif name in catalog():
        error = f"{name} is a catalog provider: configure it on its own page"
    elif await load_app(runtime, project.id, name) is not None:
        error = f"a custom provider named {name} already exists: edit it on its own page"
    if error is None:
        error = await save_custom(request, runtime, operator, project, name, form)
    if error is not None:
        return custom_page(request, operator, project, typed, new=True, status=400, error=error)
    return RedirectResponse(f"{base_url(project)}/{name}?notice=saved", status_code=303)


def typed_custom(form: FormData, name: str, *, secret_set: bool) -> CustomForm:
    return CustomForm(
        name=name,
        display_name=text(form, "display_name"),
        client_id=text(form, "client_id"),
        secret_set=secret_set,
        scopes=text(form, "scopes"),
        urls={key: text(form, key) for key in CUSTOM_URLS if text(form, key)},
        token_auth=text(form, "token_auth"),
        require_iss=text(form, "require_iss"),
        pkce=form.get("pkce") == "on",
        scope_separator="," if form.get("scope_separator") == "," else " ",
        account_id_field=text(form, "account_id_field"),
    )


async def save_custom(request: Request, runtime: Runtime, operator: Operator, project: Project, name: str, form: FormData) -> str | None:
    """Save the custom provider the form declares; the reason it was refused, or None."""
    require_iss = {"on": True, "off": False}.get(text(form, "require_iss"))
    values: dict[str, Any] = {
        "auth_mode": "oauth2",
        "display_name": optional(form, "display_name"),
        "client_id": optional(form, "client_id"),
        "client_secret": optional(form, "client_secret"),
        "scopes": [s for s in re.split(r"[\s,]+", text(form, "scopes")) if s],
        "token_auth": optional(form, "token_auth"),
        "require_iss": require_iss,
        "pkce": form.get("pkce") == "on",
        "scope_separator": "," if form.get("scope_separator") == "," else " ",
        "account_id_field": optional(form, "account_id_field"),
    } | {key: optional(form, key) for key in CUSTOM_URLS}
    return await save(request, runtime, operator, project, name, values, custom=True)


async def save(
    request: Request, runtime: Runtime, operator: Operator, project: Project, name: str, values: dict[str, Any], *, custom: bool
) -> str | None:
    """Check and save through the API's own path; audit it. The reason it was refused, or None."""
    try:
        body = ProviderBody(**values)
        await configure_provider(runtime, project.id, name, body)
    except ValidationError as exc:
        return validation_message(exc)
    except ApiError as exc:
        return exc.message
    await audit.record(runtime, operator, SAVED, name, request, detail={"custom": custom})
    return None


# -- one provider: its form, saving it -----------------------------------------------------------


async def provider_of(runtime: Runtime, project: Project, name: str) -> tuple[ProviderSpec, ProviderApp | None]:
    """A catalog provider or one of the project's custom providers; else the 404 page."""
    if not NAME.match(name):
        raise not_found()
    app = await load_app(runtime, project.id, name)
    if name not in catalog() and (app is None or app.definition is None):
        raise not_found()
    return spec_for(name, app), app


@router.get("/projects/{project_id}/providers/{name}", response_class=HTMLResponse)
async def provider(request: Request, project_id: str, name: str, operator: OperatorDep, runtime: RuntimeDep, notice: str | None = None) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    spec, app = await provider_of(runtime, project, name)
    message = NOTICES.get(notice or "")
    if spec.custom and app is not None:
        return custom_page(request, operator, project, custom_form(app), new=False, error=None, notice=message)
    return catalog_page(request, operator, project, catalog_form(spec, app), error=None, notice=message)


@router.post("/projects/{project_id}/providers/{name}", response_model=None)
async def save_provider(request: Request, project_id: str, name: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    project = await project_for(runtime, operator, project_id)
    spec, app = await provider_of(runtime, project, name)
    form = await request.form()
    if spec.custom:
        error = await save_custom(request, runtime, operator, project, name, form)
        if error is not None:
            typed = typed_custom(form, name, secret_set=bool(app and app.client_secret))
            return custom_page(request, operator, project, typed, new=False, status=400, error=error)
    else:
        fields = APP_PASSWORD_OVERRIDES if spec.auth_mode == "app_password" else OAUTH_OVERRIDES
        overrides = {key: text(form, f"override_{key}") for key in fields if text(form, f"override_{key}")}
        scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
        values: dict[str, Any] = {"scopes": scopes, "overrides": overrides or None}
        if spec.auth_mode == "oauth2":
            values |= {"client_id": optional(form, "client_id"), "client_secret": optional(form, "client_secret")}
        error = await save(request, runtime, operator, project, name, values, custom=False)
        if error is not None:
            typed = ProviderForm(
                spec=spec,
                configured=is_configured(spec, app),
                secret_set=bool(app and app.client_secret),
                client_id=text(form, "client_id"),
                scopes=[ScopeChoice(s.name, s.description, s.name in scopes) for s in spec.scopes],
                overrides=overrides,
            )
            return catalog_page(request, operator, project, typed, 400, error=error)
    return RedirectResponse(f"{base_url(project)}/{name}?notice=saved", status_code=303)
