"""Connect sessions: the backend asks, the browser uses."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Body
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from authpipe_server.api import examples
from authpipe_server.api.deps import ProjectDep, RuntimeDep
from authpipe_server.api.errors import ApiError, responses
from authpipe_server.api.params import ProviderName, TenantId, UserId
from authpipe_server.connect.sessions import create_session
from authpipe_server.connections.views import iso
from authpipe_server.providers.apps import list_providers

router = APIRouter(prefix="/v1", tags=["connect sessions"])
Url = Annotated[str, StringConstraints(max_length=2048)]


class ConnectSessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant_id: TenantId = Field(description="Your customer organization (1–256 of `A-Za-z0-9._:@-`)")
    user_id: UserId = Field(description="Your user (1–256 of `A-Za-z0-9._:@-`)")
    allowed_providers: list[ProviderName] | None = Field(
        default=None, min_length=1, max_length=50, description="The providers the page offers, in this order; default: every configured one"
    )
    scopes: dict[ProviderName, list[Annotated[str, StringConstraints(min_length=1, max_length=256)]]] | None = Field(
        default=None, description="Scopes to ask per provider, instead of the app's defaults"
    )
    origin: Url | None = Field(
        default=None, description="Your web app's exact origin: the popup posts its result to it (and only to it)"
    )
    return_url: Url | None = Field(
        default=None, description="Where the browser goes after connecting when there is no popup opener (`?connection_id=…` or `?error=…` appended)"
    )
    account_change: Literal["allow", "refuse"] = Field(
        default="allow",
        description="When the user already has a connection to the provider and signs in with another provider account: "
        "`allow` replaces it (recorded as `connection.updated` and sent as the `connection.account_changed` webhook); "
        "`refuse` stores nothing and ends the flow with the error code `account_changed`.",
    )

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        """An exact origin (`https://app.example.com[:port]`): the popup's postMessage target."""
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("must be an origin like https://app.example.com (scheme, host and port only)")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("return_url")
    @classmethod
    def _return_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
            raise ValueError("must be an absolute http(s) URL")
        return value


class ConnectSessionView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(description="`ap_cs_…`: safe to hand to a browser (it can only start connections for this tenant and user)")
    connect_url: str = Field(description="The hosted connect page for this session: open it in a popup or redirect to it")
    expires_at: AwareDatetime = Field(description="30 minutes from now (ISO-8601 UTC)")


@router.post(
    "/connect-sessions",
    status_code=201,
    summary="Create a connect session",
    description="""Your backend asks for a session for one tenant and user; your frontend opens its `connect_url`
(or hands `token` to the `@authpipe/react` ConnectButton). The session lives 30 minutes and completes once. It
is safe in a browser: it can only start connections for that tenant and user, to the allowed providers.

Errors: 400 `invalid_request` (an id that breaks the rules, an `origin` that is not a bare origin, a
`return_url` that is not an absolute http(s) URL, an unknown field), 404 `provider_not_found` (a name in
`allowed_providers` or `scopes`), 409 `provider_not_configured` (that provider has no app yet:
PUT /v1/providers/{name}).""",
    response_model=None,
    responses={201: examples.success("The session", examples.CONNECT_SESSION, ConnectSessionView), **responses(400, 401, 404, 409)},
)
async def post_connect_session(
    body: Annotated[ConnectSessionBody, Body(openapi_examples=examples.CONNECT_SESSION_BODIES)], runtime: RuntimeDep, project_id: ProjectDep
) -> dict[str, Any]:
    providers = {spec.name: configured for spec, configured in await list_providers(runtime, project_id)}
    for name in set(body.allowed_providers or []) | set(body.scopes or {}):
        if name not in providers:
            raise ApiError(404, "provider_not_found", f"no provider named {name!r}")
        if not providers[name]:
            raise ApiError(409, "provider_not_configured", f"{name} has no app configured: PUT /v1/providers/{name} first")
    created = await create_session(
        runtime,
        project_id,
        tenant_id=body.tenant_id,
        user_id=body.user_id,
        allowed_providers=body.allowed_providers,
        scopes=body.scopes,
        origin=body.origin,
        return_url=body.return_url,
        account_change=body.account_change,
    )
    return {"token": created.token, "connect_url": created.connect_url, "expires_at": iso(created.expires_at)}
