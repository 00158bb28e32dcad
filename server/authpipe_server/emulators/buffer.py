"""Buffer emulator: the current OAuth 2.0 server (auth.buffer.com under /auth) and the GraphQL
API (api.buffer.com under /api). Not the legacy v1 REST API.

The authorization server behaves like the node-oidc-provider deployment it is: PKCE S256 is
required of every client, token endpoint authentication is `client_secret_post` or `none`,
the callback carries `iss` (RFC 9207), access tokens live an hour, refresh tokens come only with
`offline_access`, are single-use and rotate, and presenting a used one revokes the whole grant.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pydantic
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import consent, graphql_lite
from .control import add_app_controls, control_router
from .core import CallKind, ControlError, EmulatorCore
from .oauth import (
    AccessToken,
    AuthorizationRequest,
    ClientApp,
    Grant,
    OAuthState,
    authorization_header,
    pkce_verifies,
    redirect_to,
)

PROVIDER = "Buffer"

SCOPES = frozenset(
    {
        "posts:read",
        "posts:write",
        "ideas:read",
        "ideas:write",
        "account:read",
        "account:write",
        "offline_access",
        "insights:read",
        "engagements:read",
        "engagements:write",
        "openid",
    }
)

SCHEMA: graphql_lite.Schema = {
    "Query": {"account": "Account!"},
    "Mutation": {},
    "Account": {
        "id": "ID!",
        "email": "String!",
        "backupEmail": "String",
        "avatar": "String!",
        "createdAt": "DateTime",
        "organizations": "[Organization!]!",
        "timezone": "String",
        "name": "String",
    },
    "Organization": {"id": "OrganizationId!", "name": "String!", "ownerEmail": "String!"},
}

_UNAUTHENTICATED = {
    "errors": [
        {
            "message": "An authentication JWT or Access Token is required",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
}
_INVALID_GRANT = "grant request is invalid"


@dataclasses.dataclass
class BufferSettings:
    access_ttl: int = 3600
    refresh_ttl: int = 14 * 86400  # node-oidc-provider's default; Buffer's own value is not documented
    code_ttl: int = 60
    # Scope the `account` query needs; "" for none. "account:read" is likely but UNCONFIRMED.
    account_scope: str = "account:read"
    # OpenID Connect: offline_access only counts with prompt=consent. Whether Buffer does so is UNCONFIRMED.
    offline_access_needs_consent_prompt: bool = False
    # node-oidc-provider's userinfo wants the openid scope; whether Buffer's does is UNCONFIRMED.
    userinfo_needs_openid: bool = False


class BufferOrganization(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    id: str
    name: str
    owner_email: str | None = None


class BufferUser(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    id: str = pydantic.Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    email: str
    name: str | None = None
    timezone: str = "Europe/London"
    organizations: list[BufferOrganization] = []


DEFAULT_USERS = (
    BufferUser(
        id="64b7f0c2a1b2c3d4e5f60001",
        email="sandbox@example.com",
        name="Sandbox User",
        organizations=[BufferOrganization(id="64b7f0c2a1b2c3d4e5f6a001", name="Sandbox Organization")],
    ),
    BufferUser(
        id="64b7f0c2a1b2c3d4e5f60002",
        email="second@example.com",
        name=None,
        timezone="America/New_York",
        organizations=[BufferOrganization(id="64b7f0c2a1b2c3d4e5f6a002", name="Second Organization")],
    ),
)


def _oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _retry_headers(retry_after: int | None) -> dict[str, str]:
    return {} if retry_after is None else {"Retry-After": str(retry_after)}


def _oauth_failure(status: int, retry_after: int | None) -> Response:
    if status == 429:
        description = "Too many requests from this client. Please try again later."
        return _oauth_error("temporarily_unavailable", description, 429, _retry_headers(retry_after))
    return _oauth_error("server_error", "oops! something went wrong", status)


def _page_failure(status: int, retry_after: int | None) -> Response:
    return consent.error_page(
        PROVIDER, "oops! something went wrong", f"Error {status}.", status=status, headers=_retry_headers(retry_after)
    )


def _api_failure(status: int, retry_after: int | None) -> Response:
    if status == 429:
        headers = _retry_headers(retry_after) | {
            "RateLimit": f'"15m";r=0;t={retry_after or 0}',
            "RateLimit-Policy": '"15m";q=100;w=900',
        }
        body = {
            "errors": [
                {
                    "message": "Too many requests from this client. Please try again later.",
                    "extensions": {"code": "RATE_LIMIT_EXCEEDED", "window": "15m"},
                }
            ]
        }
        return JSONResponse(body, status_code=429, headers=headers)
    body = {"errors": [{"message": "Unexpected error", "extensions": {"code": "UNEXPECTED"}}]}
    return JSONResponse(body, status_code=status)


class BufferEmulator:
    revoke_reasons: tuple[str, ...] = ("revoked",)

    def __init__(self, *, base_url: str | None, sandbox_app: bool) -> None:
        self.core = EmulatorCore(BufferSettings, base_url=base_url)
        self.oauth = OAuthState(
            access_prefix="", refresh_prefix="", sandbox_app=sandbox_app, localhost_is_loopback=True
        )
        self.users: dict[str, BufferUser] = {}
        self.reset()

    @property
    def settings(self) -> BufferSettings:
        return self.core.settings

    # -- control hooks ---------------------------------------------------------------------

    def reset(self) -> None:
        self.core.reset()
        self.oauth.reset()
        self.users = {user.id: user.model_copy(deep=True) for user in DEFAULT_USERS}

    def users_json(self) -> list[dict[str, Any]]:
        return [user.model_dump() for user in self.users.values()]

    def create_user(self, payload: Any) -> dict[str, Any]:
        user = BufferUser.model_validate(payload)
        if user.id in self.users:
            raise ControlError(f"user {user.id!r} exists")
        self.users[user.id] = user
        return user.model_dump()

    def has_user(self, user_id: str) -> bool:
        return user_id in self.users

    def redirect_uri_registrable(self, uri: str) -> bool:
        return uri.startswith(("https://", "http://"))

    def issuer(self, request: Request) -> str:
        return self.core.base_url(request) + "/auth"

    # -- discovery --------------------------------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        """RFC 8414 authorization server metadata."""
        issuer = self.issuer(request)
        auth_methods = ["client_secret_post", "none"]
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/auth",
                "token_endpoint": f"{issuer}/token",
                "revocation_endpoint": f"{issuer}/token/revocation",
                "userinfo_endpoint": f"{issuer}/me",
                "scopes_supported": sorted(SCOPES),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": auth_methods,
                "revocation_endpoint_auth_methods_supported": auth_methods,
                "authorization_response_iss_parameter_supported": True,
                "claims_parameter_supported": False,
                "request_parameter_supported": False,
            }
        )

    # -- authorization ----------------------------------------------------------------------

    def _authorization_request(self, request: Request) -> AuthorizationRequest | Response:
        params = request.query_params
        app = self.oauth.apps.get(params.get("client_id", ""))
        if app is None:
            return consent.error_page(PROVIDER, "oops! something went wrong", "invalid_client: client is invalid")
        redirect_uri = params.get("redirect_uri", "")
        if not self.oauth.allows_redirect(app, redirect_uri):
            return consent.error_page(
                PROVIDER,
                "oops! something went wrong",
                "invalid_redirect_uri: redirect_uri did not match any of the client's registered redirect_uris",
            )
        issuer = self.issuer(request)
        state = params.get("state")

        def refuse(error: str, description: str) -> Response:
            return redirect_to(
                redirect_uri, {"error": error, "error_description": description, "state": state, "iss": issuer}
            )

        if params.get("response_type") != "code":
            return refuse("unsupported_response_type", "unsupported response_type requested")
        challenge = params.get("code_challenge")
        if not challenge:
            return refuse("invalid_request", "Authorization Server policy requires PKCE to be used for this request")
        if params.get("code_challenge_method") != "S256":
            return refuse("invalid_request", "not supported value of code_challenge_method")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        if any(scope not in SCOPES for scope in scopes):
            return refuse("invalid_scope", "requested scope is not allowed")
        consent_prompted = "consent" in params.get("prompt", "").split()
        if self.settings.offline_access_needs_consent_prompt and not consent_prompted:
            scopes = tuple(scope for scope in scopes if scope != "offline_access")
        return AuthorizationRequest(app, redirect_uri, scopes, state, challenge)

    def _consent(self, auth: AuthorizationRequest, user_id: str, error: str | None = None) -> Response:
        return consent.consent_page(
            provider=PROVIDER,
            app_name=auth.app.name,
            scopes=auth.scopes,
            users=[consent.KnownUser(u.id, f"{u.name or u.email} ({u.email})") for u in self.users.values()],
            user_id=user_id,
            selectable=False,
            error=error,
        )

    async def authorize_page(self, request: Request) -> Response:
        if blocked := await self.core.gate("authorize", _page_failure):
            return blocked
        auth = self._authorization_request(request)
        if isinstance(auth, Response):
            return auth
        return self._consent(auth, next(iter(self.users), ""))

    async def authorize_decision(self, request: Request) -> Response:
        auth = self._authorization_request(request)
        if isinstance(auth, Response):
            return auth
        decision = await consent.read_decision(request, auth.scopes, selectable=False)
        if isinstance(decision, str):
            return self._consent(auth, "", decision)
        issuer = self.issuer(request)
        if not decision.approved:
            params = {"error": "access_denied", "error_description": "End-User aborted interaction"}
            return redirect_to(auth.redirect_uri, params | {"state": auth.state, "iss": issuer})
        if decision.user_id not in self.users:
            self.users[decision.user_id] = BufferUser(id=decision.user_id, email=f"{decision.user_id}@example.com")
        code = self.oauth.issue_code(
            auth, user_id=decision.user_id, scopes=decision.granted, expires_at=self.core.now() + self.settings.code_ttl
        )
        return redirect_to(auth.redirect_uri, {"code": code.value, "state": auth.state, "iss": issuer})

    # -- token and revocation endpoints -----------------------------------------------------

    def _client(self, request: Request, form: dict[str, str]) -> ClientApp | Response:
        """client_secret_post, or none for a public client; HTTP Basic is not accepted."""
        header = authorization_header(request)
        if header is not None and header[0] == "basic":
            return _oauth_error("invalid_client", "client authentication failed", 401)
        client_id = form.get("client_id")
        if not client_id:
            return _oauth_error("invalid_request", "no client authentication mechanism provided")
        app = self.oauth.apps.get(client_id)
        if app is None:
            return _oauth_error("invalid_client", "client authentication failed", 401)
        secret = form.get("client_secret")
        if app.client_secret is None:
            authenticated = secret is None
        else:
            # The sandbox app also takes public (none) authentication.
            authenticated = app.secret_matches(secret) or (secret is None and app.any_loopback_redirect)
        return app if authenticated else _oauth_error("invalid_client", "client authentication failed", 401)

    async def token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        kind: CallKind = "refresh" if form.get("grant_type") == "refresh_token" else "token"
        if blocked := await self.core.gate(kind, _oauth_failure):
            return blocked
        response = self._token(request, form)
        await self.core.hold.wait(kind)
        return response

    def _token(self, request: Request, form: dict[str, str]) -> Response:
        app = self._client(request, form)
        if isinstance(app, Response):
            return app
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form, app)
        if grant_type == "refresh_token":
            return self._refresh(form, app)
        if grant_type is None:
            return _oauth_error("invalid_request", "missing required parameter 'grant_type'")
        return _oauth_error("unsupported_grant_type", "unsupported grant_type requested")

    def _token_response(self, grant: Grant) -> JSONResponse:
        now = self.core.now()
        access = self.oauth.issue_access(grant, now=now, expires_at=now + self.settings.access_ttl)
        body: dict[str, Any] = {
            "access_token": access.value,
            "expires_in": self.settings.access_ttl,
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
        }
        if "offline_access" in grant.scopes:
            refresh = self.oauth.issue_refresh(grant, now=now, expires_at=now + self.settings.refresh_ttl)
            body["refresh_token"] = refresh.value
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _exchange_code(self, form: dict[str, str], app: ClientApp) -> Response:
        code = self.oauth.codes.get(form.get("code", ""))
        if code is None or code.client_id != app.client_id:
            return _oauth_error("invalid_grant", _INVALID_GRANT)
        if code.grant_id is not None:
            # RFC 6749 §4.1.2: a code used twice revokes the tokens issued with it.
            self.oauth.revoke_grant(self.oauth.grants[code.grant_id], "code_reused")
            return _oauth_error("invalid_grant", _INVALID_GRANT)
        now = self.core.now()
        if now >= code.expires_at:
            return _oauth_error("invalid_grant", "Authorization code has expired")
        if form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error("invalid_grant", _INVALID_GRANT)
        if code.code_challenge is None or not pkce_verifies(form.get("code_verifier"), code.code_challenge):
            return _oauth_error("invalid_grant", _INVALID_GRANT)
        grant = self.oauth.redeem(code, now=now, public=form.get("client_secret") is None)
        return self._token_response(grant)

    def _refresh(self, form: dict[str, str], app: ClientApp) -> Response:
        token = self.oauth.refresh.get(form.get("refresh_token", ""))
        grant = self.oauth.grants[token.grant_id] if token else None
        if token is None or grant is None or grant.client_id != app.client_id or grant.revoked:
            return _oauth_error("invalid_grant", _INVALID_GRANT)
        if token.used:
            # Refresh token reuse: the grant is compromised, revoke all of it.
            self.oauth.revoke_grant(grant, "refresh_token_reused")
            return _oauth_error("invalid_grant", _INVALID_GRANT)
        if token.expires_at is not None and self.core.now() >= token.expires_at:
            return _oauth_error("invalid_grant", _INVALID_GRANT)
        token.used = True
        return self._token_response(grant)

    async def revocation(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        if blocked := await self.core.gate("revoke", _oauth_failure):
            return blocked
        response = self._revoke(request, form)
        await self.core.hold.wait("revoke")
        return response

    def _revoke(self, request: Request, form: dict[str, str]) -> Response:
        """RFC 7009: 200 whether or not the token was known; a refresh token takes its grant along."""
        app = self._client(request, form)
        if isinstance(app, Response):
            return app
        value = form.get("token")
        if not value:
            return _oauth_error("invalid_request", "missing required parameter 'token'")
        access = self.oauth.access.get(value)
        refresh = self.oauth.refresh.get(value)
        if access is not None and self.oauth.grants[access.grant_id].client_id == app.client_id:
            del self.oauth.access[value]
        elif refresh is not None and self.oauth.grants[refresh.grant_id].client_id == app.client_id:
            self.oauth.revoke_grant(self.oauth.grants[refresh.grant_id], "revoked")
        return Response(status_code=200)

    # -- userinfo and GraphQL ---------------------------------------------------------------

    def _valid_access(self, request: Request) -> AccessToken | None:
        header = authorization_header(request)
        if header is None or header[0] != "bearer":
            return None
        token = self.oauth.access.get(header[1])
        if token is None or self.oauth.grants[token.grant_id].revoked:
            return None
        if token.expires_at is not None and self.core.now() >= token.expires_at:
            return None
        return token

    async def userinfo(self, request: Request) -> Response:
        if blocked := await self.core.gate("api", _oauth_failure):
            return blocked
        token = self._valid_access(request)
        issuer = self.issuer(request)
        if token is None:
            challenge = f'Bearer realm="{issuer}", error="invalid_token", error_description="invalid token provided"'
            return _oauth_error("invalid_token", "invalid token provided", 401, {"WWW-Authenticate": challenge})
        if self.settings.userinfo_needs_openid and "openid" not in self.oauth.grants[token.grant_id].scopes:
            challenge = f'Bearer realm="{issuer}", error="insufficient_scope", scope="openid"'
            return _oauth_error(
                "insufficient_scope", "access token missing 'openid' scope", 403, {"WWW-Authenticate": challenge}
            )
        return JSONResponse({"sub": token.subject})

    async def graphql(self, request: Request) -> Response:
        if blocked := await self.core.gate("api", _api_failure):
            return blocked
        token = self._valid_access(request)
        if token is None:
            return JSONResponse(_UNAUTHENTICATED, status_code=401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body:
            return _graphql_error("POST body missing, invalid Content-Type, or JSON object has no keys.", "BAD_REQUEST")
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return _graphql_error(
                "GraphQL operations must contain a non-empty `query` or a `persistedQuery` extension.", "BAD_REQUEST"
            )
        try:
            operation, fields = graphql_lite.parse(query)
            root = {"query": "Query", "mutation": "Mutation"}.get(operation)
            if root is None:
                raise graphql_lite.GraphQLError(
                    f"Schema is not configured to execute {operation} operation.", "GRAPHQL_VALIDATION_FAILED"
                )
            graphql_lite.validate(SCHEMA, root, fields)
        except graphql_lite.GraphQLError as exc:
            return _graphql_error(exc.message, exc.code)
        grant = self.oauth.grants[token.grant_id]
        required = self.settings.account_scope
        if required and required not in grant.scopes:
            error = {
                "message": f"Missing required scope: {required}",
                "path": [fields[0].alias],
                "extensions": {"code": "FORBIDDEN"},
            }
            return JSONResponse({"data": None, "errors": [error]})
        user = self.users[grant.user_id]
        data = graphql_lite.execute(SCHEMA, "Query", fields, {"account": self._account(user)})
        return JSONResponse({"data": data})

    @staticmethod
    def _account(user: BufferUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "email": user.email,
            "backupEmail": None,
            "avatar": f"https://www.gravatar.com/avatar/{user.id}",
            "createdAt": "2024-01-15T10:00:00.000Z",
            "organizations": [
                {"id": org.id, "name": org.name, "ownerEmail": org.owner_email or user.email}
                for org in user.organizations
            ],
            "timezone": user.timezone,
            "name": user.name,
        }


def _graphql_error(message: str, code: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=400)


def create_app(*, base_url: str | None = None, sandbox_app: bool = True) -> FastAPI:
    """The Buffer emulator as an ASGI app.

    base_url: where the emulator is reachable; the issuer is `{base_url}/auth`. Default: taken
    from each request, so pass it when browsers and servers reach the emulator by different
    names, or the `iss` of a callback will not match the discovered issuer.
    sandbox_app: register the permissive client `sandbox-client` / `sandbox-secret` (secret
    optional), which accepts any loopback redirect URI.
    """
    emulator = BufferEmulator(base_url=base_url, sandbox_app=sandbox_app)
    app = FastAPI(title="Buffer emulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.emulator = emulator
    app.add_api_route("/auth/.well-known/oauth-authorization-server", emulator.metadata, methods=["GET"])
    # RFC 8414 §3: the well-known URI of an issuer with a path is inserted before that path.
    app.add_api_route("/.well-known/oauth-authorization-server/auth", emulator.metadata, methods=["GET"])
    app.add_api_route("/auth/auth", emulator.authorize_page, methods=["GET"])
    app.add_api_route("/auth/auth", emulator.authorize_decision, methods=["POST"])
    app.add_api_route("/auth/token", emulator.token, methods=["POST"])
    app.add_api_route("/auth/token/revocation", emulator.revocation, methods=["POST"])
    app.add_api_route("/auth/me", emulator.userinfo, methods=["GET", "POST"])
    app.add_api_route("/api", emulator.graphql, methods=["POST"])
    router = control_router(emulator)
    add_app_controls(router, emulator)
    app.include_router(router)
    return app
