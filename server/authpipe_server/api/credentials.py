"""`GET /v1/credentials`: the token a caller puts in `Authorization: Bearer …` at the provider."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
    provider: ProviderName
    tenant_id: TenantId
    user_id: UserId
    min_ttl: Annotated[int, Field(ge=0, le=86_400)] = 60
    force_refresh: bool = False
    resource: Annotated[str, StringConstraints(pattern=r"^[a-z]{1,16}:[A-Za-z0-9_.-]{1,128}$")] | None = None


class CredentialView(BaseModel):
    credential: str
    token_type: str
    expires_at: str | None
    connection_id: str
    provider: str
    scopes: list[str]


NO_STORE = {"Cache-Control": "no-store"}  # the answer is a live credential


@router.get(
    "/credentials",
    summary="A working credential for one user's connection, refreshed first when it is about to expire",
    response_model=CredentialView,
    responses=responses(400, 401, 404, 410, 429, 502),
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
