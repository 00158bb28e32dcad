"""Bluesky emulator: an atproto entryway + PDS (bsky.social) under /xrpc, and the PLC directory
(plc.directory) under /plc.

Sessions from app passwords (or the account password) as HS256 JWTs: access 120 minutes,
refresh 90 days, rotated on every refreshSession with a 2 h grace during which the previous
refresh token yields the same next token id. Revoking an app password deletes its refresh
tokens, while access JWTs, being stateless, keep working until they expire.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

import pydantic
from fastapi import APIRouter, FastAPI, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import hs256_jwt
from .control import control_router, json_body, validate
from .core import ControlError, EmulatorCore

_HANDLE = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
_DID = r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.%-]+(:[a-zA-Z0-9._-]+)*)$"
_APP_PASSWORD = r"^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$"
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
ACCESS_SCOPES = frozenset({"com.atproto.access", "com.atproto.appPass", "com.atproto.appPassPrivileged"})
REFRESH_SCOPE = "com.atproto.refresh"


@dataclasses.dataclass
class BlueskySettings:
    access_ttl: int = 120 * 60
    refresh_ttl: int = 90 * 86400
    refresh_grace: int = 2 * 3600  # a rotated refresh token still refreshes (to the same next id) this long


class AppPasswordIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(min_length=1, max_length=64)
    password: str | None = pydantic.Field(None, pattern=_APP_PASSWORD)  # generated when left out
    privileged: bool = False


class BlueskyUserIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    handle: str = pydantic.Field(pattern=_HANDLE)
    # did:plc (derived from the handle when left out) or did:web, whose document its own host serves
    did: str | None = pydantic.Field(None, pattern=_DID)
    email: str | None = None
    password: str | None = None  # the account password; generated when left out
    display_name: str | None = None
    app_passwords: list[AppPasswordIn] = []


@dataclasses.dataclass
class AppPassword:
    name: str
    password: str
    privileged: bool


@dataclasses.dataclass
class Account:
    did: str
    handle: str
    email: str | None
    password: str
    display_name: str | None
    app_passwords: dict[str, AppPassword]

    def json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "app_passwords": [dataclasses.asdict(p) for p in self.app_passwords.values()]
        }


@dataclasses.dataclass
class RefreshRecord:
    """The server-side half of a refresh JWT, keyed by its `jti`."""

    did: str
    app_password: str | None  # None: a session from the account password
    expires_at: float
    next_id: str | None = None  # set on first rotation


DEFAULT_USERS = (
    BlueskyUserIn(
        handle="sandbox.test",
        did="did:plc:sandboxuseraaaaaaaaaaaaa",
        email="sandbox@example.com",
        password="sandbox-password",
        display_name="Sandbox User",
        app_passwords=[AppPasswordIn(name="authpipe", password="sand-boxa-ppps-swrd")],
    ),
    BlueskyUserIn(
        handle="second.test",
        did="did:plc:seconduseraaaaaaaaaaaaaa",
        email="second@example.com",
        password="second-password",
        display_name="Second User",
        app_passwords=[AppPasswordIn(name="authpipe", password="seco-ndap-ppas-swrd", privileged=True)],
    ),
)


def _xrpc_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def _base58btc(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, remainder = divmod(number, 58)
        digits = _BASE58[remainder] + digits
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + digits


def _new_app_password() -> str:
    chars = "".join(secrets.choice(_BASE32) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


class BlueskyEmulator:
    def __init__(self, *, base_url: str | None) -> None:
        self.core = EmulatorCore(BlueskySettings, base_url=base_url)
        self._key = secrets.token_bytes(32)
        self.reset()

    @property
    def settings(self) -> BlueskySettings:
        return self.core.settings

    # -- control hooks ---------------------------------------------------------------------

    def reset(self) -> None:
        self.core.reset()
        self.accounts: dict[str, Account] = {}
        self.refresh_tokens: dict[str, RefreshRecord] = {}
        for user in DEFAULT_USERS:
            self._add_account(user)

    def _add_account(self, spec: BlueskyUserIn) -> Account:
        digest = hashlib.sha256(spec.handle.encode()).digest()[:15]
        did = spec.did or "did:plc:" + base64.b32encode(digest).decode().lower()
        if did in self.accounts or self._find(spec.handle) is not None:
            raise ControlError(f"an account with handle {spec.handle!r} or DID {did!r} exists")
        account = Account(
            did=did,
            handle=spec.handle,
            email=spec.email,
            password=spec.password or secrets.token_urlsafe(12),
            display_name=spec.display_name,
            app_passwords={},
        )
        for app_password in spec.app_passwords:
            self._add_app_password(account, app_password)
        self.accounts[did] = account
        return account

    @staticmethod
    def _add_app_password(account: Account, spec: AppPasswordIn) -> AppPassword:
        if spec.name in account.app_passwords:
            raise ControlError(f"app password {spec.name!r} exists")
        app_password = AppPassword(spec.name, spec.password or _new_app_password(), spec.privileged)
        account.app_passwords[spec.name] = app_password
        return app_password

    def users_json(self) -> list[dict[str, Any]]:
        return [account.json() for account in self.accounts.values()]

    def create_user(self, payload: Any) -> dict[str, Any]:
        return self._add_account(BlueskyUserIn.model_validate(payload)).json()

    def create_app_password(self, actor: str, spec: AppPasswordIn) -> dict[str, Any]:
        account = self._find(actor)
        if account is None:
            raise HTTPException(404, detail=f"no account {actor!r}")
        return dataclasses.asdict(self._add_app_password(account, spec))

    def revoke_app_password(self, actor: str, name: str) -> dict[str, Any]:
        """com.atproto.server.revokeAppPassword: the password goes, and so do its refresh tokens."""
        account = self._find(actor)
        if account is None or name not in account.app_passwords:
            raise HTTPException(404, detail=f"no app password {name!r} for {actor!r}")
        del account.app_passwords[name]
        doomed = [jti for jti, r in self.refresh_tokens.items() if r.did == account.did and r.app_password == name]
        for jti in doomed:
            del self.refresh_tokens[jti]
        return {"revoked": name, "deleted_refresh_tokens": len(doomed)}

    def revoke_signed_in_with(self, refresh_jwt: str) -> bool:
        """The user revokes the app password a session signed in with (its refresh tokens go with
        it), then makes one with the same name and value again, so the sandbox's sign-in hint
        still works for the next connection. False when the token isn't one of this server's."""
        try:
            _, claims = hs256_jwt.decode(refresh_jwt, self._key)
        except hs256_jwt.InvalidJwt:
            return False
        record = self.refresh_tokens.get(str(claims.get("jti")))
        account = self.accounts.get(str(claims.get("sub")))
        if record is None or account is None:
            return False
        if record.app_password is None or record.app_password not in account.app_passwords:
            # Signed in with the account password: what the user can revoke is the session.
            for jti in [jti for jti, r in self.refresh_tokens.items() if r.did == account.did and r.app_password is None]:
                del self.refresh_tokens[jti]
            return True
        kept = account.app_passwords[record.app_password]
        self.revoke_app_password(account.did, kept.name)
        account.app_passwords[kept.name] = kept
        return True

    def _find(self, actor: str) -> Account | None:
        """By DID (exactly: a did:web may hold capitals), or handle or email (case-insensitively)."""
        if actor in self.accounts:
            return self.accounts[actor]
        actor = actor.lower()
        for account in self.accounts.values():
            if actor in (account.handle, (account.email or "").lower()):
                return account
        return None

    # -- tokens -----------------------------------------------------------------------------

    def _service_did(self, request: Request) -> str:
        return "did:web:" + quote(urlsplit(self.core.base_url(request)).netloc, safe="")

    def _session(self, request: Request, account: Account, app_password: str | None, jti: str) -> dict[str, Any]:
        """createSession's output: a fresh access JWT and the refresh JWT with id `jti`."""
        now = int(self.core.now())
        audience = self._service_did(request)
        if app_password is None:
            scope = "com.atproto.access"
        elif account.app_passwords[app_password].privileged:
            scope = "com.atproto.appPassPrivileged"
        else:
            scope = "com.atproto.appPass"
        access = {"scope": scope, "sub": account.did, "aud": audience, "iat": now}
        refresh = {"scope": REFRESH_SCOPE, "sub": account.did, "aud": audience, "jti": jti, "iat": now}
        return {
            "accessJwt": hs256_jwt.encode(
                {"typ": "at+jwt"}, access | {"exp": now + self.settings.access_ttl, "typ": "at+jwt"}, self._key
            ),
            "refreshJwt": hs256_jwt.encode(
                {"typ": "refresh+jwt"},
                refresh | {"exp": now + self.settings.refresh_ttl, "typ": "refresh+jwt"},
                self._key,
            ),
            **self._account_view(request, account),
        }

    def _account_view(self, request: Request, account: Account) -> dict[str, Any]:
        view: dict[str, Any] = {"handle": account.handle, "did": account.did, "didDoc": self._did_doc(request, account)}
        if account.email:
            view |= {"email": account.email, "emailConfirmed": True, "emailAuthFactor": False}
        return view | {"active": True}

    def _did_doc(self, request: Request, account: Account) -> dict[str, Any]:
        # A compressed secp256k1 point with the multicodec prefix; derived, not a real key.
        public_key = b"\xe7\x01\x02" + hashlib.sha256(account.did.encode()).digest()
        return {
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
                "https://w3id.org/security/suites/secp256k1-2019/v1",
            ],
            "id": account.did,
            "alsoKnownAs": [f"at://{account.handle}"],
            "verificationMethod": [
                {
                    "id": f"{account.did}#atproto",
                    "type": "Multikey",
                    "controller": account.did,
                    "publicKeyMultibase": "z" + _base58btc(public_key),
                }
            ],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": self.core.base_url(request),
                }
            ],
        }

    def _verify(self, request: Request, *, refresh: bool) -> dict[str, Any] | JSONResponse:
        """The claims of the bearer JWT, or the XRPC error a PDS answers with."""
        header = self._authorization(request)
        if header is None:
            return _xrpc_error(401, "AuthMissing", "Authentication Required")
        try:
            jwt_header, claims = hs256_jwt.decode(header, self._key)
        except hs256_jwt.InvalidJwt:
            return _xrpc_error(400, "InvalidToken", "Token could not be verified")
        exp = claims.get("exp")
        if not isinstance(exp, int) or self.core.now() >= exp:
            return _xrpc_error(400, "ExpiredToken", "Token has expired")
        if refresh:
            right_kind = jwt_header.get("typ") == "refresh+jwt" and claims.get("scope") == REFRESH_SCOPE
        else:
            right_kind = jwt_header.get("typ") == "at+jwt" and claims.get("scope") in ACCESS_SCOPES
        if not right_kind:
            return _xrpc_error(400, "InvalidToken", "Bad token scope")
        if not str(claims.get("sub", "")).startswith("did:") or (refresh and not claims.get("jti")):
            return _xrpc_error(400, "InvalidToken", "Malformed token")
        return claims

    @staticmethod
    def _authorization(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _failure(self, status: int, retry_after: int | None) -> Response:
        if status == 429:
            headers = {
                "RateLimit-Limit": "30",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(int(self.core.now()) + (retry_after or 0)),
                "RateLimit-Policy": "30;w=300",
            }
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            return _xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
        if status == 504:
            return _xrpc_error(504, "UpstreamTimeout", "Upstream Timeout")
        return _xrpc_error(status, "InternalServerError", "Internal Server Error")

    # -- XRPC methods -----------------------------------------------------------------------

    async def create_session(self, request: Request) -> Response:
        if blocked := await self.core.gate("token", self._failure):
            return blocked
        response = self._create_session(request, await request.body())
        await self.core.hold.wait("token")
        return response

    def _create_session(self, request: Request, raw_body: bytes) -> Response:
        try:
            body = json.loads(raw_body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _xrpc_error(400, "InvalidRequest", "Request encoding (Content-Type) required but not provided")
        for required in ("identifier", "password"):
            if not isinstance(body.get(required), str):
                return _xrpc_error(400, "InvalidRequest", f'Input must have the property "{required}"')
        account = self._find(body["identifier"])
        password = body["password"].encode()
        app_password: str | None = None
        if account is not None and not hmac.compare_digest(account.password.encode(), password):
            matching = (
                p.name for p in account.app_passwords.values() if hmac.compare_digest(p.password.encode(), password)
            )
            app_password = next(matching, None)
            if app_password is None:
                account = None
        if account is None:
            return _xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        jti = secrets.token_urlsafe(32)
        self.refresh_tokens[jti] = RefreshRecord(
            did=account.did, app_password=app_password, expires_at=self.core.now() + self.settings.refresh_ttl
        )
        return JSONResponse(self._session(request, account, app_password, jti))

    async def refresh_session(self, request: Request) -> Response:
        if blocked := await self.core.gate("refresh", self._failure):
            return blocked
        response = self._refresh_session(request)
        await self.core.hold.wait("refresh")
        return response

    def _refresh_session(self, request: Request) -> Response:
        claims = self._verify(request, refresh=True)
        if isinstance(claims, Response):
            return claims
        now = self.core.now()
        record = self.refresh_tokens.get(claims["jti"])
        account = self.accounts.get(claims["sub"])
        if record is None or account is None or now >= record.expires_at:
            return _xrpc_error(400, "ExpiredToken", "Token has been revoked")
        # Rotation: the used token lives on for the grace period only, and every refresh with it
        # yields the same next id, so a client that lost the response can still recover.
        record.expires_at = min(record.expires_at, now + self.settings.refresh_grace)
        record.next_id = record.next_id or secrets.token_urlsafe(32)
        self.refresh_tokens.setdefault(
            record.next_id,
            RefreshRecord(
                did=account.did, app_password=record.app_password, expires_at=now + self.settings.refresh_ttl
            ),
        )
        return JSONResponse(self._session(request, account, record.app_password, record.next_id))

    async def get_session(self, request: Request) -> Response:
        if blocked := await self.core.gate("api", self._failure):
            return blocked
        claims = self._verify(request, refresh=False)
        if isinstance(claims, Response):
            return claims
        account = self.accounts.get(claims["sub"])
        if account is None:
            return _xrpc_error(400, "InvalidRequest", f"Could not find user info for account: {claims['sub']}")
        return JSONResponse(self._account_view(request, account))

    async def delete_session(self, request: Request) -> Response:
        if blocked := await self.core.gate("revoke", self._failure):
            return blocked
        claims = self._verify(request, refresh=True)
        if isinstance(claims, Response):
            return claims
        self.refresh_tokens.pop(claims["jti"], None)
        return Response(status_code=200)

    async def resolve_handle(self, request: Request) -> Response:
        if blocked := await self.core.gate("api", self._failure):
            return blocked
        handle = request.query_params.get("handle")
        if not handle:
            return _xrpc_error(400, "InvalidRequest", 'Params must have the property "handle"')
        account = self._find(handle)
        if account is None or account.handle != handle.lower():
            return _xrpc_error(400, "InvalidRequest", "Unable to resolve handle")
        return JSONResponse({"did": account.did})

    async def get_profile(self, request: Request) -> Response:
        if blocked := await self.core.gate("api", self._failure):
            return blocked
        claims = self._verify(request, refresh=False)
        if isinstance(claims, Response):
            return claims
        actor = request.query_params.get("actor")
        if not actor:
            return _xrpc_error(400, "InvalidRequest", 'Params must have the property "actor"')
        account = self._find(actor)
        if account is None or actor.lower() == (account.email or "").lower():
            return _xrpc_error(400, "InvalidRequest", "Profile not found")
        profile: dict[str, Any] = {"did": account.did, "handle": account.handle}
        if account.display_name:
            profile["displayName"] = account.display_name
        return JSONResponse(
            profile
            | {
                "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False},
                "labels": [],
                "createdAt": "2024-01-15T10:00:00.000Z",
                "indexedAt": "2024-01-15T10:00:00.000Z",
                "followersCount": 0,
                "followsCount": 0,
                "postsCount": 0,
            }
        )

    async def not_implemented(self, request: Request, method: str) -> Response:
        return _xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")

    async def plc_document(self, request: Request, did: str) -> Response:
        if blocked := await self.core.gate("api", self._failure):
            return blocked
        account = self.accounts.get(did) if did.startswith("did:plc:") else None  # did:web is its host's
        if account is None:
            return JSONResponse({"message": f"DID not registered: {did}"}, status_code=404)
        return JSONResponse(self._did_doc(request, account), media_type="application/did+ld+json")


def _add_app_password_controls(router: APIRouter, emulator: BlueskyEmulator) -> None:
    @router.post("/users/{actor}/app-passwords", status_code=201)
    async def create_app_password(request: Request, actor: str) -> dict[str, Any]:
        spec = validate(AppPasswordIn, await json_body(request))
        try:
            return emulator.create_app_password(actor, spec)
        except ControlError as exc:
            raise HTTPException(400, detail=str(exc)) from None

    @router.delete("/users/{actor}/app-passwords/{name}")
    async def revoke_app_password(actor: str, name: str) -> dict[str, Any]:
        return emulator.revoke_app_password(actor, name)


def create_app(*, base_url: str | None = None) -> FastAPI:
    """The Bluesky emulator (entryway/PDS and PLC directory) as an ASGI app.

    base_url: where the emulator is reachable; it is the PDS `serviceEndpoint` in DID documents
    (default: taken from each request).
    """
    emulator = BlueskyEmulator(base_url=base_url)
    app = FastAPI(title="Bluesky emulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.emulator = emulator
    xrpc = {
        "com.atproto.server.createSession": (emulator.create_session, "POST"),
        "com.atproto.server.refreshSession": (emulator.refresh_session, "POST"),
        "com.atproto.server.getSession": (emulator.get_session, "GET"),
        "com.atproto.server.deleteSession": (emulator.delete_session, "POST"),
        "com.atproto.identity.resolveHandle": (emulator.resolve_handle, "GET"),
        "app.bsky.actor.getProfile": (emulator.get_profile, "GET"),
    }
    for nsid, (endpoint, method) in xrpc.items():
        app.add_api_route(f"/xrpc/{nsid}", endpoint, methods=[method])
    app.add_api_route("/xrpc/{method}", emulator.not_implemented, methods=["GET", "POST"])
    app.add_api_route("/plc/{did}", emulator.plc_document, methods=["GET"])
    router = control_router(emulator)
    _add_app_password_controls(router, emulator)
    app.include_router(router)
    return app
