from __future__ import annotations

from authpipe_server.errors import AuthpipeError


class VaultError(AuthpipeError):
    """A secret could not be sealed or opened. Messages never include key material or plaintext."""


class DecryptionFailed(VaultError):
    """The ciphertext was altered, moved to another place, or sealed under another key."""


class TenantShredded(VaultError):
    """The tenant's data key was destroyed: its secrets are gone for good."""


class MasterKeyMismatch(VaultError):
    """The master key given is not the one this database is wrapped under."""
