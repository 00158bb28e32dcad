"""Facebook: no refresh tokens, Graph-shaped errors, and Pages as resources (docs/providers/facebook.md).

- After the code exchange the short-lived user token is swapped for a long-lived one
  (`grant_type=fb_exchange_token`), and renewed the same way while it is still valid.
- The user's Pages and their page tokens (`/me/accounts`) are the connection's resources; page
  tokens from a long-lived user token do not expire.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from authpipe_server.connections.secrets import TokenSet
from authpipe_server.providers.base import Described, Grant, Resource
from authpipe_server.providers.errors import AccessTokenRejected, GrantRevoked, ProviderFailure, ProviderUnavailable
from authpipe_server.providers.http import clean_text
from authpipe_server.providers.oauth2 import OAuth2Provider
from authpipe_server.providers.spec import Request

# Graph error codes (FB-ERR): 190 and 102 mean the token is dead; 458-467 are its subcodes.
DEAD_TOKEN_CODES = {102, 190}
THROTTLING_CODES = {4, 17, 32, 613}
MAX_PAGES = 10  # /me/accounts pages of 25 Pages each; beyond 250 Pages we stop listing


def graph_error(body: Any) -> dict[str, Any] | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def classify_graph_error(error: dict[str, Any], status: int) -> ProviderFailure:
    code = error.get("code")
    message = str(error.get("message") or "Graph API error")[:300]
    if code in DEAD_TOKEN_CODES:
        return AccessTokenRejected("access_token_rejected", message)
    if code in THROTTLING_CODES or (isinstance(code, int) and code >= 80001):
        return ProviderUnavailable("rate_limited", message)
    if isinstance(code, int) and (code == 10 or 200 <= code <= 299):
        return ProviderFailure("permission_denied", message)
    return ProviderFailure("provider_error", f"Graph API error {code} (HTTP {status})")


class FacebookProvider(OAuth2Provider):
    def raise_for_api_error(self, response: httpx.Response, body: Any) -> None:
        error = graph_error(body)
        if error is not None:
            raise classify_graph_error(error, response.status_code)
        super().raise_for_api_error(response, body)

    def token_error(self, response: httpx.Response, body: Any) -> ProviderFailure:
        error = graph_error(body)
        if error is None:
            return super().token_error(response, body)
        failure = classify_graph_error(error, response.status_code)
        if isinstance(failure, AccessTokenRejected):  # a dead token cannot be exchanged: re-login
            return GrantRevoked("invalid_grant", failure.message)
        return failure

    async def exchange_code(self, code: str, redirect_uri: str, code_verifier: str | None) -> Grant:
        short = await super().exchange_code(code, redirect_uri, code_verifier)
        long_lived = await self.refresh(short.tokens)
        long_lived.scopes = short.scopes
        return long_lived

    async def refresh(self, tokens: TokenSet) -> Grant:
        """Facebook's renewal: exchange a still-valid user token for a fresh long-lived one."""
        body = await self.token_request({"grant_type": "fb_exchange_token", "fb_exchange_token": tokens.access_token})
        return self.parse_grant(body, previous=tokens)

    async def pages(self, access_token: str, fields: str) -> list[dict[str, Any]]:
        request = Request("GET", "/me/accounts", params={"fields": fields, "limit": "25"})
        pages: list[dict[str, Any]] = []
        url: str | None = None
        for _ in range(MAX_PAGES):
            body = await self.api(request, access_token, url=url) if url else await self.api(request, access_token)
            pages.extend(p for p in (body or {}).get("data", []) if isinstance(p, dict) and p.get("id"))
            url = self.next_page(((body or {}).get("paging") or {}).get("next"))
            if not url:
                break
        return pages

    def next_page(self, link: Any) -> str | None:
        """Graph's `paging.next`, if it stays on the API's own origin; without the
        `access_token` Graph puts in it (ours travels in the Authorization header, never in a
        URL). A link elsewhere ends the listing: our bearer token must not follow it."""
        if not isinstance(link, str) or not self.spec.api_base_url:
            return None
        parts, base = urlsplit(link), urlsplit(self.spec.api_base_url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            return None
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
        return urlunsplit(parts._replace(query=urlencode(query), fragment=""))

    async def describe(self, tokens: TokenSet) -> Described:
        described = await super().describe(tokens)
        for page in await self.pages(tokens.access_token, "id,name,access_token"):
            resource_id = f"page:{page['id']}"
            described.resources.append(Resource(resource_id, clean_text(page.get("name"))))
            if page.get("access_token"):
                described.resource_tokens[resource_id] = str(page["access_token"])
        return described

    async def check(self, tokens: TokenSet) -> Described:
        return await self.describe(tokens)
