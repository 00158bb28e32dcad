"""Facebook emulator: Facebook Login (www.facebook.com under /www) and the Graph API
(graph.facebook.com under /graph), with Pages and their linked Instagram business accounts.

Code exchange and `fb_exchange_token` at `/oauth/access_token`, with the credentials as query
parameters of a GET (as Meta's guides show) or as the form body of a POST (as Graph also takes
them, and as Authpipe sends them); short-lived user tokens, long-lived ones (about 60 days) from
the exchange, Page tokens that never expire when taken with a long-lived user token;
`debug_token`; Graph error objects (code 190 with the subcode for expiry or revocation);
`DELETE /me/permissions`.
Any `vNN.N` version segment is accepted, and so are unversioned paths, as on the real Graph API.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import time
from typing import Any

import pydantic
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import consent
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

PROVIDER = "Facebook"
_VERSION = re.compile(r"v\d+\.\d+")
_PERMISSION = re.compile(r"[a-z_]+")

# Revocation reason (control API) -> the error subcode and message Graph answers with.
INSTAGRAM_NOTE = (
    "Why Facebook? Instagram accounts connect through Facebook Login: the Instagram Graph API reaches a "
    "professional (Business or Creator) Instagram account through the Facebook Page it is linked to, so you "
    "sign in and approve on Facebook, then choose the Page whose Instagram account the app may use."
)

_REVOCATION_ERRORS = {
    "deauthorized": (458, "Error validating access token: The user has not authorized application {app_id}."),
    "password_changed": (
        460,
        "Error validating access token: The session has been invalidated because the user changed their "
        "password or Facebook has changed the session for security reasons.",
    ),
    "logged_out": (467, "Error validating access token: The session is invalid because the user logged out."),
}
_CANNOT_PARSE = "Invalid OAuth access token - Cannot parse access token"
_PAGE_TASKS = ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]


@dataclasses.dataclass
class FacebookSettings:
    access_ttl: int = 3600  # short-lived user token from the code exchange (about 1-2 h)
    long_lived_ttl: int = 5183944  # from fb_exchange_token (about 60 days)
    code_ttl: int = 600
    data_access_ttl: int = 90 * 86400
    error_status: int = 400  # HTTP status of Graph errors: the docs say 400, some mocks use 401 (UNCONFIRMED)
    # Graph signals throttling by error code 4; whether real Graph uses HTTP 429 for it is UNCONFIRMED.
    rate_limit_status: int = 429
    # WWW-Authenticate: OAuth "Facebook Platform" "<error>" "<message>" on Graph errors.
    www_authenticate: bool = True


class InstagramAccount(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    id: str | None = None  # assigned when left out
    username: str
    name: str | None = None


class FacebookPage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    id: str | None = None
    name: str
    category: str = "Brand"
    instagram: InstagramAccount | None = None  # the linked instagram_business_account


class FacebookUser(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    id: str | None = pydantic.Field(None, pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    name: str
    email: str | None = None
    pages: list[FacebookPage] = []


DEFAULT_USERS = (
    FacebookUser(
        id="100000000000001",
        name="Sandbox User",
        email="sandbox@example.com",
        pages=[
            FacebookPage(
                id="200000000000001",
                name="Sandbox Page",
                instagram=InstagramAccount(id="17841400000000001", username="sandbox.page", name="Sandbox Page"),
            ),
            FacebookPage(id="200000000000002", name="Second Sandbox Page", category="Community"),
        ],
    ),
    FacebookUser(id="100000000000002", name="Second User", email="second@example.com"),
)


def _fb_time(epoch: float) -> str:
    return time.strftime("%A, %d-%b-%y %H:%M:%S UTC", time.gmtime(epoch))


def _split_fields(fields: str) -> dict[str, str]:
    """`a,b{c,d}` -> {"a": "", "b": "c,d"}: top-level fields with their nested field lists."""
    result: dict[str, str] = {}
    depth, start = 0, 0
    for index, char in enumerate(fields + ","):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            item = fields[start:index].strip()
            start = index + 1
            if item:
                name, _, nested = item.partition("{")
                result[name.strip()] = nested.rstrip("}")
    return result


class _NoSuchField(Exception):
    def __init__(self, name: str, node_type: str) -> None:
        super().__init__(f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})")


def _select(node_type: str, requested: str, available: dict[str, Any]) -> dict[str, Any]:
    """The requested fields of a node, plus its `id`, which Graph always answers with.

    A callable value is an object-valued or costly field, computed only when asked for, from its
    nested field list."""
    result: dict[str, Any] = {}
    for name, nested in (_split_fields(requested) | {"id": ""}).items():
        if name not in available:
            raise _NoSuchField(name, node_type)
        value = available[name]
        if callable(value):
            value = value(nested)
        if value is not None:
            result[name] = value
    return result


class FacebookEmulator:
    revoke_reasons: tuple[str, ...] = tuple(_REVOCATION_ERRORS)

    def __init__(self, *, base_url: str | None, sandbox_app: bool) -> None:
        self.core = EmulatorCore(FacebookSettings, base_url=base_url)
        self.oauth = OAuthState(
            access_prefix="EAA", refresh_prefix="", sandbox_app=sandbox_app, localhost_is_loopback=True
        )
        self.reset()

    @property
    def settings(self) -> FacebookSettings:
        return self.core.settings

    # -- control hooks ---------------------------------------------------------------------

    def reset(self) -> None:
        self.core.reset()
        self.oauth.reset()
        self.users: dict[str, FacebookUser] = {}
        self.pages: dict[str, tuple[str, FacebookPage]] = {}  # page id -> (owner user id, page)
        self.instagram: dict[str, tuple[str, InstagramAccount]] = {}  # IG user id -> (page id, account)
        self.page_tokens: dict[tuple[str, str], AccessToken] = {}  # (user token, page id) -> page token
        self._last_id = 100
        for user in DEFAULT_USERS:
            self._add_user(user.model_copy(deep=True))

    def _next_id(self) -> int:
        self._last_id += 1
        return self._last_id

    def _add_user(self, user: FacebookUser) -> FacebookUser:
        user.id = user.id or f"1000000000{self._next_id():05d}"
        for page in user.pages:
            page.id = page.id or f"2000000000{self._next_id():05d}"
            if page.instagram is not None:
                page.instagram.id = page.instagram.id or f"178414000{self._next_id():08d}"
        taken = [user.id] if user.id in self.users else []
        taken += [page.id for page in user.pages if page.id in self.pages]
        taken += [page.instagram.id for page in user.pages if page.instagram and page.instagram.id in self.instagram]
        if taken:
            raise ControlError(f"ids already in use: {', '.join(str(t) for t in taken)}")
        self.users[user.id] = user
        for page in user.pages:
            self.pages[str(page.id)] = (user.id, page)
            if page.instagram is not None:
                self.instagram[str(page.instagram.id)] = (str(page.id), page.instagram)
        return user

    def users_json(self) -> list[dict[str, Any]]:
        return [user.model_dump() for user in self.users.values()]

    def create_user(self, payload: Any) -> dict[str, Any]:
        return self._add_user(FacebookUser.model_validate(payload)).model_dump()

    def has_user(self, user_id: str) -> bool:
        return user_id in self.users

    def redirect_uri_registrable(self, uri: str) -> bool:
        return uri.startswith(("https://", "http://"))

    # -- errors -----------------------------------------------------------------------------

    def _graph_error(
        self,
        message: str,
        code: int,
        *,
        subcode: int | None = None,
        status: int | None = None,
        challenge: str = "invalid_request",
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
        if subcode is not None:
            error["error_subcode"] = subcode
        error |= extra or {}
        error["fbtrace_id"] = secrets.token_urlsafe(8)
        all_headers = dict(headers or {})
        if self.settings.www_authenticate:
            all_headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "{challenge}" "{message}"'
        return JSONResponse({"error": error}, status_code=status or self.settings.error_status, headers=all_headers)

    def _graph_failure(self, status: int, retry_after: int | None) -> Response:
        if status == 429:
            headers = {"X-App-Usage": '{"call_count":100,"total_cputime":0,"total_time":0}'}
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            return self._graph_error(
                "(#4) Application request limit reached",
                4,
                status=self.settings.rate_limit_status,
                extra={"is_transient": True},
                headers=headers,
            )
        if status == 504:
            message = "An unexpected error has occurred. Please retry your request later."
            return self._graph_error(message, 2, status=504, extra={"is_transient": True})
        return self._graph_error("An unknown error has occurred.", 1, status=status, extra={"is_transient": False})

    @staticmethod
    def _page_failure(status: int, retry_after: int | None) -> Response:
        headers = None if retry_after is None else {"Retry-After": str(retry_after)}
        message = "Sorry, something went wrong. We're working on getting this fixed as soon as we can."
        return consent.error_page(PROVIDER, "Something went wrong", message, status=status, headers=headers)

    def _token_problem(self, token: AccessToken) -> tuple[int, str] | None:
        """(subcode, message) of the 190 error this token now gets, or None while it is valid."""
        grant = self.oauth.grants[token.grant_id]
        if grant.revoked is not None:
            subcode, message = _REVOCATION_ERRORS[grant.revoked]
            return subcode, message.format(app_id=grant.client_id)
        now = self.core.now()
        if token.expires_at is not None and now >= token.expires_at:
            return 463, (
                f"Error validating access token: Session has expired on {_fb_time(token.expires_at)}. "
                f"The current time is {_fb_time(now)}."
            )
        return None

    # -- Facebook Login dialog --------------------------------------------------------------

    def _authorization_request(self, request: Request) -> AuthorizationRequest | Response:
        version = request.path_params.get("version")
        if version is not None and not _VERSION.fullmatch(version):
            return consent.error_page(PROVIDER, "Page Not Found", "This page isn't available.", status=404)
        params = request.query_params
        app = self.oauth.apps.get(params.get("client_id", ""))
        if app is None:
            return consent.error_page(
                PROVIDER, "Invalid App ID", "The provided app ID does not look like a valid app ID."
            )
        redirect_uri = params.get("redirect_uri", "")
        if not self.oauth.allows_redirect(app, redirect_uri):
            return consent.error_page(
                PROVIDER,
                "URL Blocked",
                "This redirect failed because the redirect URI is not whitelisted in the app's Client OAuth "
                "Settings. Make sure Client and Web OAuth Login are on and add all your app domains as Valid "
                "OAuth Redirect URIs.",
            )
        response_types = set(re.split(r"[\s,]+", params.get("response_type", "code").strip()))
        if "code" not in response_types or not response_types <= {"code", "granted_scopes"}:
            return consent.error_page(PROVIDER, "Unsupported response_type", "This emulator issues codes only.")
        scopes = tuple(dict.fromkeys(s.strip() for s in params.get("scope", "").split(",") if s.strip()))
        invalid = [scope for scope in scopes if not _PERMISSION.fullmatch(scope)]
        if invalid:
            return consent.error_page(
                PROVIDER,
                "Invalid Scopes",
                f"Invalid Scopes: {', '.join(invalid)}. This message is only shown to developers.",
            )
        challenge = params.get("code_challenge")
        if challenge is not None and params.get("code_challenge_method") != "S256":
            return consent.error_page(PROVIDER, "Invalid code_challenge_method", "Only S256 is supported.")
        return AuthorizationRequest(app, redirect_uri, scopes, params.get("state"), challenge)

    def _consent(self, auth: AuthorizationRequest, user_id: str, error: str | None = None) -> Response:
        return consent.consent_page(
            provider=PROVIDER,
            app_name=auth.app.name,
            scopes=auth.scopes,
            users=[consent.KnownUser(str(u.id), f"{u.name} ({u.id})") for u in self.users.values()],
            user_id=user_id,
            selectable=True,
            error=error,
            note=INSTAGRAM_NOTE if any(scope.startswith("instagram_") for scope in auth.scopes) else None,
        )

    async def dialog_page(self, request: Request) -> Response:
        if blocked := await self.core.gate("authorize", self._page_failure):
            return blocked
        auth = self._authorization_request(request)
        if isinstance(auth, Response):
            return auth
        return self._consent(auth, next(iter(self.users), ""))

    async def dialog_decision(self, request: Request) -> Response:
        auth = self._authorization_request(request)
        if isinstance(auth, Response):
            return auth
        decision = await consent.read_decision(request, auth.scopes, selectable=True)
        if isinstance(decision, str):
            return self._consent(auth, "", decision)
        if not decision.approved:
            params = {
                "error_reason": "user_denied",
                "error": "access_denied",
                "error_description": "Permissions error.",
                "state": auth.state,
            }
            return redirect_to(auth.redirect_uri, params, fragment="_=_")
        if decision.user_id not in self.users:
            self._add_user(FacebookUser(id=decision.user_id, name=decision.user_id))
        code = self.oauth.issue_code(
            auth,
            user_id=decision.user_id,
            scopes=decision.granted,
            declined=decision.declined,
            expires_at=self.core.now() + self.settings.code_ttl,
        )
        params = {"code": code.value, "state": auth.state}
        if "granted_scopes" in request.query_params.get("response_type", ""):
            params |= {"granted_scopes": ",".join(decision.granted), "denied_scopes": ",".join(decision.declined)}
        return redirect_to(auth.redirect_uri, params, fragment="_=_")

    # -- Graph API ----------------------------------------------------------------------------

    async def graph(self, request: Request, path: str) -> Response:
        segments = [segment for segment in path.split("/") if segment]
        if segments and _VERSION.fullmatch(segments[0]):
            segments = segments[1:]
        params = dict(request.query_params)
        if request.method == "POST":
            params |= {key: str(value) for key, value in (await request.form()).items()}
        if segments == ["oauth", "access_token"]:
            return await self._oauth_access_token(params)
        kind: CallKind = "revoke" if request.method == "DELETE" else "api"
        if blocked := await self.core.gate(kind, self._graph_failure):
            return blocked
        if segments == ["debug_token"]:
            return self._debug_token(params)
        if not 1 <= len(segments) <= 2:
            return self._graph_error(f"Unknown path components: /{'/'.join(segments[1:])}", 2500)
        token_value = params.get("access_token")
        header = authorization_header(request)
        if token_value is None and header is not None and header[0] in ("bearer", "oauth"):
            token_value = header[1]
        if not token_value:
            if segments[0] == "me":
                return self._graph_error(
                    "An active access token must be used to query information about the current user.", 2500
                )
            return self._graph_error("An access token is required to request this resource.", 104)
        token = self.oauth.access.get(token_value)
        if token is None:
            return self._graph_error(_CANNOT_PARSE, 190, challenge="invalid_token")
        if problem := self._token_problem(token):
            return self._graph_error(problem[1], 190, subcode=problem[0], challenge="invalid_token")
        node = token.subject if segments[0] == "me" else segments[0]
        edge = segments[1] if len(segments) == 2 else None
        if request.method == "DELETE":
            if edge == "permissions" and token.kind == "user" and node == token.subject:
                self.oauth.revoke(token.subject, self.oauth.grants[token.grant_id].client_id, "deauthorized")
                return JSONResponse({"success": True})
            return self._graph_error("Unsupported delete request.", 100, subcode=33)
        if request.method != "GET":
            return self._graph_error("Unsupported post request.", 100, subcode=33)
        try:
            return self._read(token, node, edge, params.get("fields"))
        except _NoSuchField as exc:
            return self._graph_error(str(exc), 100)

    def _unsupported_get(self, node: str) -> JSONResponse:
        return self._graph_error(
            f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to missing "
            "permissions, or does not support this operation. Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api",
            100,
            subcode=33,
        )

    def _read(self, token: AccessToken, node: str, edge: str | None, fields: str | None) -> Response:
        grant = self.oauth.grants[token.grant_id]
        if token.kind == "user" and node == grant.user_id:
            user = self.users[node]
            if edge is None:
                return JSONResponse(_select("User", fields or "id,name", self._user_fields(user, grant)))
            if edge == "accounts":
                return JSONResponse(self._accounts(token, user, fields))
            if edge == "permissions":
                return JSONResponse({"data": self._permissions(grant)})
        elif node in self.pages and self._may_act_for_page(token, node):
            if edge is None:
                return JSONResponse(_select("Page", fields or "name,id", self._page_fields(token, node)))
        elif node in self.instagram and self._may_act_for_page(token, self.instagram[node][0]):
            if token.kind == "user" and "instagram_basic" not in grant.scopes:
                return self._graph_error("(#10) Application does not have permission for this action", 10)
            if edge is None:
                return JSONResponse(_select("IGUser", fields or "id", self._instagram_fields(node)))
        else:
            return self._unsupported_get(node)
        return self._graph_error(f"Unknown path components: /{edge}", 2500)

    def _may_act_for_page(self, token: AccessToken, page_id: str) -> bool:
        if token.kind == "page":
            return token.subject == page_id
        return self.pages[page_id][0] == self.oauth.grants[token.grant_id].user_id

    @staticmethod
    def _user_fields(user: FacebookUser, grant: Grant) -> dict[str, Any]:
        return {"id": user.id, "name": user.name, "email": user.email if "email" in grant.scopes else None}

    def _page_fields(self, token: AccessToken, page_id: str) -> dict[str, Any]:
        page = self.pages[page_id][1]

        def access_token(_: str) -> str:
            return self._page_token(token, page_id).value if token.kind == "user" else token.value

        def instagram_business_account(nested: str) -> dict[str, Any] | None:
            if page.instagram is None:
                return None
            return _select("IGUser", nested or "id", self._instagram_fields(str(page.instagram.id)))

        return {
            "id": page.id,
            "name": page.name,
            "category": page.category,
            "tasks": _PAGE_TASKS,
            "access_token": access_token,
            "instagram_business_account": instagram_business_account,
        }

    def _instagram_fields(self, ig_id: str) -> dict[str, Any]:
        account = self.instagram[ig_id][1]
        return {"id": account.id, "username": account.username, "name": account.name}

    def _page_token(self, user_token: AccessToken, page_id: str) -> AccessToken:
        """The Page token for this user token: the same one on every call. Taken with a
        long-lived user token it never expires; otherwise it expires with the user token."""
        key = (user_token.value, page_id)
        if key not in self.page_tokens:
            grant = self.oauth.grants[user_token.grant_id]
            self.page_tokens[key] = self.oauth.issue_access(
                grant,
                now=self.core.now(),
                expires_at=None if user_token.long_lived else user_token.expires_at,
                subject=page_id,
                kind="page",
                long_lived=user_token.long_lived,
            )
        return self.page_tokens[key]

    def _accounts(self, token: AccessToken, user: FacebookUser, fields: str | None) -> dict[str, Any]:
        if "pages_show_list" not in self.oauth.grants[token.grant_id].scopes:
            return {"data": []}
        requested = fields or "access_token,category,name,id,tasks"
        data = [_select("Page", requested, self._page_fields(token, str(page.id))) for page in user.pages]
        body: dict[str, Any] = {"data": data}
        if data:
            body["paging"] = {"cursors": {"before": secrets.token_urlsafe(12), "after": secrets.token_urlsafe(12)}}
        return body

    @staticmethod
    def _permissions(grant: Grant) -> list[dict[str, str]]:
        granted = [{"permission": scope, "status": "granted"} for scope in grant.scopes]
        return granted + [{"permission": scope, "status": "declined"} for scope in grant.declined]

    def _granular_scopes(self, grant: Grant) -> list[dict[str, Any]]:
        user = self.users[grant.user_id]
        page_ids = [str(page.id) for page in user.pages]
        ig_ids = [str(page.instagram.id) for page in user.pages if page.instagram]
        result: list[dict[str, Any]] = []
        for scope in grant.scopes:
            entry: dict[str, Any] = {"scope": scope}
            if scope.startswith("pages_"):
                entry["target_ids"] = page_ids
            elif scope.startswith("instagram_"):
                entry["target_ids"] = ig_ids
            result.append(entry)
        return result

    def _debug_token(self, params: dict[str, str]) -> Response:
        app = self._app_from_app_token(params.get("access_token", ""))
        if app is None:
            return self._graph_error(
                "(#100) You must provide an app access token, or a user access token that is an owner or "
                "developer of the app",
                100,
            )
        if not params.get("input_token"):
            return self._graph_error("(#100) The parameter input_token is required", 100)
        token = self.oauth.access.get(params["input_token"])
        if token is None:
            return JSONResponse(
                {"data": {"error": {"code": 190, "message": _CANNOT_PARSE}, "is_valid": False, "scopes": []}}
            )
        grant = self.oauth.grants[token.grant_id]
        token_app = self.oauth.apps.get(grant.client_id)
        data: dict[str, Any] = {
            "app_id": grant.client_id,
            "type": token.kind.upper(),
            "application": token_app.name if token_app else grant.client_id,
            "data_access_expires_at": int(grant.authorized_at + self.settings.data_access_ttl),
            "expires_at": int(token.expires_at) if token.expires_at is not None else 0,
            "is_valid": True,
        }
        if token.long_lived:
            data["issued_at"] = int(token.issued_at)
        if token.kind == "page":
            data["profile_id"] = token.subject
        data |= {
            "scopes": list(grant.scopes),
            "granular_scopes": self._granular_scopes(grant),
            "user_id": grant.user_id,
        }
        if problem := self._token_problem(token):
            data["is_valid"] = False
            data["error"] = {"code": 190, "message": problem[1], "subcode": problem[0]}
            if grant.revoked is not None:
                data["expires_at"] = 0
        return JSONResponse({"data": data})

    def _app_from_app_token(self, value: str) -> ClientApp | None:
        """An app access token is `{app_id}|{app_secret}`."""
        app_id, sep, secret = value.partition("|")
        app = self.oauth.apps.get(app_id) if sep else None
        return app if app is not None and app.secret_matches(secret) else None

    # -- GET or POST /oauth/access_token ----------------------------------------------------

    async def _oauth_access_token(self, params: dict[str, str]) -> Response:
        grant_type = params.get("grant_type")
        kind: CallKind = "refresh" if grant_type == "fb_exchange_token" else "token"
        if blocked := await self.core.gate(kind, self._graph_failure):
            return blocked
        response = self._access_token(params)
        await self.core.hold.wait(kind)
        return response

    def _access_token(self, params: dict[str, str]) -> Response:
        app = self.oauth.apps.get(params.get("client_id", ""))
        if app is None:
            return self._graph_error("Error validating application. Invalid application ID.", 101)
        grant_type = params.get("grant_type")
        if grant_type == "fb_exchange_token":
            return self._exchange_for_long_lived(app, params)
        if grant_type in (None, "authorization_code"):
            return self._exchange_code(app, params)
        return self._graph_error(f"Unsupported grant_type: {grant_type}", 100)

    def _exchange_code(self, app: ClientApp, params: dict[str, str]) -> Response:
        if not params.get("code"):
            return self._graph_error("Missing authorization code", 100, challenge="invalid_code")
        code = self.oauth.codes.get(params["code"])
        if code is None or code.client_id != app.client_id:
            return self._graph_error("Invalid verification code format.", 100, challenge="invalid_code")
        secret = params.get("client_secret")
        # Without a secret only a PKCE code can be redeemed.
        if (secret is not None or code.code_challenge is None) and not app.secret_matches(secret):
            return self._graph_error("Error validating client secret.", 1)
        if code.grant_id is not None:
            return self._graph_error(
                "This authorization code has been used.", 100, subcode=36009, challenge="invalid_code"
            )
        now = self.core.now()
        if now >= code.expires_at:
            return self._graph_error(
                "This authorization code has expired.", 100, subcode=36007, challenge="invalid_code"
            )
        if params.get("redirect_uri") != code.redirect_uri:
            return self._graph_error(
                "Error validating verification code. Please make sure your redirect_uri is identical to the one "
                "you used in the OAuth dialog request",
                100,
                subcode=36008,
                challenge="invalid_code",
            )
        if code.code_challenge is not None and not pkce_verifies(params.get("code_verifier"), code.code_challenge):
            return self._graph_error("Invalid code verifier.", 100, challenge="invalid_code")
        grant = self.oauth.redeem(code, now=now, public=secret is None)
        token = self.oauth.issue_access(grant, now=now, expires_at=now + self.settings.access_ttl)
        return JSONResponse(
            {"access_token": token.value, "token_type": "bearer", "expires_in": self.settings.access_ttl}
        )

    def _exchange_for_long_lived(self, app: ClientApp, params: dict[str, str]) -> Response:
        if not app.secret_matches(params.get("client_secret")):
            return self._graph_error("Error validating client secret.", 1)
        token = self.oauth.access.get(params.get("fb_exchange_token", ""))
        if token is None or token.kind != "user" or self.oauth.grants[token.grant_id].client_id != app.client_id:
            return self._graph_error(_CANNOT_PARSE, 190, challenge="invalid_token")
        if problem := self._token_problem(token):
            return self._graph_error(problem[1], 190, subcode=problem[0], challenge="invalid_token")
        now = self.core.now()
        grant = self.oauth.grants[token.grant_id]
        long_lived = self.oauth.issue_access(
            grant, now=now, expires_at=now + self.settings.long_lived_ttl, long_lived=True
        )
        return JSONResponse(
            {"access_token": long_lived.value, "token_type": "bearer", "expires_in": self.settings.long_lived_ttl}
        )


def create_app(*, base_url: str | None = None, sandbox_app: bool = True) -> FastAPI:
    """The Facebook (and Instagram via Facebook Login) emulator as an ASGI app.

    base_url: where the emulator is reachable; it emits no absolute URLs, kept for a uniform
    factory signature. sandbox_app: register the permissive client `sandbox-client` /
    `sandbox-secret`, which accepts any loopback redirect URI.
    """
    emulator = FacebookEmulator(base_url=base_url, sandbox_app=sandbox_app)
    app = FastAPI(title="Facebook emulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.emulator = emulator
    for dialog in ("/www/{version}/dialog/oauth", "/www/dialog/oauth"):
        app.add_api_route(dialog, emulator.dialog_page, methods=["GET"])
        app.add_api_route(dialog, emulator.dialog_decision, methods=["POST"])
    app.add_api_route("/graph/{path:path}", emulator.graph, methods=["GET", "POST", "DELETE"])
    router = control_router(emulator)
    add_app_controls(router, emulator)
    app.include_router(router)
    return app
