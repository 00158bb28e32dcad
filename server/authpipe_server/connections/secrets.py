"""The secret half of a connection, sealed as one JSON blob by the vault.

`TokenSet` never shows its tokens in repr(), so it can be logged or put in an exception safely.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from authpipe_server.vault import Place, Vault

FIELD = "secrets"


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    token_type: str = "bearer"
    resource_tokens: dict[str, str] = field(default_factory=dict)
    """Tokens of the connection's resources (Facebook Page tokens by `page:ID`)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Provider-specific secrets (e.g. a Bluesky PDS's refresh JWT details)."""

    def __repr__(self) -> str:
        return f"TokenSet(token_type={self.token_type!r}, refresh_token={'set' if self.refresh_token else None}, resources={sorted(self.resource_tokens)})"

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TokenSet":
        return cls(**json.loads(data))


class Sealed(Protocol):
    """A connection as far as its secrets go: the ORM row, or the read path's lighter record."""

    id: str
    project_id: str
    tenant_id: str
    secrets: bytes | None


def place(connection: Sealed) -> Place:
    return Place(connection.project_id, connection.tenant_id, "connections", connection.id, FIELD)


async def seal(vault: Vault, connection: Sealed, tokens: TokenSet) -> None:
    connection.secrets = await vault.encrypt(place(connection), tokens.to_bytes())


async def unseal(vault: Vault, connection: Sealed) -> TokenSet:
    if connection.secrets is None:
        raise ValueError("this connection's secrets were erased")
    return TokenSet.from_bytes(await vault.decrypt(place(connection), connection.secrets))
