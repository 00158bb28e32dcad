"""Connections: list and read (the public view only; never a secret)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select

from authpipe_server.api import examples
from authpipe_server.api.deps import ProjectDep, RuntimeDep, SessionDep
from authpipe_server.api.errors import ApiError, responses
from authpipe_server.api.params import ID_PATTERN, PROVIDER_PATTERN, ConnectionIdPath, Cursor, Limit, ProviderName, TenantId, UserId
from authpipe_server.connections.actions import ConnectionNotFound, RefreshFailed, check_now, delete_now, refresh_now
from authpipe_server.connections.secrets import TokenSet
from authpipe_server.connections.service import Owner, save_grant
from authpipe_server.connections.views import connection_view
from authpipe_server.credentials.read import CredentialError
from authpipe_server.providers.apps import ProjectProvider, ProviderNotConfigured, ProviderNotFound, load_provider
from authpipe_server.providers.base import Grant
from authpipe_server.providers.bluesky import BlueskyProvider
from authpipe_server.providers.errors import AccessTokenRejected, CredentialsRejected, ProviderFailure, ProviderUnavailable
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection

MAX_IMPORTED_LIFETIME = timedelta(days=3650)


def _visible_ascii(token: str) -> str:
    """Tokens travel in HTTP headers (`Authorization: Bearer …`): visible ASCII only."""
    if not all("\x21" <= ch <= "\x7e" for ch in token):
        raise ValueError("must be visible ASCII characters only (no spaces, control or non-ASCII characters)")
    return token


Token = Annotated[str, StringConstraints(min_length=1, max_length=8192), AfterValidator(_visible_ascii)]

router = APIRouter(prefix="/v1", tags=["connections"])

Status = Literal["active", "error", "revoked"]


Timestamp = Annotated[datetime | None, Field(description="ISO-8601 UTC (`2026-11-30T12:00:00Z`), or null")]


class AccountView(BaseModel):
    """The provider account behind a connection."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(description="The account's id at the provider (Bluesky: the DID)")
    name: str | None = Field(description="A name to show for it (a display name, a handle or an email)")


class ResourceView(BaseModel):
    """Something the connection acts on besides the user's own account (a Facebook Page)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="Pass it as `resource` to GET /v1/credentials (`page:123`)")
    name: str | None


class LastErrorView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str | None
    at: Timestamp


class ConnectionView(BaseModel):
    """A connection as every call returns it: never a secret. (Documents the shape the code
    builds in connections.views.connection_view; the routes return that dict as it is.)"""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="`conn_…`")
    provider: str
    tenant_id: str
    user_id: str
    status: Status = Field(description="`active`; `error`: refreshing failed past expiry (retried); `revoked`: the provider refused the grant")
    account: AccountView
    resources: list[ResourceView]
    scopes: list[str] = Field(description="The scopes the provider granted, else those requested")
    expires_at: Timestamp = Field(description="When the current access token expires; null when it does not")
    created_at: Timestamp
    last_refreshed_at: Timestamp
    last_checked_at: Timestamp
    last_error: LastErrorView | None = Field(description="The last refresh or health-check failure, cleared by a success")


class ConnectionList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connections: list[ConnectionView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def not_found(connection_id: str) -> ApiError:
    return ApiError(404, "connection_not_found", f"no connection {connection_id} in this project")


@router.get(
    "/connections",
    summary="List connections",
    description="""The project's connections, newest first, filtered by any of `tenant_id`, `user_id`, `provider`
and `status`. Pages of `limit` (default 50, at most 100): pass `next_cursor` back as `cursor` for the next page.

Errors: 400 `invalid_request` (a filter that breaks the id rules, a `limit` outside 1–100).""",
    response_model=None,
    responses={200: examples.success("The connections, newest first", examples.CONNECTION_LIST, ConnectionList), **responses(400, 401)},
)
async def list_connections(
    project_id: ProjectDep,
    session: SessionDep,
    tenant_id: Annotated[str | None, Query(pattern=ID_PATTERN, openapi_examples=examples.TENANT_EXAMPLES)] = None,
    user_id: Annotated[str | None, Query(pattern=ID_PATTERN, openapi_examples=examples.USER_EXAMPLES)] = None,
    provider: Annotated[str | None, Query(pattern=PROVIDER_PATTERN, openapi_examples=examples.PROVIDER_EXAMPLES)] = None,
    status: Status | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    query = select(Connection).where(Connection.project_id == project_id)
    for column, value in (
        (Connection.tenant_id, tenant_id),
        (Connection.user_id, user_id),
        (Connection.provider, provider),
        (Connection.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    if cursor:
        query = query.where(Connection.id < cursor)
    rows = (await session.scalars(query.order_by(Connection.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return {
        "connections": [connection_view(c) for c in page],
        "next_cursor": page[-1].id if len(rows) > limit else None,
    }


@router.get(
    "/connections/{connection_id}",
    summary="Get a connection",
    description="""One connection: its status, provider account, granted scopes, token expiry and last error.
Never a secret (GET /v1/credentials hands out the token).

Errors: 400 `invalid_request` (not a `conn_…` id), 404 `connection_not_found`.""",
    response_model=None,
    responses={200: examples.success("The connection", examples.CONNECTION, ConnectionView), **responses(400, 401, 404)},
)
async def get_connection(connection_id: ConnectionIdPath, project_id: ProjectDep, session: SessionDep) -> dict[str, Any]:
    connection = await session.get(Connection, connection_id)
    if connection is None or connection.project_id != project_id:
        raise not_found(connection_id)
    return connection_view(connection)


class NewConnectionBody(BaseModel):
    """App-password providers: identifier + app_password. OAuth providers: imported tokens."""

    model_config = ConfigDict(extra="forbid")
    provider: ProviderName
    tenant_id: TenantId
    user_id: UserId
    identifier: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    app_password: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    access_token: Token | None = None
    refresh_token: Token | None = None
    expires_at: AwareDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _expires_at(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            in_utc = value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
        now = datetime.now(timezone.utc)
        if in_utc <= now:
            raise ValueError("is in the past")
        if in_utc > now + MAX_IMPORTED_LIFETIME:
            raise ValueError("is more than 10 years ahead; leave it out for a token that does not expire")
        return in_utc

    def __repr__(self) -> str:
        return f"NewConnectionBody(provider={self.provider!r}, tenant_id={self.tenant_id!r}, user_id={self.user_id!r})"


async def project_provider(runtime: Runtime, project_id: str, name: str) -> ProjectProvider:
    try:
        return await load_provider(runtime, project_id, name)
    except ProviderNotFound as exc:
        raise ApiError(404, "provider_not_found", str(exc)) from None
    except ProviderNotConfigured as exc:
        raise ApiError(409, "provider_not_configured", str(exc)) from None


def provider_api_error(exc: ProviderFailure) -> ApiError:
    if isinstance(exc, (CredentialsRejected, AccessTokenRejected)):
        return ApiError(400, "provider_rejected_credentials", f"the provider refused these credentials: {exc.message}")
    if isinstance(exc, ProviderUnavailable):
        headers = {"Retry-After": str(int(exc.retry_after))} if exc.retry_after else None
        return ApiError(502, "provider_error", f"the provider is unavailable: {exc.message}", headers)
    return ApiError(502, "provider_error", f"the provider failed: {exc.message}")


@router.post(
    "/connections",
    status_code=201,
    summary="Create a connection from the server side",
    description="""Makes a connection without the connect page:

- **app-password providers** (Bluesky): `identifier` (handle or DID) and `app_password`; Authpipe signs in
  and stores the session;
- **OAuth providers**: tokens obtained elsewhere, `access_token` with `refresh_token` and `expires_at`
  (in the future, at most 10 years ahead) when there are any; Authpipe first calls the provider with the
  token to prove it works and to learn whose account it is.

Answers 201 with the new connection, or 200 when the tenant and user already had a connection to that
provider (it is updated in place).

Errors: 400 `invalid_request` (the wrong fields for the provider's kind, a bad `expires_at`),
400 `provider_rejected_credentials` (the provider refused the app password or token), 404 `provider_not_found`,
409 `provider_not_configured` (no app for that OAuth provider yet: PUT /v1/providers/{name}),
502 `provider_error` (the provider failed or could not be reached).""",
    response_model=None,
    responses={
        201: examples.success("The new connection", examples.BLUESKY_CONNECTION, ConnectionView),
        200: examples.success("An existing connection, updated", examples.BLUESKY_CONNECTION, ConnectionView),
        **responses(400, 401, 404, 409, 502),
    },
)
async def post_connection(
    body: Annotated[NewConnectionBody, Body(openapi_examples=examples.NEW_CONNECTION_BODIES)], runtime: RuntimeDep, project_id: ProjectDep
) -> JSONResponse:
    found = await project_provider(runtime, project_id, body.provider)
    client = found.provider
    try:
        if isinstance(client, BlueskyProvider):
            if not body.identifier or not body.app_password or body.access_token:
                raise ApiError(400, "invalid_request", f"{body.provider} connections need identifier and app_password")
            grant, described = await client.create_session(body.identifier, body.app_password)
        else:
            if not body.access_token or body.identifier or body.app_password:
                raise ApiError(400, "invalid_request", f"{body.provider} connections are imported with access_token (and refresh_token, expires_at)")
            grant = Grant(TokenSet(access_token=body.access_token, refresh_token=body.refresh_token), body.expires_at)
            described = await client.describe(grant.tokens)  # proves the token works, and whose it is
    except ProviderFailure as exc:
        raise provider_api_error(exc) from None
    owner = Owner(project_id, body.tenant_id, body.user_id, body.provider)
    connection, created = await save_grant(runtime, owner, grant, described, found.scopes_for(None))
    return JSONResponse(connection_view(connection), status_code=201 if created else 200)


@router.post(
    "/connections/{connection_id}/refresh",
    summary="Refresh a connection's token now",
    description="""Refreshes the access token at the provider now, whatever its expiry, and returns the connection
(with the new `expires_at` and `last_refreshed_at`). Callers of GET /v1/credentials never need this:
Authpipe refreshes before expiry by itself.

Errors: 400 `invalid_request`, 404 `connection_not_found`, 410 `connection_revoked` (the provider refused the
grant: the user must connect again; also `tenant_shredded`, `credential_unreadable`), 502 `provider_error`
(the provider failed; the connection keeps its token while it is valid, and Authpipe retries with backoff).""",
    response_model=None,
    responses={200: examples.success("The refreshed connection", examples.REFRESHED_CONNECTION, ConnectionView), **responses(400, 401, 404, 410, 502)},
)
async def refresh_connection(connection_id: ConnectionIdPath, runtime: RuntimeDep, project_id: ProjectDep) -> dict[str, Any]:
    try:
        refreshed = await refresh_now(runtime, project_id, connection_id)
    except ConnectionNotFound:
        raise not_found(connection_id) from None
    except CredentialError as exc:
        raise api_error(exc) from None
    except RefreshFailed as exc:
        raise ApiError(502, "provider_error", str(exc)) from None
    return connection_view(refreshed)


@router.post(
    "/connections/{connection_id}/check",
    summary="Run a connection's health check now",
    description="""Calls the provider with the connection's token now (the same check Authpipe runs every
`AUTHPIPE_HEALTH_INTERVAL` seconds) and returns the connection. A check the provider answers with 401 tries a
refresh; a provider refusing the grant makes the connection `revoked`; a 429, a 5xx or a timeout changes no
status (it is recorded in `last_error`). The outcome is in the answer's `status`, `last_checked_at` and
`last_error`, not in the HTTP status.

Errors: 400 `invalid_request`, 404 `connection_not_found`, 410 `tenant_shredded` / `credential_unreadable`
(the stored credential cannot be opened).""",
    response_model=None,
    responses={200: examples.success("The connection after the check", examples.CHECKED_CONNECTION, ConnectionView), **responses(400, 401, 404, 410)},
)
async def check_connection(connection_id: ConnectionIdPath, runtime: RuntimeDep, project_id: ProjectDep) -> dict[str, Any]:
    try:
        checked = await check_now(runtime, project_id, connection_id)
    except ConnectionNotFound:
        raise not_found(connection_id) from None
    except CredentialError as exc:
        raise api_error(exc) from None
    return connection_view(checked)


def api_error(error: CredentialError) -> ApiError:
    return ApiError(error.status, error.code, error.message)


@router.delete(
    "/connections/{connection_id}",
    status_code=204,
    summary="Delete a connection",
    description="""Revokes the grant at the provider where the provider supports it (within one outbound call's
deadline), then erases the connection and its secrets and records `connection.deleted`. The connection is
deleted even when revoking at the provider fails; the event's `data.revocation` says how revoking went.
Answers 204 with no body.

Errors: 400 `invalid_request` (not a `conn_…` id), 404 `connection_not_found`.""",
    responses={204: {"description": "Deleted (no body)"}, **responses(400, 401, 404)},
)
async def remove_connection(connection_id: ConnectionIdPath, runtime: RuntimeDep, project_id: ProjectDep) -> Response:
    try:
        await delete_now(runtime, project_id, connection_id)
    except ConnectionNotFound:
        raise not_found(connection_id) from None
    return Response(status_code=204)
