"""Binding a connect flow to the browser that started it (RFC 9700 §4.7.1).

The hosted page and the start of a flow give the browser a random cookie when it has none. The
OAuth state (and the app-password form) remember a hash of it; the callback (and the form POST)
are accepted only from a browser presenting the same cookie. A sign-in answer (`state` + `code`)
carried to another browser, or pushed into one by someone else's page, is refused before the code
is exchanged: the authorization response must return to the user agent that made the request.

The cookie is HttpOnly and SameSite=Lax (sent on the provider's top-level redirect back to the
callback, never on cross-site form posts); with an https public URL it is also Secure and carries
the `__Host-` prefix, so no other host (a sibling subdomain included) can plant one.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from authpipe_server.tokens import new_token, token_hash

COOKIE = "authpipe_browser"
VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""What `new_token()` makes (256 bits, base64url); anything else is treated as no cookie."""


def cookie_name(public_url: str) -> str:
    return f"__Host-{COOKIE}" if secure(public_url) else COOKIE


def secure(public_url: str) -> bool:
    return public_url.lower().startswith("https://")


def cookie_value(request: Request, public_url: str) -> str | None:
    value = request.cookies.get(cookie_name(public_url))
    return value if value and VALUE.match(value) else None


def presented(request: Request, public_url: str) -> str | None:
    """The hash of the browser cookie this request carries, or None without a well-formed one."""
    value = cookie_value(request, public_url)
    return token_hash(value) if value else None


@dataclass(frozen=True)
class Browser:
    """The browser of a request that opens a connect page: its cookie's value, and whether the
    cookie is new (then the response must set it)."""

    value: str
    new: bool

    @property
    def hash(self) -> str:
        return token_hash(self.value)

    def __repr__(self) -> str:
        return f"Browser(new={self.new})"


def identify(request: Request, public_url: str) -> Browser:
    """The request's browser: its own cookie when it has a well-formed one, else a fresh one."""
    value = cookie_value(request, public_url)
    return Browser(value, new=False) if value else Browser(new_token(), new=True)


def remember(response: Response, browser: Browser, public_url: str) -> Response:
    """Set the cookie on `response` when the browser did not have one yet. A session cookie: it
    only has to outlive one flow (a connect session lives 30 minutes)."""
    if browser.new:
        response.set_cookie(
            cookie_name(public_url), browser.value, path="/", httponly=True, samesite="lax", secure=secure(public_url)
        )
    return response


def same_browser(expected: str | None, actual: str | None) -> bool:
    """True when both hashes are present and equal (compared in constant time)."""
    return expected is not None and actual is not None and hmac.compare_digest(expected, actual)
