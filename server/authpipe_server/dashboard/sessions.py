"""Signed-in browsers. A session is a random 256-bit token in an HttpOnly, SameSite=Lax cookie
(`__Host-` and Secure under an https public URL, as connect.browser does for its cookie); the
database keeps only its SHA-256 hash, so a copy of the database signs nobody in.

A session ends `IDLE_TIMEOUT` after it was last used, `ABSOLUTE_TIMEOUT` after it began, or when
it is revoked (sign-out; `authpipe admins delete` / `reset-password` revoke all of an
operator's). Finding one is one query by the hash's unique index; its `last_seen_at` is written
at most once per `SEEN_INTERVAL`, so browsing costs no write per page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from starlette.requests import Request
from starlette.responses import Response

from authpipe_server.connect.browser import secure
from authpipe_server.store.db import Database
from authpipe_server.store.models import Operator as OperatorRow
from authpipe_server.store.models import OperatorSession
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import new_token, token_hash

IDLE_TIMEOUT = timedelta(hours=12)
ABSOLUTE_TIMEOUT = timedelta(days=7)
SEEN_INTERVAL = timedelta(minutes=1)
COOKIE = "authpipe_dashboard"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""What `new_token()` makes; any other cookie value is no session (and costs no query)."""
USER_AGENT_LENGTH = 512


@dataclass(frozen=True)
class Started:
    """A session just begun: its cookie value (only ever here and in the browser) and its row."""

    token: str
    row: OperatorSession

    def __repr__(self) -> str:
        return f"Started(session={self.row.id!r})"


def cookie_name(public_url: str) -> str:
    return f"__Host-{COOKIE}" if secure(public_url) else COOKIE


def presented(request: Request, public_url: str) -> str | None:
    """The session token this request's cookie carries, if well-formed."""
    value = request.cookies.get(cookie_name(public_url))
    return value if value and TOKEN.match(value) else None


def set_cookie(response: Response, token: str, public_url: str) -> Response:
    """A browser-session cookie (no Max-Age): closing the browser signs out too; the server's
    own expiry holds either way."""
    response.set_cookie(cookie_name(public_url), token, path="/", httponly=True, samesite="lax", secure=secure(public_url))
    return response


def clear_cookie(response: Response, public_url: str) -> Response:
    response.delete_cookie(cookie_name(public_url), path="/", httponly=True, samesite="lax", secure=secure(public_url))
    return response


def client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


def user_agent(request: Request) -> str | None:
    value = request.headers.get("user-agent")
    return value[:USER_AGENT_LENGTH] if value else None


async def start(db: Database, operator_id: str, request: Request) -> Started:
    """Begin a session for an operator who just proved who they are. Their sessions that ended
    (expired or revoked) are deleted on the way."""
    now = utcnow()
    token = new_token()
    row = OperatorSession(
        operator_id=operator_id,
        token_hash=token_hash(token),
        csrf_token=new_token(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE_TIMEOUT,
        address=client_host(request),
        user_agent=user_agent(request),
    )
    async with db.writing() as session:
        await session.execute(
            delete(OperatorSession)
            .where(
                OperatorSession.operator_id == operator_id,
                or_(
                    OperatorSession.expires_at <= now,
                    OperatorSession.last_seen_at <= now - IDLE_TIMEOUT,
                    OperatorSession.revoked_at.is_not(None),
                ),
            )
            .execution_options(synchronize_session=False)
        )
        session.add(row)
    return Started(token, row)


async def find(db: Database, token: str) -> tuple[OperatorSession, OperatorRow] | None:
    """The live session of this cookie token and its operator, or None."""
    now = utcnow()
    async with db.sessions() as session:
        found = (
            await session.execute(
                select(OperatorSession, OperatorRow)
                .join(OperatorRow, OperatorRow.id == OperatorSession.operator_id)
                .where(
                    OperatorSession.token_hash == token_hash(token),
                    OperatorSession.revoked_at.is_(None),
                    OperatorSession.expires_at > now,
                    OperatorSession.last_seen_at > now - IDLE_TIMEOUT,
                )
            )
        ).first()
    if found is None:
        return None
    row, operator = found
    if row.last_seen_at <= now - SEEN_INTERVAL:
        await _seen(db, row.id, now)
    return row, operator


async def _seen(db: Database, session_id: str, now: datetime) -> None:
    async with db.writing() as session:
        await session.execute(
            update(OperatorSession)
            .where(OperatorSession.id == session_id, OperatorSession.last_seen_at <= now - SEEN_INTERVAL)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )


async def revoke(db: Database, session_id: str) -> None:
    """End one session (sign-out)."""
    async with db.writing() as session:
        await session.execute(
            update(OperatorSession)
            .where(OperatorSession.id == session_id, OperatorSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
