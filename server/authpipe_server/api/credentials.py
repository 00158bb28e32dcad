"""`GET /v1/credentials`: the token a caller puts in `Authorization: Bearer …` at the provider."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from authpipe_server.api import examples
from authpipe_server.api.errors import ApiError, responses
from authpipe_server.api.params import ProviderName, TenantId, UserId
from authpipe_server.connections.views import iso
from authpipe_server.credentials.read import CredentialError, read_credential
from authpipe_server.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["credentials"])


class CredentialQuery(BaseModel):
    """The query string, validated as one model (one validation call instead of eight: this is
    the hottest route)."""

    model_config = ConfigDict(extra="ignore")
    provider: Annotated[ProviderName, Field(examples=[examples.PROVIDER])]
    tenant_id: Annotated[TenantId, Field(examples=[examples.TENANT_ID])]
    user_id: Annotated[UserId, Field(examples=[examples.USER_ID])]
    min_ttl: Annotated[int, Field(ge=0, le=86_400, description="Refresh first when fewer seconds than this remain (0–86400)")] = 60
    force_refresh: Annotated[bool, Field(description="Refresh at the provider now, whatever the expiry")] = False
    resource: Annotated[
        Annotated[str, StringConstraints(pattern=r"^[a-z]{1,16}:[A-Za-z0-9_.-]{1,128}$")] | None,
        Field(description="One of the connection's `resources` (`page:123`): answer its own token instead of the user's"),
    ] = None


class CredentialView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    credential: str = Field(description="What to send as `Authorization: Bearer …` to the provider")
    token_type: str = Field(description="`bearer`")
    expires_at: str | None = Field(description="ISO-8601 UTC; null when the token does not expire")
    connection_id: str
    provider: str
    scopes: list[str]


NO_STORE = {"Cache-Control": "no-store"}  # the answer is a live credential


@router.get(
    "/credentials",
    summary="Get a working credential",
    description="""The token to put in `Authorization: Bearer …` at the provider, for one tenant and user's
connection to `provider`. When fewer than `min_ttl` seconds (default 60) remain, Authpipe refreshes it first:
however many callers ask at once, across however many server processes, one refresh reaches the provider.
`force_refresh=true` refreshes now. The answer is marked `Cache-Control: no-store`.

Errors: 400 `invalid_request` (an id that breaks the rules, `min_ttl` outside 0–86400),
404 `connection_not_found` (no such connection; connect the user first) or `resource_not_found`,
410 `connection_revoked` (the provider refused the grant: the user must connect again; also `tenant_shredded`,
`credential_unreadable`), 429 `rate_limited` (the token expired and the provider is rate limiting its refresh;
see `Retry-After`), 502 `provider_error` (the token expired and the provider failed to refresh it).""",
    response_model=CredentialView,
    responses={200: examples.success("A credential valid for at least `min_ttl` more seconds", examples.CREDENTIAL), **responses(400, 401, 404, 410, 429, 502)},
)
async def get_credential(request: Request, query: Annotated[CredentialQuery, Query()]) -> JSONResponse:
    # The hottest route: runtime and project are read off the request rather than resolved as
    # dependencies (each dependency costs more than the credential's decrypt).
    runtime: Runtime = request.app.state.runtime
    project_id: str = request.scope["state"]["project_id"]
    started = time.perf_counter()
    try:
        found = await read_credential(
            runtime,
            project_id,
            provider=query.provider,
            tenant_id=query.tenant_id,
            user_id=query.user_id,
            min_ttl=query.min_ttl,
            force_refresh=query.force_refresh,
            resource=query.resource,
        )
    except CredentialError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after and exc.retry_after > 0 else None
        raise ApiError(exc.status, exc.code, exc.message, headers) from None
    finally:
        runtime.metrics.credential_reads.observe(time.perf_counter() - started)
    connection = found.connection
    # Returned as a response, not a dict: FastAPI then skips re-encoding and validating it (the
    # model above documents the shape), and the no-store header costs nothing more.
    return JSONResponse(
        {
            "credential": found.credential,
            "token_type": "bearer",
            "expires_at": iso(found.expires_at),
            "connection_id": connection.id,
            "provider": connection.provider,
            "scopes": list(connection.scopes or []),
        },
        headers=NO_STORE,
    )
