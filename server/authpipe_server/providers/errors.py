"""How a provider call can fail. The classes must never be confused: a gone grant
marks a connection revoked; a provider or network having a bad time never does."""

from __future__ import annotations

from authpipe_server.errors import AuthpipeError


class ProviderFailure(AuthpipeError):
    """Base: carries a snake_case `code` and a message safe to store and show (never a token)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class GrantRevoked(ProviderFailure):
    """The provider refused the grant itself (invalid_grant, Graph 190, Bluesky ExpiredToken…)."""


class AccessTokenRejected(ProviderFailure):
    """An API call answered 401 (or its provider's kin): refresh, then decide."""


class CredentialsRejected(ProviderFailure):
    """An app password or imported token the provider refused at connection time."""


class ProviderUnavailable(ProviderFailure):
    """5xx, 429, timeout, DNS, connection refused: transient, retry later."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class ProviderMisconfigured(ProviderFailure):
    """The provider refused *our* app (invalid_client, bad redirect URI): an operator must act."""
