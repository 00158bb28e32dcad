"""Bluesky with app passwords (docs/providers/bluesky.md): identifier → DID → DID document → PDS →
createSession, and refreshSession with rotation. The PDS origin and the DID are kept (sealed)
beside the tokens.

Identity is established here, not taken from the PDS: the DID comes from the handle (resolveHandle
at the entryway) or is the one typed; the PDS from the DID document Authpipe fetched itself; every
session answer must be for that DID; the account's name is its handle only once verified both ways
(the handle resolves to the DID, and the DID document's handle is that handle), else
`handle.invalid`. The account id is always the DID.

Checks go through refreshSession, not getSession: a revoked app password leaves access JWTs
working until they expire (≤ 2 h), but its refresh tokens die at once.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any

from authpipe_server.connections.secrets import TokenSet
from authpipe_server.egress import EgressRefused
from authpipe_server.providers.atproto_identity import (
    HANDLE,
    INVALID_HANDLE,
    DidDocument,
    IdentityError,
    did_document_url,
    is_did,
    parse_document,
    pds_origin,
)
from authpipe_server.providers.base import Account, Described, Grant, Provider, expiry_at
from authpipe_server.providers.errors import (
    AccessTokenRejected,
    CredentialsRejected,
    GrantRevoked,
    ProviderFailure,
)
from authpipe_server.providers.http import is_header_token, json_body, send

APP_PASSWORD = re.compile(r"^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$")
DEAD_ON_REFRESH = {"ExpiredToken", "InvalidToken", "AccountTakedown", "InvalidDID", "AuthMissing"}


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT, read without verifying it: the PDS verifies; we only schedule.
    An absurd `exp` (year 9999, Infinity) counts as none (providers.base.expiry_at)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return None
    return expiry_at(claims.get("exp")) if isinstance(claims, dict) else None


def normalise_identifier(identifier: str) -> str:
    value = identifier.strip()
    if value.startswith("did:"):
        if is_did(value):
            return value
    else:
        value = value.removeprefix("@").lower()
        if HANDLE.match(value):
            return value
    raise CredentialsRejected("invalid_identifier", "enter a handle like alice.bsky.social or a DID like did:plc:…")


class BlueskyProvider(Provider):
    @property
    def entryway(self) -> str:
        return (self.spec.api_base_url or "https://bsky.social").rstrip("/")

    async def xrpc(self, base: str, method: str, nsid: str, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await send(self.egress, method, f"{base}/xrpc/{nsid}", headers=headers, **kwargs)
        return response.status_code, json_body(response)

    # -- identity ----------------------------------------------------------------------------

    async def resolve_handle(self, handle: str) -> str | None:
        """The DID the entryway resolves `handle` to (it does the DNS/HTTPS lookup), or None."""
        status, body = await self.xrpc(self.entryway, "GET", "com.atproto.identity.resolveHandle", params={"handle": handle})
        did = body.get("did") if status == 200 and isinstance(body, dict) else None
        return did if isinstance(did, str) and is_did(did) else None

    async def did_document(self, did: str, *, screen: bool = False) -> DidDocument:
        """The DID document, checked to be about `did`. IdentityError when there is none. With
        `screen`, a did:web host the egress policy forbids is refused before any request."""
        url = did_document_url(did, self.spec.plc_url or "https://plc.directory")
        if screen and did.startswith("did:web:"):
            await self.reachable(url, f"the DID document of {did} is not at an address this server can call")
        response = await send(self.egress, "GET", url)
        if response.status_code != 200:
            raise IdentityError("its DID document was not found")
        return parse_document(did, json_body(response))

    async def verified_handle(self, document: DidDocument, resolved: tuple[str, str] | None = None) -> str:
        """The document's handle when it resolves back to the document's DID (the atproto rule:
        both directions, or the handle means nothing), else `handle.invalid`. `resolved` is a
        (handle, DID) lookup already made, so a handle typed by the user is not looked up twice."""
        handle = document.handle
        if handle is None:
            return INVALID_HANDLE
        did = resolved[1] if resolved is not None and resolved[0] == handle else await self.resolve_handle(handle)
        return handle if did == document.did else INVALID_HANDLE

    def pds_of(self, endpoint: str) -> str:
        """A PDS endpoint made safe to call: a bare origin under the egress policy (IdentityError
        otherwise). The project's entryway is accepted as it is configured: it is the project's
        own setting, already called for every handle (and the sandbox serves it under a path)."""
        if endpoint.rstrip("/") == self.entryway:
            return self.entryway
        return pds_origin(endpoint, self.egress.policy)

    async def reachable(self, url: str, message: str) -> None:
        """Refuse up front, as a form error, a did:web host or PDS whose addresses the egress
        policy forbids (the call itself would be refused too, but as a failed sign-in). One message
        whatever the reason, so the form cannot be used to learn which internal names exist."""
        try:
            await self.egress.check_resolved(url)
        except EgressRefused:
            raise CredentialsRejected("address_not_allowed", message) from None

    async def resolve_identity(self, identifier: str) -> tuple[str, str, str]:
        """(DID, PDS origin, account name) for a normalised handle or DID. CredentialsRejected
        for anything the person who typed it can fix, before any request to an address they chose
        but may not reach."""
        resolved: tuple[str, str] | None = None
        did = identifier
        if not identifier.startswith("did:"):
            found = await self.resolve_handle(identifier)
            if found is None:
                raise CredentialsRejected("unknown_handle", f"no Bluesky account has the handle {identifier}")
            did, resolved = found, (identifier, found)
        try:
            document = await self.did_document(did, screen=True)
            if document.pds is None:
                raise IdentityError("its DID document names no personal data server")
            pds = self.pds_of(document.pds)
        except IdentityError as exc:
            raise CredentialsRejected("invalid_identity", f"{did} cannot be used: {exc}") from None
        await self.reachable(pds, f"the personal data server of {did} is not at an address this server can call")
        return did, pds, await self.verified_handle(document, resolved)

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, identifier: str, app_password: str) -> tuple[Grant, Described]:
        identifier = normalise_identifier(identifier)
        if not APP_PASSWORD.match(app_password.strip()):
            raise CredentialsRejected(
                "invalid_app_password",
                "an app password looks like abcd-efgh-ijkl-mnop; create one in Bluesky under Settings → App passwords",
            )
        did, pds, name = await self.resolve_identity(identifier)
        status, body = await self.xrpc(
            pds, "POST", "com.atproto.server.createSession", json={"identifier": did, "password": app_password.strip()}
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
        if body.get("did") != did:
            raise CredentialsRejected(
                "account_mismatch", f"the personal data server of {did} signed in another account; nothing was saved"
            )
        return self.session_grant(body, pds, did), Described(Account(did, name))

    def session_grant(self, body: dict[str, Any], pds: str, did: str) -> Grant:
        """The tokens of a session answer already checked to be for `did`.

        The answer's `didDoc` is not used: the PDS is the one from the DID document Authpipe
        resolved itself. A `didDoc` naming another PDS is ignored rather than refused: it is the
        answering server's own claim (following it would let any PDS send later calls, with
        bearer tokens, wherever it likes), while refusing it would only break sign-ins during a
        benign hand-off or migration; the resolved document is the authority either way.
        """
        access, refresh = body.get("accessJwt"), body.get("refreshJwt")
        if not is_header_token(access) or not is_header_token(refresh):
            raise ProviderFailure("provider_error", "the session answer has no usable tokens")
        tokens = TokenSet(access_token=access, refresh_token=refresh, extra={"pds": pds, "did": did})
        return Grant(tokens, jwt_expiry(access), list(self.spec.default_scopes))

    def stored(self, tokens: TokenSet) -> tuple[str, str]:
        """(PDS, DID) of a stored connection, checked again before every call: a connection saved
        before these checks existed may name any endpoint."""
        did = tokens.extra.get("did")
        if not isinstance(did, str) or not is_did(did):
            raise ProviderFailure("identity_unknown", "this connection does not record a valid Bluesky DID; connect the account again")
        endpoint = tokens.extra.get("pds") or self.entryway
        try:
            return self.pds_of(str(endpoint)), did
        except IdentityError as exc:
            raise ProviderFailure("address_not_allowed", f"this connection cannot be used: {exc}; connect the account again") from None

    async def refresh(self, tokens: TokenSet) -> Grant:
        pds, did = self.stored(tokens)
        status, body = await self.xrpc(pds, "POST", "com.atproto.server.refreshSession", token=tokens.refresh_token)
        if status in (400, 401):
            error = body.get("error") if isinstance(body, dict) else None
            message = (body.get("message") if isinstance(body, dict) else None) or "Bluesky refused the session"
            if error in DEAD_ON_REFRESH or status == 401:
                raise GrantRevoked(str(error or "invalid_grant"), str(message))
            raise ProviderFailure("provider_error", f"refreshSession answered {status} {error}")
        if status != 200 or not isinstance(body, dict) or "accessJwt" not in body:
            raise ProviderFailure("provider_error", f"refreshSession answered HTTP {status}")
        if body.get("did") != did:
            raise ProviderFailure("account_mismatch", "refreshSession answered for another account; its tokens were not stored")
        return self.session_grant(body, pds, did)

    async def describe(self, tokens: TokenSet) -> Described:
        """getSession proves the access token works and is this DID's; the name is the handle
        verified again (handles change), never the one the PDS states."""
        pds, did = self.stored(tokens)
        status, body = await self.xrpc(pds, "GET", "com.atproto.server.getSession", token=tokens.access_token)
        if status == 401 or (status == 400 and isinstance(body, dict) and body.get("error") in ("ExpiredToken", "InvalidToken")):
            raise AccessTokenRejected("access_token_rejected", "Bluesky refused the access token")
        if status != 200 or not isinstance(body, dict):
            raise ProviderFailure("provider_error", f"getSession answered HTTP {status}")
        if body.get("did") != did:
            raise ProviderFailure("account_mismatch", "getSession answered for another account")
        try:
            name = await self.verified_handle(await self.did_document(did))
        except IdentityError:
            name = INVALID_HANDLE
        return Described(Account(did, name))

    async def revoke(self, tokens: TokenSet) -> None:
        """deleteSession ends this session (the app password itself is the user's to revoke)."""
        pds, _ = self.stored(tokens)
        await self.xrpc(pds, "POST", "com.atproto.server.deleteSession", token=tokens.refresh_token)
