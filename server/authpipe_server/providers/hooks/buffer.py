"""Buffer's GraphQL API reports a dead token either as HTTP 401 or, per its guide, as HTTP 200
with `errors[].extensions.code` UNAUTHENTICATED / UNAUTHORIZED (docs/providers/buffer.md)."""

from __future__ import annotations

from typing import Any

import httpx

from authpipe_server.providers.errors import AccessTokenRejected, ProviderFailure, ProviderUnavailable
from authpipe_server.providers.oauth2 import OAuth2Provider

DEAD = {"UNAUTHENTICATED", "UNAUTHORIZED"}


class BufferProvider(OAuth2Provider):
    def raise_for_api_error(self, response: httpx.Response, body: Any) -> None:
        super().raise_for_api_error(response, body)
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors:
            return
        codes = {str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
        if codes & DEAD:
            raise AccessTokenRejected("access_token_rejected", "Buffer refused the access token")
        if "RATE_LIMIT_EXCEEDED" in codes:
            raise ProviderUnavailable("rate_limited", "Buffer is rate limiting requests")
        if body.get("data") is None:
            raise ProviderFailure("provider_error", "Buffer's API answered with errors: " + ", ".join(sorted(codes)))
