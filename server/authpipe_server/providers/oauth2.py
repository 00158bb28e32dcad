"""Standard OAuth 2.0 (RFC 6749) authorization-code providers, driven by the catalog entry.
Provider quirks override single methods in `providers/hooks/`."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from authpipe_server.connections.secrets import TokenSet
from authpipe_server.providers.base import Account, Described, Grant, Provider, expiry
from authpipe_server.providers.errors import (
    AccessTokenRejected,
    GrantRevoked,
    ProviderFailure,
    ProviderMisconfigured,
    ProviderUnavailable,
)
from authpipe_server.providers.http import first, is_header_token, json_body, send
from authpipe_server.providers.spec import Request

MISCONFIGURED = {"invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope"}
OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,64}")
"""An `error` value worth repeating in a message (RFC 6749 §5.2 codes are lower-case words)."""


class OAuth2Provider(Provider):
    # -- authorization ------------------------------------------------------------------------

    def authorization_url(self, *, state: str, redirect_uri: str, scopes: list[str], code_challenge: str | None) -> str:
        assert self.spec.authorization_url and self.app
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.spec.scope_separator.join(scopes),
            "state": state,
            **self.spec.authorization_params,
        }
        if code_challenge is not None:
            params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        joiner = "&" if "?" in self.spec.authorization_url else "?"
        return self.spec.authorization_url + joiner + urlencode(params, quote_via=quote)

    async def exchange_code(self, code: str, redirect_uri: str, code_verifier: str | None) -> Grant:
        params = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier is not None:
            params["code_verifier"] = code_verifier
        return self.parse_grant(await self.token_request(params), previous=None)

    # -- tokens -------------------------------------------------------------------------------

    def client_authentication(self, params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """The form and headers of a request that authenticates the client the way the entry's
        `token_auth` says (RFC 6749 §2.3.1): at the token endpoint, and at the revocation
        endpoint, which RFC 7009 §2.1 has authenticate the same way."""
        assert self.app
        auth = self.spec.token_auth if self.app.client_secret else "none"
        if auth == "client_secret_basic":
            # RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
            pair = f"{quote(self.app.client_id, safe='')}:{quote(self.app.client_secret or '', safe='')}"
            return params, {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        if auth == "client_secret_post":
            return {**params, "client_id": self.app.client_id, "client_secret": self.app.client_secret or ""}, {}
        return {**params, "client_id": self.app.client_id}, {}

    async def token_request(self, params: dict[str, str]) -> dict[str, Any]:
        """POST a form to the token endpoint with the entry's client authentication."""
        assert self.spec.token_url
        data, headers = self.client_authentication(params)
        response = await send(self.egress, "POST", self.spec.token_url, data=data, headers=headers)
        body = json_body(response)
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise self.token_error(response, body)
        return body

    def token_error(self, response: httpx.Response, body: Any) -> ProviderFailure:
        error = body.get("error") if isinstance(body, dict) else None
        description = (body.get("error_description") if isinstance(body, dict) else None) or ""
        if error == "invalid_grant":
            return GrantRevoked("invalid_grant", description or "the provider refused the grant")
        if error in MISCONFIGURED:
            return ProviderMisconfigured(error, description or f"the provider refused this app ({error})")
        return ProviderFailure("token_request_failed", f"the token endpoint answered HTTP {response.status_code}" + (f" ({error})" if isinstance(error, str) else ""))

    def parse_grant(self, body: dict[str, Any], previous: TokenSet | None) -> Grant:
        scope = body.get("scope")
        scopes = [s for s in re.split(r"[ ,]+", scope) if s][:200] if isinstance(scope, str) else None
        access_token, refresh_token = body.get("access_token"), body.get("refresh_token")
        # The tokens go into Authorization headers: visible ASCII only (RFC 6750 §2.1's b64token
        # is narrower still), and of a sane length.
        if not is_header_token(access_token) or (refresh_token is not None and not is_header_token(refresh_token)):
            raise ProviderFailure("invalid_token_response", "the token endpoint answered a token that is not usable in an HTTP header")
        tokens = TokenSet(
            access_token=access_token,
            # RFC 6749 §6: the server MAY issue a new refresh token; when it does not, keep the old one.
            refresh_token=refresh_token or (previous.refresh_token if previous else None),
            token_type=str(body.get("token_type") or "bearer").lower(),
            resource_tokens=previous.resource_tokens if previous else {},
        )
        return Grant(tokens, expiry(body.get("expires_in")), scopes)

    async def refresh(self, tokens: TokenSet) -> Grant:
        if not tokens.refresh_token:
            raise GrantRevoked("no_refresh_token", "the provider gave no refresh token; the user must connect again")
        body = await self.token_request({"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
        return self.parse_grant(body, previous=tokens)

    # -- API calls ----------------------------------------------------------------------------

    def url(self, request: Request) -> str:
        return request.url or f"{self.spec.api_base_url or ''}{request.path}"

    async def api(self, request: Request, access_token: str, **overrides: Any) -> Any:
        """Call the provider's API as the user; classify failures; return the JSON body."""
        kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {access_token}"}}
        if request.params or overrides.get("params"):
            kwargs["params"] = {**request.params, **overrides.get("params", {})}
        if request.json is not None:
            kwargs["json"] = request.json
        response = await send(self.egress, request.method, overrides.get("url") or self.url(request), **kwargs)
        body = json_body(response)
        self.raise_for_api_error(response, body)
        return body

    def raise_for_api_error(self, response: httpx.Response, body: Any) -> None:
        if response.status_code == 401:
            raise AccessTokenRejected("access_token_rejected", "the provider refused the access token")
        if response.status_code == 403:
            raise ProviderFailure("provider_forbidden", "the provider refused access to this account (HTTP 403)")
        if response.status_code >= 400:
            raise ProviderFailure("provider_error", f"the provider answered HTTP {response.status_code}")

    async def describe(self, tokens: TokenSet) -> Described:
        if self.spec.account_request is None:
            return Described(Account(None, None))
        body = await self.api(self.spec.account_request, tokens.access_token)
        return Described(Account(first(body, self.spec.account_id_fields), first(body, self.spec.account_name_fields or self.spec.account_id_fields)))

    async def check(self, tokens: TokenSet) -> Described:
        if self.spec.health is None or self.spec.health == self.spec.account_request:
            return await self.describe(tokens)
        await self.api(self.spec.health, tokens.access_token)
        return await self.describe(tokens)

    # -- revocation (RFC 7009) ----------------------------------------------------------------

    async def revoke(self, tokens: TokenSet) -> None:
        revocation = self.spec.revocation
        if revocation is None:
            return
        if not self.spec.revocation_rfc7009:
            await self.api(revocation, tokens.access_token)
            return
        token, hint = (tokens.refresh_token, "refresh_token") if tokens.refresh_token else (tokens.access_token, "access_token")
        data, headers = self.client_authentication({"token": token, "token_type_hint": hint})
        for attempt in range(3):
            try:
                response = await send(self.egress, "POST", self.url(revocation), data=data, headers=headers)
            except ProviderUnavailable as exc:
                # RFC 7009 §2.2.1: on 503 the client may retry after the Retry-After delay.
                if attempt == 2:
                    raise
                await asyncio.sleep(min(exc.retry_after or 1.0, 5.0))
                continue
            # RFC 7009 §2.2: "The authorization server responds with HTTP status code 200 if the
            # token has been revoked successfully or if the client submitted an invalid token."
            # Anything else (401 invalid_client, 400 unsupported_token_type…) revoked nothing.
            if not 200 <= response.status_code < 300:
                raise ProviderFailure("revocation_failed", revocation_failure(response))
            return


def revocation_failure(response: httpx.Response) -> str:
    """What went wrong at the revocation endpoint, from its status and OAuth error code only."""
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    named = f" ({error})" if isinstance(error, str) and OAUTH_ERROR_CODE.fullmatch(error) else ""
    return f"the revocation endpoint answered HTTP {response.status_code}{named}; the grant may still be active at the provider"
