"""The one exception tree of the SDK.

Every error is an `AuthpipeError` carrying `status` (the HTTP status of the server's answer, or
None when no answer arrived), `code` (the server's snake_case `error.code`, or one of the SDK's
own: `network_error`, `timeout`, `invalid_response`, `missing_secret_key`, `invalid_base_url`)
and `message`. Messages are built from the server's answer and fixed sentences; the client
redacts its secret key from anything it did not write itself, so no error shows the key.
"""

from __future__ import annotations

__all__ = ["AuthpipeError", "ConnectionNotFound", "ConnectionRevoked", "ServerUnreachable", "error_from_response"]


class AuthpipeError(Exception):
    """Base class of every error the SDK raises."""

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    @property
    def is_transient(self) -> bool:
        """True when the failure says nothing about the connection itself: no answer, 429 or 5xx."""
        return self.status is None or self.status == 429 or self.status >= 500

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class ConnectionNotFound(AuthpipeError):
    """404 `connection_not_found`: no such connection (never connected, or deleted)."""


class ConnectionRevoked(AuthpipeError):
    """410 `connection_revoked`: the provider rejected the grant; the user has to connect again.
    The SDK evicts its cached credential for that key when it sees this error."""


class ServerUnreachable(AuthpipeError):
    """No answer from the Authpipe server: connection refused, DNS failure, timeout (`status` is None)."""


def error_from_response(status: int, code: str, message: str) -> AuthpipeError:
    """The right error class for a server's error answer."""
    if status == 404 and code == "connection_not_found":
        return ConnectionNotFound(message, code=code, status=status)
    if status == 410:
        return ConnectionRevoked(message, code=code, status=status)
    return AuthpipeError(message, code=code, status=status)
