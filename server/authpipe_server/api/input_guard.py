"""Refuse text the database cannot store, before any route sees it: a NUL character (U+0000) or,
in JSON, an unpaired surrogate (`\\ud800`). PostgreSQL's text columns refuse both, and a value
that reached a query would fail it with a 500; SQLite would store a NUL and cut the string there.

Applies to /v1/* (400 `invalid_request`) and the connect flow's pages (their error page). Cheap
on the hot path: a GET costs one bytes search of the raw query string; only bodies of other
methods are read here (at most the body limit) and handed on unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authpipe_server.api.browser_errors import BODY_SCOPE_KEY, failure_page
from authpipe_server.api.errors import error_response, is_browser_route

BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        browser = is_browser_route(path)
        if not (browser or path.startswith("/v1/")):
            return await self.app(scope, receive, send)
        query: bytes = scope["query_string"]
        if b"%00" in query or b"\x00" in query or "\x00" in path:
            return await _refuse(scope, receive, send, "the URL contains a NUL character (%00)")
        if scope["method"] in BODYLESS:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body: nobody to answer
        if browser:
            scope[BODY_SCOPE_KEY] = body  # for the error page, should the route fail after reading it
            problem = "the form contains a NUL character" if b"%00" in body or b"\x00" in body else None
        else:
            problem = _json_problem(body)
        if problem:
            return await _refuse(scope, receive, send, problem)
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (an outer middleware caps its size while it is read); None on disconnect."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _json_problem(body: bytes) -> str | None:
    """What is wrong with a JSON body's strings (values and keys), or None. Only a body with a
    `\\u` escape can hold either character (raw control characters are invalid JSON), so other
    bodies are not parsed here; an unparseable one is left to the route's own 400."""
    if b"\\u" not in body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    where = _unstorable_at(document)
    if where is None:
        return None
    return f"{where or 'the body'}: text may not contain a NUL character (U+0000) or an unpaired surrogate"


def _unstorable_at(document: Any) -> str | None:
    """The dotted path of the first string (or key, named as its object) that cannot be stored."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if not _storable(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _storable(key):
                    return where
                stack.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


async def _refuse(scope: Scope, receive: Receive, send: Send, problem: str) -> None:
    request = Request(scope, receive)
    if is_browser_route(scope["path"]):
        response = await failure_page(request, "invalid_request", problem, 400)
    else:
        response = error_response(400, "invalid_request", problem)
    await response(scope, receive, send)
