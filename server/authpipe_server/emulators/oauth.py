"""OAuth 2.0 authorization-server state shared by the Spotify, Facebook and Buffer emulators:
registered client apps, authorization codes, grants and the tokens issued under them."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"

# RFC 7636 §4.1: code_verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_verifies(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 §4.6: the server recomputes the challenge from the verifier and compares."""
    if verifier is None or _VERIFIER.fullmatch(verifier) is None:
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)


def is_loopback_uri(uri: str, *, localhost: bool) -> bool:
    """An http(s) URI on a loopback IP literal (any port); `localhost` only when allowed."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return localhost
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def redirect_to(uri: str, params: Mapping[str, str | None], *, fragment: str = "") -> RedirectResponse:
    """302 to `uri` with `params` added to its query (None values left out)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    location = urlunsplit(parts._replace(query=urlencode(query), fragment=fragment))
    return RedirectResponse(location, status_code=302)


def authorization_header(request: Request) -> tuple[str, str] | None:
    """The Authorization header as (lower-cased scheme, credentials), or None when absent."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    return scheme.lower(), credentials.strip()


def basic_credentials(credentials: str) -> tuple[str, str] | None:
    """Decodes HTTP Basic credentials (RFC 7617) into (user, password); None if malformed."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


@dataclasses.dataclass
class ClientApp:
    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]
    name: str
    # The sandbox app: any loopback redirect URI counts as registered.
    any_loopback_redirect: bool = False

    def secret_matches(self, secret: str | None) -> bool:
        if self.client_secret is None or secret is None:
            return False
        return hmac.compare_digest(self.client_secret.encode(), secret.encode())

    def json(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "name": self.name,
            "any_loopback_redirect": self.any_loopback_redirect,
        }


@dataclasses.dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request, as the consent page and its form post see it."""

    app: ClientApp
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None


@dataclasses.dataclass
class AuthorizationCode:
    value: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    declined: tuple[str, ...]
    code_challenge: str | None
    expires_at: float
    grant_id: str | None = None  # set when redeemed; a code is good for one exchange


@dataclasses.dataclass
class Grant:
    """One authorization of one client by one user; every token hangs off a grant."""

    id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    declined: tuple[str, ...]
    authorized_at: float
    public: bool  # redeemed with PKCE and no client secret
    revoked: str | None = None  # why, once revoked


@dataclasses.dataclass
class AccessToken:
    value: str
    grant_id: str
    issued_at: float
    expires_at: float | None  # None: never expires
    subject: str  # the user, or (Facebook) the Page the token acts as
    kind: str = "user"
    long_lived: bool = False


@dataclasses.dataclass
class RefreshToken:
    value: str
    grant_id: str
    issued_at: float
    expires_at: float | None
    used: bool = False


class OAuthState:
    def __init__(
        self,
        *,
        access_prefix: str,
        refresh_prefix: str,
        sandbox_app: bool,
        localhost_is_loopback: bool,
    ) -> None:
        self._access_prefix = access_prefix
        self._refresh_prefix = refresh_prefix
        self._sandbox_app = sandbox_app
        self.localhost_is_loopback = localhost_is_loopback
        self.reset()

    def reset(self) -> None:
        self.apps: dict[str, ClientApp] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.grants: dict[str, Grant] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        if self._sandbox_app:
            self.register(
                ClientApp(
                    client_id=SANDBOX_CLIENT_ID,
                    client_secret=SANDBOX_CLIENT_SECRET,
                    redirect_uris=(),
                    name="Authpipe Sandbox",
                    any_loopback_redirect=True,
                )
            )

    def register(self, app: ClientApp) -> None:
        self.apps[app.client_id] = app

    def allows_redirect(self, app: ClientApp, uri: str) -> bool:
        if uri in app.redirect_uris:
            return True
        return app.any_loopback_redirect and is_loopback_uri(uri, localhost=self.localhost_is_loopback)

    def issue_code(
        self,
        request: AuthorizationRequest,
        *,
        user_id: str,
        scopes: tuple[str, ...],
        declined: tuple[str, ...] = (),
        expires_at: float,
    ) -> AuthorizationCode:
        code = AuthorizationCode(
            value=secrets.token_urlsafe(32),
            client_id=request.app.client_id,
            user_id=user_id,
            redirect_uri=request.redirect_uri,
            scopes=scopes,
            declined=declined,
            code_challenge=request.code_challenge,
            expires_at=expires_at,
        )
        self.codes[code.value] = code
        return code

    def redeem(self, code: AuthorizationCode, *, now: float, public: bool) -> Grant:
        grant = Grant(
            id=secrets.token_hex(8),
            client_id=code.client_id,
            user_id=code.user_id,
            scopes=code.scopes,
            declined=code.declined,
            authorized_at=now,
            public=public,
        )
        self.grants[grant.id] = grant
        code.grant_id = grant.id
        return grant

    def issue_access(
        self,
        grant: Grant,
        *,
        now: float,
        expires_at: float | None,
        subject: str | None = None,
        kind: str = "user",
        long_lived: bool = False,
    ) -> AccessToken:
        token = AccessToken(
            value=self._access_prefix + secrets.token_urlsafe(48),
            grant_id=grant.id,
            issued_at=now,
            expires_at=expires_at,
            subject=subject or grant.user_id,
            kind=kind,
            long_lived=long_lived,
        )
        self.access[token.value] = token
        return token

    def issue_refresh(self, grant: Grant, *, now: float, expires_at: float | None) -> RefreshToken:
        token = RefreshToken(
            value=self._refresh_prefix + secrets.token_urlsafe(48),
            grant_id=grant.id,
            issued_at=now,
            expires_at=expires_at,
        )
        self.refresh[token.value] = token
        return token

    def revoke_grant(self, grant: Grant, reason: str) -> None:
        if grant.revoked is None:
            grant.revoked = reason

    def grant_of(self, token: str) -> Grant | None:
        """The grant an access or refresh token issued here hangs off."""
        issued: AccessToken | RefreshToken | None = self.access.get(token) or self.refresh.get(token)
        return self.grants.get(issued.grant_id) if issued is not None else None

    def expire_access(self, grant: Grant, now: float) -> int:
        """End every access token of the grant now, as if their lifetime had run out."""
        tokens = [t for t in self.access.values() if t.grant_id == grant.id and (t.expires_at is None or t.expires_at > now)]
        for token in tokens:
            token.expires_at = now
        return len(tokens)

    def revoke(self, user_id: str, client_id: str | None, reason: str) -> int:
        """Revokes every live grant of the user (to one client, or to all); returns how many."""
        revoked = 0
        for grant in self.grants.values():
            if grant.user_id == user_id and client_id in (None, grant.client_id) and grant.revoked is None:
                grant.revoked = reason
                revoked += 1
        return revoked
