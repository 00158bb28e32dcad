"""Master keys (key-encryption keys): wrapping data keys, and the key id that identifies a master
key without revealing it (it doubles as the key check value stored at first start)."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authpipe_server.vault.errors import DecryptionFailed

NONCE_BYTES = 12
KEY_BYTES = 32


def master_key_id(raw: bytes) -> str:
    """A stable public name for a master key: HMAC-SHA256(key, label), 16 hex characters."""
    return hmac.new(raw, b"authpipe/master-key-id/v1", hashlib.sha256).hexdigest()[:16]


class MasterKey:
    __slots__ = ("_aead", "id")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise ValueError("a master key is 32 bytes")
        self._aead = AESGCM(raw)
        self.id = master_key_id(raw)

    @classmethod
    def generate(cls) -> "MasterKey":
        return cls(os.urandom(KEY_BYTES))

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id!r})"

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise DecryptionFailed("a data key failed to unwrap: wrong master key or altered row") from None


def wrap_context(project_id: str, tenant_id: str, version: int) -> bytes:
    """Associated data binding a wrapped data key to its (project, tenant, version)."""
    return encode_parts(("authpipe/dek/v1", project_id, tenant_id, str(version)))


def encode_parts(parts: tuple[str, ...]) -> bytes:
    """Unambiguous encoding of strings: each part length-prefixed (so ("ab","c") != ("a","bc"))."""
    out = bytearray()
    for part in parts:
        data = part.encode()
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)
