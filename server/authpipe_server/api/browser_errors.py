"""The error page of the connect flow's routes for failures no route handled (a bug, the
database down, input the guard refused): the flow's own result page, so a popup's opener still
hears `ok: false` with a code. That needs the connect session's exact origin (never `*`), found
again from the request: its `session` (query or form) or, at the callback, its `state`."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from authpipe_server.connect.errors import ConnectError
from authpipe_server.connect.routes import result_page
from authpipe_server.connect.sessions import find_session
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ConnectSession, OAuthState
from authpipe_server.tokens import token_hash

log = logging.getLogger(__name__)
LOOKUP_DEADLINE = 2.0
"""The page must come back even when the lookup cannot (it is only there to tell the opener)."""
BODY_SCOPE_KEY = "authpipe.body"
"""Where the input guard leaves a connect form's body it read (a route has consumed it since)."""


async def failure_page(
    request: Request,
    code: str,
    message: str,
    status: int,
    *,
    headers: dict[str, str] | None = None,
    look_up_session: bool = True,
) -> HTMLResponse:
    """The result page with `ok: false`; `look_up_session=False` when the database is the problem."""
    connect_session = await _connect_session(request) if look_up_session else None
    page = result_page(request, connect_session, ok=False, code=code, message=message, status=status)
    page.headers.update(headers or {})
    return page


async def _connect_session(request: Request) -> ConnectSession | None:
    runtime: Runtime = request.app.state.runtime
    try:
        async with asyncio.timeout(LOOKUP_DEADLINE):
            if request.url.path == "/oauth/callback":
                return await _by_state(runtime, request.query_params.get("state"))
            token = request.query_params.get("session") or _form_field(request, "session")
            async with runtime.db.sessions() as session:
                return await find_session(session, token)
    except ConnectError:
        return None
    except Exception as exc:  # the page is already an error page: never fail it
        log.warning("could not find the connect session of a failed %s: %s", request.url.path, type(exc).__name__)
        return None


async def _by_state(runtime: Runtime, state: str | None) -> ConnectSession | None:
    if not state:
        return None
    async with runtime.db.sessions() as session:
        session_id = await session.scalar(select(OAuthState.session_id).where(OAuthState.state_hash == token_hash(state)))
        return await session.get(ConnectSession, session_id) if session_id else None


def _form_field(request: Request, name: str) -> str | None:
    body = request.scope.get(BODY_SCOPE_KEY)
    if not isinstance(body, bytes):
        return None
    values = parse_qs(body.decode("latin-1"), max_num_fields=20).get(name)
    return values[0] if values else None
