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
from authpipe_server.providers.http import first, json_body, send
from authpipe_server.providers.spec import Request

MISCONFIGURED = {"invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope"}


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

    async def token_request(self, params: dict[str, str]) -> dict[str, Any]:
        """POST (or GET, Facebook) to the token endpoint with the entry's client authentication."""
        assert self.spec.token_url and self.app
        headers: dict[str, str] = {}
        auth = self.spec.token_auth if self.app.client_secret else "none"
        if auth == "client_secret_basic":
            # RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
            pair = f"{quote(self.app.client_id, safe='')}:{quote(self.app.client_secret or '', safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif auth in ("client_secret_post", "client_secret_query"):
            params = {**params, "client_id": self.app.client_id, "client_secret": self.app.client_secret or ""}
        else:
            params = {**params, "client_id": self.app.client_id}
        if self.spec.token_method == "GET":
            response = await send(self.http, "GET", self.spec.token_url, params=params, headers=headers)
        else:
            response = await send(self.http, "POST", self.spec.token_url, data=params, headers=headers)
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
        scopes = [s for s in re.split(r"[ ,]+", scope) if s] if isinstance(scope, str) else None
        tokens = TokenSet(
            access_token=str(body["access_token"]),
            # RFC 6749 §6: the server MAY issue a new refresh token; when it does not, keep the old one.
            refresh_token=body.get("refresh_token") or (previous.refresh_token if previous else None),
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
        response = await send(self.http, request.method, overrides.get("url") or self.url(request), **kwargs)
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
        assert self.app
        token, hint = (tokens.refresh_token, "refresh_token") if tokens.refresh_token else (tokens.access_token, "access_token")
        data = {"token": token, "token_type_hint": hint, "client_id": self.app.client_id}
        if self.app.client_secret:
            data["client_secret"] = self.app.client_secret
        for attempt in range(3):
            try:
                await send(self.http, "POST", self.url(revocation), data=data)
                return  # RFC 7009 §2.2: 200 even for an already-invalid token; other 4xx: nothing to retry
            except ProviderUnavailable as exc:
                # RFC 7009 §2.2.1: on 503 the client may retry after the Retry-After delay.
                if attempt == 2:
                    raise
                await asyncio.sleep(min(exc.retry_after or 1.0, 5.0))
