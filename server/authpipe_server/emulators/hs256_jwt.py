"""Compact JWS with HMAC-SHA256 (RFC 7515 / RFC 7519), enough for session tokens that a
server both issues and verifies itself, as an atproto PDS does."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any


class InvalidJwt(Exception):
    """Not a well-formed HS256 JWT, or its signature does not verify."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidJwt("bad base64url") from exc


def encode(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in ({"alg": "HS256"} | header, payload)
    )
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def decode(token: str, key: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of a token whose HS256 signature verifies; raises InvalidJwt otherwise.
    Claims such as `exp` are the caller's to check."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidJwt("a JWT has three parts")
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _unb64url(parts[2])):
        raise InvalidJwt("bad signature")
    try:
        header, payload = (json.loads(_unb64url(part)) for part in parts[:2])
    except ValueError as exc:
        raise InvalidJwt("bad JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict) or header.get("alg") != "HS256":
        raise InvalidJwt("not an HS256 JWT")
    return header, payload
