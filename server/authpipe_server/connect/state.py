"""The OAuth `state`: CSRF protection and the memory of an authorization in flight.

RFC 9700 §4.7.1 / SECURITY.md rule 2: one-time, ≥128 bits (we use 256), bound to the connect
session, short-lived, stored hashed, consumed on first use. It also remembers the issuer the
request went to (RFC 9207) and the PKCE verifier (sealed by the vault).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from authpipe_server.connect.errors import ConnectError
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import OAuthState
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import token_hash
from authpipe_server.vault import Place

STATE_TTL = timedelta(minutes=10)
STATE_MAX_LENGTH = 128


def verifier_place(project_id: str, tenant_id: str, state_id: str) -> Place:
    return Place(project_id, tenant_id, "oauth_states", state_id, "code_verifier")


async def consume_state(runtime: Runtime, state: str | None) -> OAuthState:
    """Mark the state used and return it; a second use, an unknown or an expired state fails.

    The conditional UPDATE is the single-use guarantee: of two concurrent callbacks with the
    same state, exactly one changes the row.
    """
    if not state or len(state) > STATE_MAX_LENGTH:
        raise ConnectError("invalid_state", "this sign-in link is not valid; start again from the app")
    digest, now = token_hash(state), utcnow()
    async with runtime.db.writing() as session:
        claimed = await session.execute(
            update(OAuthState)
            .where(OAuthState.state_hash == digest, OAuthState.consumed_at.is_(None), OAuthState.expires_at > now)
            .values(consumed_at=now)
        )
        row = await session.scalar(select(OAuthState).where(OAuthState.state_hash == digest))
    if row is None:
        raise ConnectError("invalid_state", "this sign-in link is not valid; start again from the app")
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        if row.consumed_at is not None:
            raise ConnectError("state_replayed", "this sign-in was already completed; start again from the app")
        raise ConnectError("state_expired", "this sign-in took too long; start again from the app")
    return row
