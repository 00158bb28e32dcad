"""HTTP Strict Transport Security, as pure ASGI middleware (no per-request task hop).

Installed only when the public URL is https: browsers then refuse plain http to this host (and
its subdomains) for two years, so a connect page or the dashboard cannot be downgraded on the
way. A server reached over plain http (`authpipe dev`) does not send it: browsers ignore it
there (RFC 6797 §8.1).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


def wants_hsts(public_url: str) -> bool:
    return public_url.lower().startswith("https://")


class StrictTransportSecurity:
    """Adds `Strict-Transport-Security` to every HTTP response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), HSTS]
            await send(message)

        await self.app(scope, receive, send_with_hsts)
