"""Calling a provider over HTTP through the egress policy, with failures turned into the
provider failure classes (`ProviderUnavailable` for anything transient)."""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import httpx

from authpipe_server.egress import Egress, EgressError, EgressRefused, EgressTimeout, ResponseTooLarge
from authpipe_server.providers.errors import ProviderFailure, ProviderUnavailable

MAX_RETRY_AFTER = 3600.0
"""A provider's Retry-After is obeyed up to an hour: past that it is a broken or hostile value."""


def clamp_delay(seconds: float | None) -> float | None:
    """A delay from outside, made safe: finite, not negative, at most MAX_RETRY_AFTER."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or a RateLimit reset;
    None for anything unparseable; never more than an hour."""
    value = (response.headers.get("retry-after") or "").strip()
    if value:
        if value.isascii() and value.isdigit():  # str.isdigit() also takes "²", which float() refuses
            return clamp_delay(float(value[:12]))
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return clamp_delay(parsed.timestamp() - time.time())
        return None
    reset = (response.headers.get("ratelimit-reset") or "").strip()
    if reset.isascii() and reset.isdigit():
        seconds = float(reset[:12])
        return clamp_delay(seconds - time.time() if seconds > 1_000_000_000 else seconds)  # epoch or delta
    return None


async def send(egress: Egress, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send through the egress policy, mapping transport failures, 429 and 5xx to
    ProviderUnavailable and a refused address to ProviderFailure; other statuses return."""
    try:
        response = await egress.request(method, url, **kwargs)
    except EgressRefused as exc:
        raise ProviderFailure("egress_refused", f"the provider's address is refused: {exc}") from None
    except EgressTimeout:
        raise ProviderUnavailable("provider_timeout", "the provider did not answer in time") from None
    except ResponseTooLarge as exc:
        raise ProviderUnavailable("provider_error", f"the provider's {exc.message}") from None
    except EgressError:
        raise ProviderUnavailable("provider_unreachable", "cannot reach the provider") from None
    if response.status_code == 429:
        raise ProviderUnavailable("rate_limited", "the provider is rate limiting requests", retry_after(response))
    if response.status_code >= 500:
        raise ProviderUnavailable("provider_error", f"the provider answered HTTP {response.status_code}", retry_after(response))
    return response


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def dig(data: Any, path: str) -> Any:
    """`dig({"data": {"account": {"id": 1}}}, "data.account.id") == 1`; None where absent."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


MAX_TOKEN = 16 * 1024


def is_header_token(value: Any) -> bool:
    """A provider-issued token usable in an Authorization header: visible ASCII (RFC 6750 §2.1's
    b64token is narrower still), non-empty, of a sane length."""
    return isinstance(value, str) and 0 < len(value) <= MAX_TOKEN and all("!" <= ch <= "~" for ch in value)


MAX_TEXT = 512


def clean_text(value: Any) -> str | None:
    """A provider-given name or id made safe to store and show: a string (numbers become one),
    no control characters (NUL breaks PostgreSQL text), at most MAX_TEXT characters."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = "".join(ch for ch in str(value) if ch >= " " and ch != "\x7f")[:MAX_TEXT].strip()
    return text or None


def first(data: Any, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = clean_text(dig(data, path))
        if value is not None:
            return value
    return None
