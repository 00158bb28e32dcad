"""Bluesky with app passwords (PROVIDERS.md §5): identifier → DID → PDS → createSession, and
refreshSession with rotation. The PDS host is kept (sealed) beside the tokens.

Checks go through refreshSession, not getSession: a revoked app password leaves access JWTs
working until they expire (≤ 2 h), but its refresh tokens die at once.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from authpipe_server.connections.secrets import TokenSet
from authpipe_server.providers.base import Account, Described, Grant, Provider
from authpipe_server.providers.errors import (
    AccessTokenRejected,
    CredentialsRejected,
    GrantRevoked,
    ProviderFailure,
)
from authpipe_server.providers.http import json_body, send

HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9.:%-]+)$")
APP_PASSWORD = re.compile(r"^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$")
DEAD_ON_REFRESH = {"ExpiredToken", "InvalidToken", "AccountTakedown", "InvalidDID", "AuthMissing"}


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT, read without verifying it: the PDS verifies; we only schedule."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), timezone.utc)
    except (IndexError, KeyError, ValueError, TypeError):
        return None


def normalise_identifier(identifier: str) -> str:
    value = identifier.strip().removeprefix("@").lower() if not identifier.strip().startswith("did:") else identifier.strip()
    if DID.match(value) or HANDLE.match(value):
        return value
    raise CredentialsRejected("invalid_identifier", "enter a handle like alice.bsky.social or a DID like did:plc:…")


class BlueskyProvider(Provider):
    @property
    def entryway(self) -> str:
        return (self.spec.api_base_url or "https://bsky.social").rstrip("/")

    async def xrpc(self, base: str, method: str, nsid: str, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await send(self.http, method, f"{base.rstrip('/')}/xrpc/{nsid}", headers=headers, **kwargs)
        return response.status_code, json_body(response)

    async def resolve_pds(self, identifier: str) -> str:
        """Handle → DID (resolveHandle at the entryway) → DID document → #atproto_pds endpoint."""
        did = identifier
        if not identifier.startswith("did:"):
            status, body = await self.xrpc(self.entryway, "GET", "com.atproto.identity.resolveHandle", params={"handle": identifier})
            if status != 200 or not isinstance(body, dict) or not body.get("did"):
                raise CredentialsRejected("unknown_handle", f"no Bluesky account has the handle {identifier}")
            did = str(body["did"])
        if did.startswith("did:plc:"):
            url = f"{(self.spec.plc_url or 'https://plc.directory').rstrip('/')}/{quote(did)}"
        else:
            url = f"https://{did.removeprefix('did:web:').replace(':', '/')}/.well-known/did.json"
        response = await send(self.http, "GET", url)
        document = json_body(response)
        if response.status_code != 200 or not isinstance(document, dict):
            raise CredentialsRejected("unknown_did", f"could not resolve {did}")
        for service in document.get("service") or []:
            if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds") and service.get("serviceEndpoint"):
                return str(service["serviceEndpoint"]).rstrip("/")
        raise CredentialsRejected("no_pds", f"{did} names no personal data server")

    async def create_session(self, identifier: str, app_password: str) -> tuple[Grant, Described]:
        identifier = normalise_identifier(identifier)
        if not APP_PASSWORD.match(app_password.strip()):
            raise CredentialsRejected(
                "invalid_app_password",
                "an app password looks like abcd-efgh-ijkl-mnop; create one in Bluesky under Settings → App passwords",
            )
        pds = await self.resolve_pds(identifier)
        status, body = await self.xrpc(
            pds, "POST", "com.atproto.server.createSession", json={"identifier": identifier, "password": app_password.strip()}
        )
        if status in (400, 401) and isinstance(body, dict):
            error = body.get("error")
            if error == "AuthFactorTokenRequired":
                raise CredentialsRejected("auth_factor_required", "this account needs an email code to sign in; use an app password instead")
            if error == "AccountTakedown":
                raise CredentialsRejected("account_takedown", "this Bluesky account was taken down")
            raise CredentialsRejected("invalid_credentials", "Bluesky did not accept that handle and app password")
        if status != 200 or not isinstance(body, dict):
            raise ProviderFailure("provider_error", f"createSession answered HTTP {status}")
        return self.session_grant(body, pds), self.session_account(body)

    def session_grant(self, body: dict[str, Any], pds: str) -> Grant:
        # A session's didDoc may name another PDS (the entryway hands off): use it from now on.
        pds = self.pds_from_document(body.get("didDoc")) or pds
        tokens = TokenSet(
            access_token=str(body["accessJwt"]),
            refresh_token=str(body["refreshJwt"]),
            extra={"pds": pds, "did": body.get("did")},
        )
        return Grant(tokens, jwt_expiry(tokens.access_token), list(self.spec.default_scopes))

    @staticmethod
    def pds_from_document(document: Any) -> str | None:
        for service in (document or {}).get("service", []) if isinstance(document, dict) else []:
            if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
                return str(service.get("serviceEndpoint") or "").rstrip("/") or None
        return None

    @staticmethod
    def session_account(body: dict[str, Any]) -> Described:
        return Described(Account(str(body.get("did")), str(body.get("handle")) if body.get("handle") else None))

    async def refresh(self, tokens: TokenSet) -> Grant:
        pds = str(tokens.extra.get("pds") or self.entryway)
        status, body = await self.xrpc(pds, "POST", "com.atproto.server.refreshSession", token=tokens.refresh_token)
        if status in (400, 401):
            error = body.get("error") if isinstance(body, dict) else None
            message = (body.get("message") if isinstance(body, dict) else None) or "Bluesky refused the session"
            if error in DEAD_ON_REFRESH or status == 401:
                raise GrantRevoked(str(error or "invalid_grant"), str(message))
            raise ProviderFailure("provider_error", f"refreshSession answered {status} {error}")
        if status != 200 or not isinstance(body, dict) or "accessJwt" not in body:
            raise ProviderFailure("provider_error", f"refreshSession answered HTTP {status}")
        return self.session_grant(body, pds)

    async def describe(self, tokens: TokenSet) -> Described:
        pds = str(tokens.extra.get("pds") or self.entryway)
        status, body = await self.xrpc(pds, "GET", "com.atproto.server.getSession", token=tokens.access_token)
        if status == 401 or (status == 400 and isinstance(body, dict) and body.get("error") in ("ExpiredToken", "InvalidToken")):
            raise AccessTokenRejected("access_token_rejected", "Bluesky refused the access token")
        if status != 200 or not isinstance(body, dict):
            raise ProviderFailure("provider_error", f"getSession answered HTTP {status}")
        return self.session_account(body)

    async def revoke(self, tokens: TokenSet) -> None:
        """deleteSession ends this session (the app password itself is the user's to revoke)."""
        pds = str(tokens.extra.get("pds") or self.entryway)
        await self.xrpc(pds, "POST", "com.atproto.server.deleteSession", token=tokens.refresh_token)
