"""Spotify emulator: accounts.spotify.com under /accounts, api.spotify.com under /api.

Authorization code flow with optional PKCE (S256), the token endpoint's client authentication
(HTTP Basic for confidential clients; `client_id` + `code_verifier` in the body for PKCE), the
two refresh-token regimes Spotify has had ("rotate": single-use refresh tokens, "no-rotate": no
new refresh token, expiry a fixed time after the original authorization) and `GET /v1/me`.
Spotify has no revocation endpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Literal

import pydantic
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import consent
from .control import add_app_controls, control_router
from .core import CallKind, ControlError, EmulatorCore
from .oauth import (
    AuthorizationRequest,
    ClientApp,
    Grant,
    OAuthState,
    authorization_header,
    basic_credentials,
    is_loopback_uri,
    pkce_verifies,
    redirect_to,
)

PROVIDER = "Spotify"

SCOPES = frozenset(
    {
        "ugc-image-upload",
        "user-read-playback-state",
        "user-modify-playback-state",
        "user-read-currently-playing",
        "app-remote-control",
        "streaming",
        "playlist-read-private",
        "playlist-read-collaborative",
        "playlist-modify-private",
        "playlist-modify-public",
        "user-follow-read",
        "user-follow-modify",
        "user-read-playback-position",
        "user-top-read",
        "user-read-recently-played",
        "user-library-read",
        "user-library-modify",
        "user-read-email",
        "user-read-private",
        "user-soa-link",
        "user-soa-unlink",
    }
)


@dataclasses.dataclass
class SpotifySettings:
    access_ttl: int = 3600
    # Since July 2026 refresh tokens expire this long after the original authorization.
    refresh_ttl: int = 180 * 86400
    code_ttl: int = 600
    # "rotate": every refresh returns a new single-use refresh token; "no-rotate": none is returned.
    refresh_mode: Literal["rotate", "no-rotate"] = "no-rotate"
    # Spotify's wording for an expired refresh token is not documented (UNCONFIRMED).
    refresh_expired_description: str = "Refresh token expired"


class SpotifyUser(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    id: str = pydantic.Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    display_name: str | None = None
    email: str | None = None
    country: str = "US"
    product: str = "premium"
    # False: a development-mode app's user not on its allow-list; the Web API answers 403.
    allowlisted: bool = True


DEFAULT_USERS = (
    SpotifyUser(id="sandbox_user", display_name="Sandbox User", email="sandbox@example.com"),
    SpotifyUser(id="second_user", display_name="Second User", email="second@example.com", product="free"),
)


def _flat_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """Accounts service errors: a flat OAuth body."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _web_api_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Web API errors: a nested body."""
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


def _unauthorized(message: str) -> JSONResponse:
    challenge = f'Bearer realm="spotify", error="invalid_token", error_description="{message}"'
    return _web_api_error(401, message, {"WWW-Authenticate": challenge})


def _retry_headers(retry_after: int | None) -> dict[str, str] | None:
    return None if retry_after is None else {"Retry-After": str(retry_after)}


def _page_failure(status: int, retry_after: int | None) -> Response:
    message = f"Error {status}. Please try again later."
    return consent.error_page(
        PROVIDER, "Something went wrong", message, status=status, headers=_retry_headers(retry_after)
    )


def _token_failure(status: int, retry_after: int | None) -> Response:
    body = {
        429: ("rate_limit_exceeded", "Too many requests"),
        504: ("server_error", "Gateway timeout"),
    }.get(status, ("server_error", "Unexpected error"))
    return JSONResponse(
        {"error": body[0], "error_description": body[1]}, status_code=status, headers=_retry_headers(retry_after)
    )


def _api_failure(status: int, retry_after: int | None) -> Response:
    message = {429: "API rate limit exceeded", 504: "Gateway timeout"}.get(status, "Server error.")
    return _web_api_error(status, message, _retry_headers(retry_after))


class SpotifyEmulator:
    revoke_reasons: tuple[str, ...] = ("revoked",)

    def __init__(self, *, base_url: str | None, sandbox_app: bool) -> None:
        self.core = EmulatorCore(SpotifySettings, base_url=base_url)
        self.oauth = OAuthState(
            access_prefix="BQ", refresh_prefix="AQ", sandbox_app=sandbox_app, localhost_is_loopback=False
        )
        self.users: dict[str, SpotifyUser] = {}
        self.reset()

    @property
    def settings(self) -> SpotifySettings:
        return self.core.settings

    # -- control hooks ---------------------------------------------------------------------

    def reset(self) -> None:
        self.core.reset()
        self.oauth.reset()
        self.users = {user.id: user.model_copy() for user in DEFAULT_USERS}

    def users_json(self) -> list[dict[str, Any]]:
        return [user.model_dump() | {"account_id": _account_id(user.id)} for user in self.users.values()]

    def create_user(self, payload: Any) -> dict[str, Any]:
        user = SpotifyUser.model_validate(payload)
        if user.id in self.users:
            raise ControlError(f"user {user.id!r} exists")
        self.users[user.id] = user
        return user.model_dump() | {"account_id": _account_id(user.id)}

    def has_user(self, user_id: str) -> bool:
        return user_id in self.users

    def redirect_uri_registrable(self, uri: str) -> bool:
        """HTTPS, or http on a loopback IP literal; `localhost` is refused."""
        return uri.startswith("https://") or is_loopback_uri(uri, localhost=False)

    # -- authorization ----------------------------------------------------------------------

    def _authorization_request(self, request: Request) -> AuthorizationRequest | Response:
        params = request.query_params
        app = self.oauth.apps.get(params.get("client_id", ""))
        if app is None:
            return consent.error_page(PROVIDER, "INVALID_CLIENT", "INVALID_CLIENT: Invalid client")
        redirect_uri = params.get("redirect_uri", "")
        if not self.oauth.allows_redirect(app, redirect_uri):
            return consent.error_page(PROVIDER, "INVALID_CLIENT", "INVALID_CLIENT: Invalid redirect URI")
        state = params.get("state")
        if params.get("response_type") != "code":
            return redirect_to(redirect_uri, {"error": "unsupported_response_type", "state": state})
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        if any(scope not in SCOPES for scope in scopes):
            return redirect_to(redirect_uri, {"error": "invalid_scope", "state": state})
        challenge = params.get("code_challenge")
        if challenge is not None and params.get("code_challenge_method") != "S256":
            return redirect_to(redirect_uri, {"error": "invalid_request", "state": state})
        return AuthorizationRequest(app, redirect_uri, scopes, state, challenge)

    def _consent(self, auth: AuthorizationRequest, user_id: str, error: str | None = None) -> Response:
        return consent.consent_page(
            provider=PROVIDER,
            app_name=auth.app.name,
            scopes=auth.scopes,
            users=[consent.KnownUser(u.id, u.display_name or u.id) for u in self.users.values()],
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
        if not decision.approved:
            return redirect_to(auth.redirect_uri, {"error": "access_denied", "state": auth.state})
        self.users.setdefault(decision.user_id, SpotifyUser(id=decision.user_id, display_name=decision.user_id))
        code = self.oauth.issue_code(
            auth,
            user_id=decision.user_id,
            scopes=decision.granted,
            expires_at=self.core.now() + self.settings.code_ttl,
        )
        return redirect_to(auth.redirect_uri, {"code": code.value, "state": auth.state})

    # -- token endpoint ---------------------------------------------------------------------

    def _client(self, request: Request, form: dict[str, str]) -> tuple[ClientApp, bool] | Response:
        """The calling client and whether it authenticated with its secret (HTTP Basic)."""
        header = authorization_header(request)
        if header is not None and header[0] == "basic":
            credentials = basic_credentials(header[1])
            app = self.oauth.apps.get(credentials[0]) if credentials else None
            if credentials is None or app is None:
                return _flat_error("invalid_client", "Invalid client")
            if not app.secret_matches(credentials[1]):
                return _flat_error("invalid_client", "Invalid client secret")
            return app, True
        app = self.oauth.apps.get(form.get("client_id", ""))
        if app is None:
            return _flat_error("invalid_client", "Invalid client")
        return app, False

    async def token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        kind: CallKind = "refresh" if form.get("grant_type") == "refresh_token" else "token"
        if blocked := await self.core.gate(kind, _token_failure):
            return blocked
        response = self._token(request, form)
        await self.core.hold.wait(kind)
        return response

    def _token(self, request: Request, form: dict[str, str]) -> Response:
        grant_type = form.get("grant_type")
        if grant_type is None:
            return _flat_error("unsupported_grant_type", "grant_type parameter is missing")
        if grant_type not in ("authorization_code", "refresh_token"):
            return _flat_error(
                "unsupported_grant_type", "grant_type must be client_credentials, authorization_code or refresh_token"
            )
        client = self._client(request, form)
        if isinstance(client, Response):
            return client
        app, confidential = client
        if grant_type == "authorization_code":
            return self._exchange_code(form, app, confidential)
        return self._refresh(form, app, confidential)

    def _token_response(self, grant: Grant, refresh_token: str | None) -> JSONResponse:
        now = self.core.now()
        access = self.oauth.issue_access(grant, now=now, expires_at=now + self.settings.access_ttl)
        body: dict[str, Any] = {
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": self.settings.access_ttl,
            "scope": " ".join(grant.scopes),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _exchange_code(self, form: dict[str, str], app: ClientApp, confidential: bool) -> Response:
        code = self.oauth.codes.get(form.get("code", ""))
        if code is None or code.client_id != app.client_id or code.grant_id is not None:
            return _flat_error("invalid_grant", "Invalid authorization code")
        now = self.core.now()
        if now >= code.expires_at:
            return _flat_error("invalid_grant", "Authorization code expired")
        if form.get("redirect_uri") != code.redirect_uri:
            return _flat_error("invalid_grant", "Invalid redirect URI")
        if code.code_challenge is not None:
            if not pkce_verifies(form.get("code_verifier"), code.code_challenge):
                return _flat_error("invalid_grant", "code_verifier was incorrect")
        elif not confidential:
            return _flat_error("invalid_client", "Invalid client")
        grant = self.oauth.redeem(code, now=now, public=not confidential)
        refresh = self.oauth.issue_refresh(grant, now=now, expires_at=now + self.settings.refresh_ttl)
        return self._token_response(grant, refresh.value)

    def _refresh(self, form: dict[str, str], app: ClientApp, confidential: bool) -> Response:
        token = self.oauth.refresh.get(form.get("refresh_token", ""))
        grant = self.oauth.grants[token.grant_id] if token else None
        if token is None or grant is None or grant.client_id != app.client_id:
            return _flat_error("invalid_grant", "Invalid refresh token")
        if not (confidential or grant.public):
            return _flat_error("invalid_client", "Invalid client")
        if grant.revoked or token.used:
            return _flat_error("invalid_grant", "Refresh token revoked")
        now = self.core.now()
        if token.expires_at is not None and now >= token.expires_at:
            return _flat_error("invalid_grant", self.settings.refresh_expired_description)
        if self.settings.refresh_mode == "no-rotate":
            return self._token_response(grant, None)
        token.used = True
        # The expiry stays anchored to the original authorization.
        rotated = self.oauth.issue_refresh(grant, now=now, expires_at=token.expires_at)
        return self._token_response(grant, rotated.value)

    # -- Web API ----------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        if blocked := await self.core.gate("api", _api_failure):
            return blocked
        header = authorization_header(request)
        if header is None:
            return _unauthorized("No token provided")
        if header[0] != "bearer":
            return _web_api_error(400, "Only valid bearer authentication supported")
        token = self.oauth.access.get(header[1])
        if token is None or self.oauth.grants[token.grant_id].revoked:
            return _unauthorized("Invalid access token")
        if token.expires_at is not None and self.core.now() >= token.expires_at:
            return _unauthorized("The access token expired")
        user = self.users[token.subject]
        if not user.allowlisted:
            return _web_api_error(403, "User not registered in the Developer Dashboard")
        return JSONResponse(self._profile(request, user, self.oauth.grants[token.grant_id].scopes))

    def _profile(self, request: Request, user: SpotifyUser, scopes: tuple[str, ...]) -> dict[str, Any]:
        api = self.core.base_url(request) + "/api"
        profile: dict[str, Any] = {
            "account_id": _account_id(user.id),
            "display_name": user.display_name,
            "external_urls": {"spotify": f"https://open.spotify.com/user/{user.id}"},
            "followers": {"href": None, "total": 0},
            "href": f"{api}/v1/users/{user.id}",
            "id": user.id,
            "images": [],
            "type": "user",
            "uri": f"spotify:user:{user.id}",
        }
        if "user-read-email" in scopes and user.email:
            profile["email"] = user.email
        if "user-read-private" in scopes:
            profile |= {
                "country": user.country,
                "product": user.product,
                "explicit_content": {"filter_enabled": False, "filter_locked": False},
            }
        return profile


def _account_id(user_id: str) -> str:
    """An immutable account id, stable for a user id (Spotify's own format is opaque)."""
    return hashlib.sha256(f"spotify-account:{user_id}".encode()).hexdigest()[:22]


def create_app(*, base_url: str | None = None, sandbox_app: bool = True) -> FastAPI:
    """The Spotify emulator as an ASGI app.

    base_url: where the emulator is reachable (used in `href`s); default: taken from each request.
    sandbox_app: register the permissive client `sandbox-client` / `sandbox-secret`, which accepts
    any loopback redirect URI (127.0.0.1 or [::1], any port; Spotify refuses `localhost`).
    """
    emulator = SpotifyEmulator(base_url=base_url, sandbox_app=sandbox_app)
    app = FastAPI(title="Spotify emulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.emulator = emulator
    app.add_api_route("/accounts/authorize", emulator.authorize_page, methods=["GET"])
    app.add_api_route("/accounts/authorize", emulator.authorize_decision, methods=["POST"])
    app.add_api_route("/accounts/api/token", emulator.token, methods=["POST"])
    app.add_api_route("/api/v1/me", emulator.me, methods=["GET"])
    router = control_router(emulator)
    add_app_controls(router, emulator)
    app.include_router(router)
    return app
