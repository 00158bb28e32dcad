"""The one interface services use to talk to a provider, whatever its protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from authpipe_server.egress import Egress
from authpipe_server.connections.secrets import TokenSet
from authpipe_server.providers.spec import ProviderSpec
from authpipe_server.store.types import utcnow


@dataclass(frozen=True)
class Account:
    id: str | None
    name: str | None


@dataclass(frozen=True)
class Resource:
    id: str
    name: str | None


@dataclass
class Described:
    """Who the grant belongs to, and what it reaches (Facebook Pages), with their tokens."""

    account: Account
    resources: list[Resource] = field(default_factory=list)
    resource_tokens: dict[str, str] = field(default_factory=dict)


@dataclass
class Grant:
    """What a code exchange, a refresh or a session gives: tokens, expiry, granted scopes."""

    tokens: TokenSet
    expires_at: datetime | None
    scopes: list[str] | None = None


MAX_LIFETIME = timedelta(days=3650)
"""A token said to live longer than this is treated as not expiring (a provider's `Infinity` or
`1e300` must not overflow a date or push a refresh out of reach of any calendar)."""


def expiry(expires_in: object) -> datetime | None:
    """`expires_in` (seconds, as a number or a numeric string) → an expiry time, or None when
    absent, unparseable, not positive or absurdly far."""
    if isinstance(expires_in, bool):
        return None
    try:
        seconds = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_LIFETIME.total_seconds():
        return None
    return utcnow() + timedelta(seconds=int(seconds))


def expiry_at(timestamp: object) -> datetime | None:
    """A Unix time (a JWT's `exp`) → an expiry time, or None when unusable or absurdly far."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        return None
    try:
        return expiry(timestamp - utcnow().timestamp()) if math.isfinite(timestamp) else None
    except OverflowError:  # an integer too large for a float
        return None


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str | None

    def __repr__(self) -> str:
        return f"AppCredentials(client_id={self.client_id!r}, client_secret={'set' if self.client_secret else None})"


class Provider(ABC):
    """A provider bound to one project's app and the process's HTTP client."""

    def __init__(self, spec: ProviderSpec, app: AppCredentials | None, egress: Egress) -> None:
        self.spec, self.app, self.egress = spec, app, egress

    @abstractmethod
    async def describe(self, tokens: TokenSet) -> Described:
        """The account (and resources) the tokens belong to. Raises AccessTokenRejected on 401."""

    @abstractmethod
    async def refresh(self, tokens: TokenSet) -> Grant:
        """New tokens. Raises GrantRevoked when the grant is gone, ProviderUnavailable when unsure."""

    async def check(self, tokens: TokenSet) -> Described:
        """The cheapest "who am I" call; by default the account lookup itself."""
        return await self.describe(tokens)

    async def revoke(self, tokens: TokenSet) -> None:
        """Revoke the grant at the provider where it can be. Raises ProviderFailure when the
        provider refused (its grant may still be active), ProviderUnavailable when unsure."""
