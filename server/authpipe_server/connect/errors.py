"""Connect-flow failures: each becomes an error page (and `ok: false` to the opener) with a code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from authpipe_server.errors import AuthpipeError

if TYPE_CHECKING:
    from authpipe_server.store.models import ConnectSession


class ConnectError(AuthpipeError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.session: ConnectSession | None = None
        """Set once the failing request was tied to a connect session, so the opener can be told."""
