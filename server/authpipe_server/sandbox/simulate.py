"""The sandbox's Simulate controls: make the provider emulators do what real providers do to a
connection — the user revokes the grant, the token runs out, the provider goes down or rate
limits — so Authpipe's answer (refresh, health check, status change, webhook) can be watched.

Each action changes only the emulator (and, for an expired token, the stored expiry, standing in
for the time that would have passed); what follows is Authpipe's own unmodified behaviour.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, Literal, Mapping

from authpipe_server.connections.secrets import unseal
from authpipe_server.runtime import Runtime
from authpipe_server.sandbox.providers import EMULATOR_OF
from authpipe_server.store.models import Connection
from authpipe_server.store.types import utcnow
from authpipe_server.vault import VaultError

Action = Literal["revoke", "expire", "outage", "rate_limit", "end_faults"]
ACTIONS: tuple[Action, ...] = ("revoke", "expire", "outage", "rate_limit", "end_faults")
FAULT_MINUTES = 5
RATE_LIMIT_RETRY_AFTER = 30
"""Seconds the emulator's 429s ask clients to wait (Authpipe honours it, up to an hour)."""


FAILURES: dict[str, str] = {
    "not_emulated": "This provider is not played by a sandbox emulator.",
    "unknown_grant": (
        "The emulator does not know this connection's grant: the sandbox keeps its emulators in memory, so grants "
        "made before it restarted are gone. Connect again to get one it knows."
    ),
    "no_tokens": "This connection's tokens are gone (revoked, deleted or shredded).",
    "revoked": "This connection is revoked: there is no token to expire.",
    "deleted": "This connection was deleted.",
}


class SimulateError(Exception):
    """An action that cannot be done to this connection; `code` is a key of FAILURES."""

    def __init__(self, code: str) -> None:
        super().__init__(FAILURES[code])
        self.code = code


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderFault:
    """What the page says about an emulator's injected failures."""

    mode: str
    until: datetime | None
    remaining: int


class Simulator:
    def __init__(self, runtime: Runtime, emulators: Mapping[str, Any]) -> None:
        """`emulators`: emulator name (sandbox.providers.EMULATOR_OF's values) → emulator object."""
        self.runtime = runtime
        self.emulators = emulators

    def emulator(self, provider: str) -> Any:
        name = EMULATOR_OF.get(provider)
        if name is None or name not in self.emulators:
            raise SimulateError("not_emulated")
        return self.emulators[name]

    async def act(self, action: Action, row: Connection) -> str:
        """Do `action` to the connection's provider; returns what happened, in a sentence."""
        if action == "revoke":
            return await self.revoke(row)
        if action == "expire":
            return await self.expire(row)
        if action == "outage":
            return self.add_fault(row.provider, "500")
        if action == "rate_limit":
            return self.add_fault(row.provider, "429")
        return self.end_faults(row.provider)

    async def revoke(self, row: Connection) -> str:
        """The user revokes this app's access at the provider (as from the provider's settings)."""
        emulator = self.emulator(row.provider)
        tokens = await self._tokens(row)
        if row.provider == "bluesky":
            if not tokens.refresh_token or not emulator.revoke_signed_in_with(tokens.refresh_token):
                raise SimulateError("unknown_grant")
            return "The app password was revoked at Bluesky."
        grant = emulator.oauth.grant_of(tokens.access_token) or (
            emulator.oauth.grant_of(tokens.refresh_token) if tokens.refresh_token else None
        )
        if grant is None:
            raise SimulateError("unknown_grant")
        emulator.oauth.revoke_grant(grant, emulator.revoke_reasons[0])
        return "The grant was revoked at the provider."

    async def expire(self, row: Connection) -> str:
        """The access token's lifetime runs out now: at the provider, and in Authpipe's record of
        when it expires (standing in for the hour that would have passed)."""
        emulator = self.emulator(row.provider)
        if row.status == "revoked":
            raise SimulateError("revoked")
        if row.provider != "bluesky":  # a Bluesky access JWT carries its own expiry
            tokens = await self._tokens(row)
            grant = emulator.oauth.grant_of(tokens.access_token)
            if grant is None:
                raise SimulateError("unknown_grant")
            emulator.oauth.expire_access(grant, emulator.core.now())
        now = utcnow()
        async with self.runtime.db.writing() as session:
            current = await session.get(Connection, row.id)
            if current is None:
                raise SimulateError("deleted")
            current.expires_at = now
            current.refresh_due_at = now
        return "The access token expired."

    def add_fault(self, provider: str, mode: Literal["500", "429"]) -> str:
        """Every call to the provider fails this way for FAULT_MINUTES minutes."""
        core = self.emulator(provider).core
        core.faults.add(
            mode=mode,
            remaining=1,
            kind=None,
            retry_after=RATE_LIMIT_RETRY_AFTER,
            until=core.now() + FAULT_MINUTES * 60,
        )
        if mode == "500":
            return f"The provider answers 500 to every call for {FAULT_MINUTES} minutes."
        return f"The provider answers 429 (Retry-After: {RATE_LIMIT_RETRY_AFTER}) to every call for {FAULT_MINUTES} minutes."

    def end_faults(self, provider: str) -> str:
        cleared = self.emulator(provider).core.faults.clear()
        return "The provider is answering normally again." if cleared else "The provider was answering normally."

    def faults(self, provider: str) -> list[ProviderFault]:
        try:
            core = self.emulator(provider).core
        except SimulateError:
            return []
        # `until` is on the emulator's clock, which tests may move; the page shows wall-clock time.
        return [
            ProviderFault(
                mode=fault.mode,
                until=datetime.fromtimestamp(fault.until - core.clock.offset, UTC) if fault.until is not None else None,
                remaining=fault.remaining,
            )
            for fault in core.faults.pending(core.now())
        ]

    async def _tokens(self, row: Connection) -> Any:
        try:
            return await unseal(self.runtime.vault, row)
        except (VaultError, ValueError):
            raise SimulateError("no_tokens") from None
