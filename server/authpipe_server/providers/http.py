"""Calling a provider over HTTP, with transport failures turned into `ProviderUnavailable`.

One shared httpx client per process (connection pooling); timeouts are short because a
provider that hangs must not hold a user's request or a worker for long.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from authpipe_server import __version__
from authpipe_server.providers.errors import ProviderUnavailable

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = f"Authpipe/{__version__}"


def new_http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=TIMEOUT,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        follow_redirects=False,
    )


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or a RateLimit reset."""
    value = response.headers.get("retry-after")
    if value:
        if value.strip().isdigit():
            return float(value)
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is not None:
            return max(0.0, parsed.timestamp() - time.time())
    reset = response.headers.get("ratelimit-reset")
    if reset and reset.strip().isdigit():
        seconds = float(reset)
        return max(0.0, seconds - time.time()) if seconds > 1_000_000_000 else seconds  # epoch or delta
    return None


async def send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send, mapping transport failures, 429 and 5xx to ProviderUnavailable; other statuses return."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise ProviderUnavailable("provider_timeout", "the provider did not answer in time") from None
    except httpx.TransportError as exc:
        raise ProviderUnavailable("provider_unreachable", f"cannot reach the provider ({type(exc).__name__})") from None
    if response.status_code == 429:
        raise ProviderUnavailable("rate_limited", "the provider is rate limiting requests", retry_after(response))
    if response.status_code >= 500:
        raise ProviderUnavailable("provider_error", f"the provider answered HTTP {response.status_code}", retry_after(response))
    return response


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def dig(data: Any, path: str) -> Any:
    """`dig({"data": {"account": {"id": 1}}}, "data.account.id") == 1`; None where absent."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def first(data: Any, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = dig(data, path)
        if value not in (None, ""):
            return str(value)
    return None
