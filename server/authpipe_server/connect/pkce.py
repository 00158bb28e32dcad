"""RFC 7636, Proof Key for Code Exchange, S256 only."""

from __future__ import annotations

import base64
import hashlib
import secrets


def create_code_verifier() -> str:
    # RFC 7636 §4.1: "It is RECOMMENDED that the output of a suitable random number generator be
    # used to create a 32-octet sequence. The octet sequence is then base64url-encoded to produce
    # a 43-octet URL safe string to use as the code verifier."
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def create_s256_code_challenge(verifier: str) -> str:
    # RFC 7636 §4.2: code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
