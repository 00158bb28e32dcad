"""Pure ASGI middleware (no per-request task hop): access log, body size limit, and secret-key
auth on /v1/*.

Auth is middleware rather than a route dependency because the contract wants every /v1/* request
without a valid key answered 401 before anything else, unknown paths included.
"""

from __future__ import annotations

import logging
import time
from cachetools import TTLCache
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authpipe_server.api.errors import error_response
from sqlalchemy.exc import SQLAlchemyError

from authpipe_server.projects import project_for_key
from authpipe_server.singleflight import SingleFlight
from authpipe_server.store.db import Database
from authpipe_server.tokens import token_hash


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                return await _too_large(self.limit, scope, receive, send)
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(self.limit, scope, receive, send)


class _TooLarge(Exception):
    pass


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(413, "request_too_large", f"the request body is over {limit} bytes")
    await response(scope, receive, send)


class SecretKeyAuth:
    """Bearer `ap_sk_…` on /v1/*; the project id goes to `scope["state"]["project_id"]`.

    Verified keys are remembered for `ttl` seconds (by hash, in memory) so the credential read
    path pays no extra query; a revoked key therefore stops working within `ttl` seconds.
    """

    def __init__(self, app: ASGIApp, *, ttl: float = 5.0, size: int = 10_000) -> None:
        self.app = app
        self._known: TTLCache[str, str] = TTLCache(size, ttl, timer=time.monotonic)
        self._checking: SingleFlight[str, str | None] = SingleFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        secret = _bearer(scope)
        digest = token_hash(secret) if secret else None
        project_id = self._known.get(digest) if digest else None
        if secret and digest and project_id is None:
            try:
                project_id = await self._check(scope["app"].state.runtime.db, secret, digest)
            except (SQLAlchemyError, OSError):
                # Authpipe being unwell is never the caller's fault: 503, not 401 (SECURITY.md).
                response = error_response(503, "unavailable", "the database is unreachable; try again shortly")
                return await response(scope, receive, send)
        if project_id is None:
            message = (
                "missing secret key: send Authorization: Bearer ap_sk_…"
                if secret is None
                else "unknown or revoked secret key"
            )
            response = error_response(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})
            return await response(scope, receive, send)
        scope.setdefault("state", {})["project_id"] = project_id
        await self.app(scope, receive, send)


    async def _check(self, db: Database, secret: str, digest: str) -> str | None:
        """One query per key however many requests carry it at once (when the cache entry
        expires under load, every in-flight request would otherwise ask the database)."""
        return await self._checking.do(digest, lambda: self._lookup(db, secret, digest))

    async def _lookup(self, db: Database, secret: str, digest: str) -> str | None:
        async with db.sessions() as session:
            project_id = await project_for_key(session, secret)
        if project_id is not None:
            self._known[digest] = project_id
        return project_id


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None



access_logger = logging.getLogger("authpipe.access")


class AccessLog:
    """One line per request: method, path, status, milliseconds. Never the query string, which
    may carry a connect-session token or an OAuth code (uvicorn's own access log is turned off)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_logger.isEnabledFor(logging.INFO):
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            access_logger.info(
                "%s %s %d %.1fms", scope["method"], scope["path"], status, (time.perf_counter() - started) * 1000
            )
