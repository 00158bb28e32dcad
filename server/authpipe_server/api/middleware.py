"""Pure ASGI middleware (no per-request task hop): access log, body size limit, and secret-key
auth on /v1/*.

Auth is middleware rather than a route dependency because the contract wants every /v1/* request
without a valid key answered 401 before anything else, unknown paths included.
"""

from __future__ import annotations

import logging
import time
from cachetools import TTLCache
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authpipe_server.api.errors import error_response

from authpipe_server.api.throttle import FailureThrottle, client_address
from authpipe_server.projects import SECRET_KEY_PREFIX, KeyUseRecorder, project_for_key
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


FAILED_KEY_LIMIT = 20
FAILED_KEY_WINDOW = 60.0
"""At most FAILED_KEY_LIMIT failed key attempts per client address in FAILED_KEY_WINDOW seconds;
past that the address is answered 429 without a database query until the window closes."""
VERIFIED_MEMORY = 3600.0
"""How long a key verified by this process stays usable from an address that is being refused.
It is still looked up again once `ttl` has passed, so revoking it still takes effect."""
KEY_MAX_LENGTH = 128


class SecretKeyAuth:
    """Bearer `ap_sk_…` on /v1/*; the project id goes to `scope["state"]["project_id"]`.

    Verified keys are remembered for `ttl` seconds (by hash, in memory) so the credential read
    path pays no extra query; a revoked key therefore stops working within `ttl` seconds.

    Failed attempts (an unknown or revoked key, a malformed Authorization header) are counted
    per client address (api.throttle); past the limit, that address gets 429 `rate_limited`
    without a query, except for keys this process verified recently. A key that just failed is
    remembered for the window, so repeating it costs no query (and, being no new guess, no
    strike). All of it is per process and bounded by `size` entries.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ttl: float = 5.0,
        size: int = 10_000,
        failure_limit: int = FAILED_KEY_LIMIT,
        failure_window: float = FAILED_KEY_WINDOW,
    ) -> None:
        self.app = app
        self._known: TTLCache[str, str] = TTLCache(size, ttl, timer=time.monotonic)
        self._verified: TTLCache[str, bool] = TTLCache(size, VERIFIED_MEMORY, timer=time.monotonic)
        self._refused: TTLCache[str, bool] = TTLCache(size, failure_window, timer=time.monotonic)
        self._throttle = FailureThrottle(limit=failure_limit, window=failure_window, size=size)
        self._checking: SingleFlight[str, str | None] = SingleFlight()
        self._key_use = KeyUseRecorder()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        header = _authorization(scope)
        secret = _bearer(header)
        digest = token_hash(secret) if secret else None
        project_id = self._known.get(digest) if digest else None
        if project_id is None:
            verified = await self._verify(scope, header, secret, digest)
            if not isinstance(verified, str):
                return await verified(scope, receive, send)
            project_id = verified
        scope.setdefault("state", {})["project_id"] = project_id
        await self.app(scope, receive, send)

    async def _verify(self, scope: Scope, header: str | None, secret: str | None, digest: str | None) -> str | Response:
        """The project id of a key not verified in the last `ttl` seconds, or the refusal."""
        client = scope.get("client")
        address = client_address(client[0] if client else None)
        wait = self._throttle.retry_after(address)
        if wait is not None and (digest is None or digest not in self._verified):
            return error_response(
                429,
                "rate_limited",
                f"too many failed secret-key attempts from this address; try again in {wait} seconds",
                {"Retry-After": str(wait)},
            )
        if header is None:
            return _unauthorized("missing secret key: send Authorization: Bearer ap_sk_…")
        if secret is None or digest is None or not _well_formed(secret):
            self._throttle.failed(address)
            return _unauthorized("malformed secret key: send Authorization: Bearer ap_sk_…")
        if digest in self._refused:
            return _unauthorized("unknown or revoked secret key")
        # A database failure here propagates: errors.LastResort answers it 503 `unavailable`,
        # never 401 (Authpipe being unwell is never the caller's fault).
        project_id = await self._check(scope["app"].state.runtime.db, secret, digest)
        if project_id is None:
            self._refused[digest] = True
            self._verified.pop(digest, None)
            self._throttle.failed(address)
            return _unauthorized("unknown or revoked secret key")
        return project_id

    async def _check(self, db: Database, secret: str, digest: str) -> str | None:
        """One query per key however many requests carry it at once (when the cache entry
        expires under load, every in-flight request would otherwise ask the database)."""
        return await self._checking.do(digest, lambda: self._lookup(db, secret, digest))

    async def _lookup(self, db: Database, secret: str, digest: str) -> str | None:
        async with db.sessions() as session:
            project_id = await project_for_key(session, secret)
        if project_id is not None:
            self._known[digest] = project_id
            self._verified[digest] = True
            await self._key_use.touch(db, digest)  # `authpipe keys list`'s "last used"; a write a minute at most
        return project_id


def _authorization(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _well_formed(secret: str) -> bool:
    """Only `ap_sk_…` can be a key: anything else is refused without asking the database."""
    return secret.startswith(SECRET_KEY_PREFIX) and len(secret) <= KEY_MAX_LENGTH


def _unauthorized(message: str) -> Response:
    return error_response(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


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
