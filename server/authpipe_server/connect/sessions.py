"""Connect sessions: a 30-minute bearer token (`ap_cs_…`) a backend hands to a browser. It can
start connections for one tenant and user only; it is stored as a hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.connect.errors import ConnectError
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ConnectSession
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import new_token, token_hash

SESSION_PREFIX = "ap_cs_"
SESSION_TTL = timedelta(minutes=30)
TOKEN_MAX_LENGTH = 128


@dataclass(frozen=True)
class NewSession:
    token: str
    connect_url: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"NewSession(expires_at={self.expires_at!r})"


async def create_session(
    runtime: Runtime,
    project_id: str,
    *,
    tenant_id: str,
    user_id: str,
    allowed_providers: list[str] | None,
    scopes: dict[str, list[str]] | None,
    origin: str | None,
    return_url: str | None,
    account_change: str = "allow",
) -> NewSession:
    token = new_token(SESSION_PREFIX)
    expires_at = utcnow() + SESSION_TTL
    async with runtime.db.writing() as session:
        session.add(
            ConnectSession(
                project_id=project_id,
                token_hash=token_hash(token),
                tenant_id=tenant_id,
                user_id=user_id,
                allowed_providers=allowed_providers,
                scopes=scopes,
                origin=origin,
                return_url=return_url,
                account_change=account_change,
                expires_at=expires_at,
            )
        )
    return NewSession(token, f"{runtime.settings.public_url}/connect?session={token}", expires_at)


async def find_session(session: AsyncSession, token: str | None) -> ConnectSession:
    """The live session for `token`, or a ConnectError saying why not."""
    if not token:
        raise ConnectError("missing_session", "this page needs a connect session; start again from the app")
    if len(token) > TOKEN_MAX_LENGTH or not token.startswith(SESSION_PREFIX):
        raise ConnectError("invalid_session", "this connect link is not valid; start again from the app")
    found = await session.scalar(select(ConnectSession).where(ConnectSession.token_hash == token_hash(token)))
    if found is None:
        raise ConnectError("invalid_session", "this connect link is not valid; start again from the app", 404)
    ensure_usable(found)
    return found


def ensure_usable(connect_session: ConnectSession) -> None:
    """Refuse a session that expired or already completed (a session completes once)."""
    if connect_session.completed_at is not None:
        raise session_completed()
    if connect_session.expires_at <= utcnow():
        raise ConnectError("session_expired", "this connect link has expired; start again from the app", 410)


def session_completed() -> ConnectError:
    return ConnectError("session_completed", "this connect link was already used; start again from the app", 410)


def allows(connect_session: ConnectSession, provider: str) -> bool:
    return connect_session.allowed_providers is None or provider in connect_session.allowed_providers
