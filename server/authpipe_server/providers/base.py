"""The one interface services use to talk to a provider, whatever its protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

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


def expiry(expires_in: object) -> datetime | None:
    try:
        seconds = int(expires_in)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return utcnow() + timedelta(seconds=seconds) if seconds > 0 else None


@dataclass(frozen=True)
class AppCredentials:
    client_id: str
    client_secret: str | None

    def __repr__(self) -> str:
        return f"AppCredentials(client_id={self.client_id!r}, client_secret={'set' if self.client_secret else None})"


class Provider(ABC):
    """A provider bound to one project's app and the process's HTTP client."""

    def __init__(self, spec: ProviderSpec, app: AppCredentials | None, http: httpx.AsyncClient) -> None:
        self.spec, self.app, self.http = spec, app, http

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
        """Revoke the grant at the provider where it can be (best effort, never raises for 4xx)."""
