"""The one error shape: `{"error": {"code": "snake_case", "message": "human sentence"}}`, and
the last resort for anything unexpected (a JSON 500 with a request id, or 503 when the database
is unreachable; the connect flow's error page on the browser routes)."""

from __future__ import annotations

import logging
import sqlite3
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authpipe_server.api.browser_errors import failure_page
from authpipe_server.errors import AuthpipeError
from authpipe_server.ids import new_id

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "Authpipe-Request-Id"
UNAVAILABLE_RETRY_AFTER = "5"
DATABASE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite")


class ApiError(AuthpipeError):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


DESCRIPTIONS = {
    400: "invalid_request, or provider_rejected_credentials",
    401: "unauthorized: missing, unknown or revoked secret key",
    404: "connection_not_found / provider_not_found",
    409: "provider_not_configured",
    410: "connection_revoked: the provider rejected the grant; tenant_shredded: the tenant's data key was destroyed; credential_unreadable: the stored credential failed to decrypt",
    413: "request_too_large",
    429: "rate_limited: too many failed secret-key attempts from this address, or the provider is limiting this app (see Retry-After)",
    502: "provider_error",
    503: "unavailable: Authpipe's own database is unreachable",
}


EXAMPLES: dict[int, dict[str, str]] = {
    400: {
        "invalid_request": "tenant_id: String should match pattern '^[A-Za-z0-9._:@-]{1,256}$'",
        "provider_rejected_credentials": "the provider refused these credentials: Bluesky did not accept that handle and app password",
    },
    401: {"unauthorized": "unknown or revoked secret key"},
    404: {
        "connection_not_found": "no spotify connection for tenant org_acme, user user_123",
        "provider_not_found": "no provider named 'acme-crm'",
    },
    409: {"provider_not_configured": "spotify has no app configured: PUT /v1/providers/spotify first"},
    410: {"connection_revoked": "the provider rejected this connection's grant (invalid_grant); the user must connect again"},
    413: {"request_too_large": "the request body is over 65536 bytes"},
    429: {"rate_limited": "too many failed secret-key attempts from this address; try again in 42 seconds"},
    502: {"provider_error": "the token expired and the provider failed to refresh it: the provider answered HTTP 503"},
    503: {"unavailable": "the database is unreachable; try again shortly"},
}
"""Per status, an example answer of each code it carries (the API reference shows them)."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error statuses a route can answer. 401 is on every /v1 route,
    and with it 429 (the secret-key check refuses an address after too many failed attempts) and
    503 (the database is unreachable while the key is checked)."""
    declared = tuple(dict.fromkeys((*statuses, 429, 503) if 401 in statuses else statuses))
    return {
        status: {
            "model": ErrorBody,
            "description": DESCRIPTIONS[status],
            "content": {
                "application/json": {
                    "examples": {
                        code: {"summary": code, "value": {"error": {"code": code, "message": message}}}
                        for code, message in EXAMPLES[status].items()
                    }
                }
            },
        }
        for status in declared
    }


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, *, request_id: str | None = None
) -> JSONResponse:
    error = {"code": code, "message": message} | ({"request_id": request_id} if request_id else {})
    return JSONResponse({"error": error}, status_code=status, headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    app.add_exception_handler(Exception, unexpected_error)


def database_unavailable(exc: BaseException) -> bool:
    """Authpipe's own database is unreachable or saturated (not a bug in a query): the pool timed
    out, the connection failed or broke, or connecting raised an OSError (refused, DNS)."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, sqlite3.OperationalError)):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    if isinstance(exc, OSError):
        # A driver's connect() raises OSError as it is; other OSErrors (a file, a socket of ours) are bugs.
        return any(
            str(frame.f_globals.get("__name__", "")).startswith(DATABASE_MODULES)
            for frame, _ in traceback.walk_tb(exc.__traceback__)
        )
    return False


def is_browser_route(path: str) -> bool:
    """The connect flow's pages: they answer HTML (and tell a popup's opener), never JSON."""
    return path == "/connect" or path.startswith("/connect/") or path == "/oauth/callback"


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """503 `unavailable` when the database is unreachable (never a 401 or 410: an outage must not look like a bad key or a gone grant), else a
    500 `internal_error` whose request id is in the answer and in the one log line with the
    traceback. Never the query string in the log: it may carry a connect-session token or a code."""
    if database_unavailable(exc):
        log.warning("%s %s: the database is unavailable (%s)", request.method, request.url.path, type(exc).__name__)
        code, status = "unavailable", 503
        message = "the database is unreachable; try again shortly"
        headers, request_id = {"Retry-After": UNAVAILABLE_RETRY_AFTER}, None
    else:
        request_id = new_id("req")
        log.error("%s %s failed unexpectedly (request id %s)", request.method, request.url.path, request_id, exc_info=exc)
        code, status = "internal_error", 500
        message = f"Authpipe failed unexpectedly; the error was logged with request id {request_id}"
        headers = {REQUEST_ID_HEADER: request_id}
    if is_browser_route(request.url.path):
        return await failure_page(request, code, message, status, headers=headers, look_up_session=status != 503)
    return error_response(status, code, message, headers, request_id=request_id)


class LastResort:
    """Answers whatever escaped every handler with `unexpected_error`, and does not re-raise.

    Starlette's ServerErrorMiddleware (where `exception_handler(Exception)` lands) sends the
    handler's answer and then re-raises, so uvicorn logs the traceback a second time, without the
    request id, and drops the keep-alive connection. Placed outside the other middleware, this
    catches the exception first; the registered handler stays for anything raised outside it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # half an answer is out: only the server can end it (it logs the traceback)
                raise
            response = await unexpected_error(Request(scope, receive), exc)
            await response(scope, receive, send)
