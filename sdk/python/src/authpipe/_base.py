"""What `Authpipe` and `AsyncAuthpipe` share besides the cache: configuration, request building,
reading answers into results or errors, the retry policy, and keeping the secret key out of sight.
The twins in `_client.py` only add the I/O (blocking or awaited) around these."""

from __future__ import annotations

import math
import os
import random
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from authpipe._cache import CacheKey, CredentialCache
from authpipe._errors import AuthpipeError, ServerUnreachable, error_from_response
from authpipe._version import __version__

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
MAX_RETRY_DELAY = 5.0

FlightKey = tuple[CacheKey, float | str]
"""A single-flight key: (cache key, min_ttl), or (cache key, "force") for forced refreshes."""

Params = dict[str, str]


class BaseClient:
    """Configuration and the I/O-free half of every call."""

    def __init__(
        self,
        secret_key: str | None,
        base_url: str | None,
        *,
        cache_size: int,
        timeout: float | None,
        retries: int,
        retry_delay: float,
        refresh_ahead: float,
        no_expiry_ttl: float,
    ) -> None:
        secret_key = secret_key or os.environ.get("AUTHPIPE_SECRET_KEY")
        if not secret_key:
            raise AuthpipeError(
                "No Authpipe secret key: pass secret_key=... or set the AUTHPIPE_SECRET_KEY environment variable",
                code="missing_secret_key",
            )
        url = base_url or os.environ.get("AUTHPIPE_URL") or DEFAULT_BASE_URL
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthpipeError("The Authpipe base URL must be an absolute http(s) URL", code="invalid_base_url")
        for name, value in (
            ("cache_size", cache_size),
            ("retries", retries),
            ("retry_delay", retry_delay),
            ("refresh_ahead", refresh_ahead),
            ("no_expiry_ttl", no_expiry_ttl),
        ):
            _check_non_negative(name, value)
        if timeout is not None:
            _check_non_negative("timeout", timeout)
        self.base_url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.retry_delay = retry_delay
        self._secret_key = secret_key
        self._headers = {
            "Authorization": f"Bearer {secret_key}",
            "Accept": "application/json",
            "User-Agent": f"authpipe-python/{__version__}",
        }
        self._cache = CredentialCache(cache_size, refresh_ahead, no_expiry_ttl)
        self._index = self._cache.index

    @property
    def cache_size(self) -> int:
        return self._cache.max_size

    @property
    def refresh_ahead(self) -> float:
        return self._cache.refresh_ahead

    def clear_cache(self) -> None:
        """Forget every cached credential."""
        self._cache.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- requests ---------------------------------------------------------------------------------

    def _credential_params(self, key: CacheKey, min_ttl: float, force: bool) -> Params:
        provider, tenant_id, user_id, resource = key
        params = {"provider": provider, "tenant_id": tenant_id, "user_id": user_id, "min_ttl": str(math.ceil(min_ttl))}
        if force:
            params["force_refresh"] = "true"
        if resource is not None:
            params["resource"] = resource
        return params

    # -- answers ----------------------------------------------------------------------------------

    def _answer(self, response: httpx.Response) -> Any:
        """The JSON of a 2xx answer (None for an empty one), else the matching `AuthpipeError`."""
        status = response.status_code
        try:
            body = response.json() if response.content else None
            readable = True
        except ValueError:
            body, readable = None, False
        if 200 <= status < 300:
            if not readable:
                raise AuthpipeError(f"Authpipe answered HTTP {status} with a body that is not JSON", code="invalid_response", status=status)
            return body
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        raise error_from_response(
            status,
            code if isinstance(code, str) and code else _default_code(status),
            self._redact(message if isinstance(message, str) and message else f"Authpipe answered HTTP {status}"),
        )

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnreachable(f"Authpipe at {self.base_url} did not answer within {self.timeout} s", code="timeout")
        detail = self._redact(str(exc)) or type(exc).__name__
        return ServerUnreachable(f"Could not reach Authpipe at {self.base_url}: {detail}", code="network_error")

    def _retry_delay(self, error: AuthpipeError, attempt: int) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up: only errors without an
        answer and 5xx are retried (never a 4xx, 429 included), with exponential backoff and jitter
        (each delay is 50–100 % of `retry_delay * 2**attempt`, capped at 5 s)."""
        if attempt >= self.retries or not (error.status is None or error.status >= 500):
            return None
        ceiling = min(MAX_RETRY_DELAY, self.retry_delay * 2.0**attempt)
        return ceiling / 2 + random.random() * ceiling / 2

    def _redact(self, text: str) -> str:
        return text.replace(self._secret_key, "[redacted]")


def validate_credential_args(key: CacheKey, min_ttl: float) -> None:
    for name, value in zip(("provider", "tenant_id", "user_id"), key):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    if key[3] is not None and (not isinstance(key[3], str) or not key[3]):
        raise ValueError("resource must be None or a non-empty string")
    _check_non_negative("min_ttl", min_ttl)


def connection_path(connection_id: str, action: str = "") -> str:
    if not isinstance(connection_id, str) or not connection_id:
        raise ValueError("connection_id must be a non-empty string")
    return f"/v1/connections/{quote(connection_id, safe='')}{action}"


def provider_path(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    return f"/v1/providers/{quote(name, safe='')}"


def json_body(fields: dict[str, Any]) -> dict[str, Any]:
    """A request body: fields left at None are left out, datetimes become ISO-8601 UTC."""
    return {name: _json_value(value) for name, value in fields.items() if value is not None}


def query(fields: dict[str, Any]) -> Params:
    return {name: str(value) for name, value in fields.items() if value is not None}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes sent to Authpipe must be timezone-aware")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _check_non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")


def _default_code(status: int) -> str:
    if status >= 500:
        return "server_error"
    return {400: "invalid_request", 401: "unauthorized", 404: "not_found", 410: "connection_revoked", 429: "rate_limited"}.get(
        status, "http_error"
    )
