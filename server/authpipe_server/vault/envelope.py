"""The ciphertext format and the data key that seals it.

    byte 0      format version (1)
    bytes 1-4   data key version (big-endian u32): which of the tenant's data keys sealed it
    bytes 5-16  96-bit random nonce
    bytes 17-   AES-256-GCM ciphertext and 16-byte tag

The associated data is the 5-byte header followed by the value's place (project, tenant, table,
row, field), so a ciphertext moved to another row, field or tenant, or with an edited header,
fails to open.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authpipe_server.vault.errors import DecryptionFailed
from authpipe_server.vault.keys import NONCE_BYTES

FORMAT_VERSION = 1
_HEADER = struct.Struct(">BI")
HEADER_BYTES = _HEADER.size


def read_key_version(blob: bytes) -> int:
    if len(blob) < HEADER_BYTES + NONCE_BYTES + 16:
        raise DecryptionFailed("ciphertext is truncated")
    fmt, version = _HEADER.unpack_from(blob)
    if fmt != FORMAT_VERSION:
        raise DecryptionFailed(f"unknown ciphertext format {fmt}")
    return version


class DataKey:
    """One unwrapped data key; kept only in memory."""

    __slots__ = ("_aead", "_header", "version")

    def __init__(self, raw: bytes, version: int) -> None:
        self._aead = AESGCM(raw)
        self.version = version
        self._header = _HEADER.pack(FORMAT_VERSION, version)

    def __repr__(self) -> str:
        return f"DataKey(version={self.version})"

    def seal(self, plaintext: bytes, place: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self._header + nonce + self._aead.encrypt(nonce, plaintext, self._header + place)

    def open(self, blob: bytes, place: bytes) -> bytes:
        header = blob[:HEADER_BYTES]
        nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[HEADER_BYTES + NONCE_BYTES :], header + place)
        except InvalidTag:
            raise DecryptionFailed("a secret failed to decrypt: it was altered or moved from its place") from None
