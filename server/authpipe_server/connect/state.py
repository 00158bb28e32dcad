"""The OAuth `state`: CSRF protection and the memory of an authorization in flight.

RFC 9700 §4.7.1: one-time, ≥128 bits (we use 256), bound to the connect
session and to the browser that started the flow (connect.browser), short-lived, stored hashed,
consumed on first use. It also remembers the issuer the request went to (RFC 9207) and the PKCE
verifier (sealed by the vault).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.connect.browser import same_browser
from authpipe_server.connect.errors import ConnectError
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ConnectSession, OAuthState
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import token_hash
from authpipe_server.vault import Place

STATE_TTL = timedelta(minutes=10)
STATE_MAX_LENGTH = 128
STATES_PER_SESSION = 20
"""How many sign-ins one connect session may start: plenty for a person retrying, and a bound
on the rows a leaked link can make."""


def verifier_place(project_id: str, tenant_id: str, state_id: str) -> Place:
    return Place(project_id, tenant_id, "oauth_states", state_id, "code_verifier")


async def ensure_state_allowed(session: AsyncSession, connect_session_id: str) -> None:
    """Refuse a new state once the connect session has made STATES_PER_SESSION of them.

    Called in the write transaction that adds the state; the session's row is locked first
    (PostgreSQL; SQLite has one writer anyway), so concurrent starts cannot pass the cap together.
    """
    await session.execute(select(ConnectSession.id).where(ConnectSession.id == connect_session_id).with_for_update())
    made = await session.scalar(select(func.count()).select_from(OAuthState).where(OAuthState.session_id == connect_session_id))
    if (made or 0) >= STATES_PER_SESSION:
        raise ConnectError("too_many_attempts", "this connect link has started too many sign-ins; start again from the app", 429)


async def consume_state(runtime: Runtime, state: str | None, browser: str | None) -> OAuthState:
    """Mark the state used and return it; a second use, an unknown or an expired state fails,
    and so does a state presented by another browser than the one that started the flow
    (`browser`: the hash of the request's browser cookie). That one is refused without being
    spent, so the person who started the flow can still finish it in their own browser.

    The conditional UPDATE is the single-use guarantee: of two concurrent callbacks with the
    same state, exactly one changes the row.
    """
    if not state or len(state) > STATE_MAX_LENGTH:
        raise ConnectError("invalid_state", "this sign-in link is not valid; start again from the app")
    digest, now = token_hash(state), utcnow()
    async with runtime.db.writing() as session:
        row = await session.scalar(select(OAuthState).where(OAuthState.state_hash == digest))
        if row is None:
            raise ConnectError("invalid_state", "this sign-in link is not valid; start again from the app")
        if not same_browser(row.browser_hash, browser):
            raise ConnectError("browser_mismatch", "finish connecting in the browser where you started", 403)
        expired = row.consumed_at is None and row.expires_at <= now
        claimed = await session.execute(
            update(OAuthState)
            .where(OAuthState.id == row.id, OAuthState.consumed_at.is_(None), OAuthState.expires_at > now)
            .values(consumed_at=now)
        )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        if expired:
            raise ConnectError("state_expired", "this sign-in took too long; start again from the app")
        raise ConnectError("state_replayed", "this sign-in was already completed; start again from the app")
    return row
