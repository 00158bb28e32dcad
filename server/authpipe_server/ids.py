"""Prefixed, time-ordered ids (`conn_01J…`), as in Stripe's API.

The body is a ULID-style string: 48 bits of milliseconds then 80 random bits in Crockford base32,
so ids sort by creation time and cursor pagination can compare ids directly. Written here because
it is ten lines and a dependency would add nothing.
"""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
