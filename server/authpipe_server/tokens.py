"""Bearer secrets Authpipe hands out (secret keys, connect-session tokens, OAuth states).

They carry 256 random bits, so a single SHA-256 is the right hash for storing them: there is
nothing to brute-force, and a slow password hash would only slow every request down. They are
found by their digest (an indexed equality on the hash), so whatever timing a lookup shows is
about the digest, which says nothing usable about the secret: that is the constant-time
comparison here.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

