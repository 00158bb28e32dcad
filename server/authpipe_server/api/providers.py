"""Provider apps: list the catalog (and custom providers), configure an app, declare a custom
OAuth 2.0 provider. Secrets sent here are never returned."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from authpipe_server.api import examples
from authpipe_server.api.deps import ProjectDep, RuntimeDep
from authpipe_server.api.errors import ApiError, responses
from authpipe_server.api.params import PROVIDER_PATTERN
from authpipe_server.egress import Egress, EgressRefused
from authpipe_server.providers.apps import app_row, is_configured, list_providers, save_app, spec_for
from authpipe_server.providers.catalog import InvalidDefinition, catalog, custom_entry, validate_entry
from authpipe_server.providers.discovery import DiscoveryFailed, fetch_metadata, fill_declaration
from authpipe_server.providers.spec import ProviderSpec
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ProviderApp

router = APIRouter(prefix="/v1", tags=["providers"])

HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
ScopeName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\s,]+$")]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid")
    authorization_url: HttpUrl | None = None
    token_url: HttpUrl | None = None
    api_base_url: HttpUrl | None = None
    plc_url: HttpUrl | None = None


class ProviderBody(BaseModel):
    """A catalog provider's app, or (with auth_mode oauth2 and a new name) a custom provider."""

    model_config = ConfigDict(extra="forbid")
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    client_secret: Secret | None = None
    scopes: list[ScopeName] | None = Field(default=None, max_length=100)
    overrides: Overrides | None = None
    auth_mode: Literal["oauth2"] | None = None
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    authorization_url: HttpUrl | None = None
    token_url: HttpUrl | None = None
    scope_separator: Literal[" ", ","] = " "
    token_auth: Literal["client_secret_basic", "client_secret_post", "none"] | None = None
    """Default: client_secret_basic, or what the issuer's metadata supports."""
    pkce: bool = True
    userinfo_url: HttpUrl | None = None
    issuer: HttpUrl | None = None
    """RFC 9207: the issuer the callback's `iss` must equal (required if the server sends `iss`).
    Alone, without authorization_url and token_url, it is where the endpoints are discovered."""
    require_iss: bool | None = None
    """Refuse a callback without `iss`. Default: on when `issuer` is set (from the metadata when
    discovered)."""
    revocation_url: HttpUrl | None = None
    api_base_url: HttpUrl | None = None
    account_id_field: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.]{1,128}$")] | None = None


SERVER_CALLED = ("token_url", "userinfo_url", "revocation_url", "api_base_url", "plc_url", "issuer")
"""The URLs of a declaration or of overrides that Authpipe itself calls (the issuer: for its
metadata); `authorization_url` is only where browsers are sent."""
CUSTOM_ONLY = ("auth_mode", "authorization_url", "token_url", "userinfo_url", "revocation_url", "api_base_url", "display_name", "issuer", "require_iss", "token_auth")


class ScopeView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = Field(description="The scope in words, as the connect page shows it")


class ProviderView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    display_name: str
    auth_mode: Literal["oauth2", "app_password"]
    scopes: list[ScopeView]
    configured: bool = Field(description="Whether users can connect: an OAuth provider needs an app (PUT /v1/providers/{name})")


class ProviderList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    providers: list[ProviderView]


def provider_view(spec: ProviderSpec, configured: bool) -> dict[str, Any]:
    return {
        "name": spec.name,
        "display_name": spec.display_name,
        "auth_mode": spec.auth_mode,
        "scopes": [{"name": s.name, "description": s.description} for s in spec.scopes],
        "configured": configured,
    }


@router.get(
    "/providers",
    summary="List providers",
    description="""The catalog (Bluesky, Buffer, Facebook, Instagram, Spotify) and this project's custom providers,
each with the scopes it offers (in words) and whether it is `configured`. Never a client secret.

Errors: only those of the secret key (401, 429) and 503.""",
    response_model=None,
    responses={200: examples.success("The providers (the example is shortened)", examples.PROVIDER_LIST, ProviderList), **responses(401)},
)
async def get_providers(runtime: RuntimeDep, project_id: ProjectDep) -> dict[str, Any]:
    return {"providers": [provider_view(spec, configured) for spec, configured in await list_providers(runtime, project_id)]}


@router.put(
    "/providers/{name}",
    summary="Configure a provider app, or declare a custom provider",
    description="""**A catalog provider** (`spotify`, `facebook`, `instagram`, `buffer`; `bluesky` needs no app):
your app's `client_id` and `client_secret`, the default `scopes` to ask for, and optional `overrides` pointing it at
another host (`authorization_url`, `token_url`, `api_base_url`; Bluesky: `plc_url`). Your OAuth app's redirect URI
is `{AUTHPIPE_PUBLIC_URL}/oauth/callback`.

**A custom OAuth 2.0 provider**: a name not in the catalog with `"auth_mode": "oauth2"` and its endpoints. Leave
`authorization_url` and `token_url` out and give `issuer` to have them discovered from the issuer's metadata
(RFC 8414, else OpenID Connect Discovery). `userinfo_url` is its health check and names the account
(`account_id_field`, default `sub`); `issuer` (RFC 9207) is required for servers that send `iss`.

Calling it again replaces the app; a `client_secret` left out keeps the stored one. Secrets sent here are never returned by any call. Every URL Authpipe will
call is checked against the egress policy now.

Errors: 400 `invalid_request` (a custom-only field on a catalog provider, an unknown scope, a missing
`client_id`, a URL the egress policy refuses, a failed discovery), 404 `provider_not_found` (a name not in the
catalog without `"auth_mode": "oauth2"`).""",
    response_model=None,
    responses={200: examples.success("The provider as GET /v1/providers lists it", examples.SPOTIFY_PROVIDER, ProviderView), **responses(400, 401, 404)},
)
async def put_provider(
    name: Annotated[str, Path(pattern=PROVIDER_PATTERN, description="A catalog provider, or your custom provider's name (`[a-z0-9-]{2,64}`)", openapi_examples=examples.PROVIDER_NAME_EXAMPLES)],
    body: Annotated[ProviderBody, Body(openapi_examples=examples.PROVIDER_BODIES)],
    runtime: RuntimeDep,
    project_id: ProjectDep,
) -> dict[str, Any]:
    app = await configure_provider(runtime, project_id, name, body)
    saved = spec_for(name, app)
    return provider_view(saved, is_configured(saved, app))


async def configure_provider(runtime: Runtime, project_id: str, name: str, body: ProviderBody) -> ProviderApp:
    """Check `body` for provider `name` and save it as the project's app: the one path for
    `PUT /v1/providers/{name}` and the dashboard's provider forms. ApiError (400, 404) says what is
    wrong, never echoing a secret."""
    spec = catalog().get(name)
    definition: dict[str, Any] | None = None
    overrides = body.overrides.model_dump(exclude_none=True) if body.overrides else {}
    if spec is None:
        if body.auth_mode != "oauth2":
            raise ApiError(404, "provider_not_found", f"{name!r} is not in the catalog; declare a custom provider with \"auth_mode\": \"oauth2\"")
        async with runtime.db.sessions() as session:
            stored = await app_row(session, project_id, name)
        definition = await custom_definition(runtime.egress, name, body, has_secret=stored is not None and stored.client_secret is not None)
    else:
        custom_fields = [f for f in CUSTOM_ONLY if getattr(body, f) is not None]
        if custom_fields:
            raise ApiError(400, "invalid_request", f"{name} is a catalog provider: use overrides, not {', '.join(custom_fields)}")
        if spec.auth_mode == "oauth2" and body.client_id is None:
            raise ApiError(400, "invalid_request", "client_id is required")
        unknown = sorted(set(body.scopes or []) - spec.scope_names())
        if unknown:
            raise ApiError(400, "invalid_request", f"{name} has no scope {', '.join(unknown)} (see GET /v1/providers)")
    await check_urls(runtime.egress, overrides, prefix="overrides.")
    return await save_app(
        runtime,
        project_id,
        name,
        client_id=body.client_id,
        client_secret=body.client_secret,
        scopes=list(body.scopes or []),
        overrides=overrides,
        definition=definition,
    )


async def custom_definition(egress: Egress, name: str, body: ProviderBody, *, has_secret: bool = False) -> dict[str, Any]:
    """The catalog entry of a custom provider: the declaration, completed from the issuer's
    metadata when its endpoints were left out, every URL checked against the egress policy.
    `has_secret`: the app already holds a client secret, which a body without one keeps."""
    if body.client_id is None:
        raise ApiError(400, "invalid_request", "a custom provider needs a client_id")
    declared = body.model_dump(exclude_none=True, exclude={"overrides"})
    missing = [f for f in ("authorization_url", "token_url") if f not in declared]
    if missing and body.issuer is None:
        raise ApiError(400, "invalid_request", f"a custom provider needs {' and '.join(missing)}, or an issuer to discover them from")
    await check_urls(egress, declared)
    if missing:
        try:
            completed = fill_declaration(declared, await fetch_metadata(egress, declared["issuer"]))
        except DiscoveryFailed as exc:
            raise ApiError(400, "invalid_request", f"discovery from the issuer failed: {exc}") from None
        await check_urls(egress, {k: v for k, v in completed.items() if k not in declared}, prefix="discovered ")
        declared = completed
    token_auth = declared.setdefault("token_auth", "client_secret_basic")
    if token_auth != "none" and body.client_secret is None and not has_secret:
        raise ApiError(400, "invalid_request", f"token_auth {token_auth} needs a client_secret")
    definition = custom_entry({**declared, "name": name})
    try:
        validate_entry(definition)
    except InvalidDefinition as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return definition


async def check_urls(egress: Egress, values: dict[str, Any], *, prefix: str = "") -> None:
    """A 400 naming the field for any URL the egress policy refuses: a URL Authpipe calls is
    resolved and its addresses checked now (the call is checked again when it connects); the
    authorization URL, where only browsers go, is held to the shape rules alone (https, no
    user:password@)."""
    for field in SERVER_CALLED:
        if values.get(field):
            try:
                await egress.check_resolved(values[field])
            except EgressRefused as exc:
                raise ApiError(400, "invalid_request", f"{prefix}{field} is refused: {exc}") from None
    if values.get("authorization_url"):
        try:
            egress.policy.check_url(values["authorization_url"])
        except EgressRefused as exc:
            raise ApiError(400, "invalid_request", f"{prefix}authorization_url is refused: {exc}") from None
