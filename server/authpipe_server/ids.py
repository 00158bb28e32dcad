"""Prefixed, time-ordered ids (`conn_01J…`), as in Stripe's API.

The body is a ULID-style string: 48 bits of milliseconds then 80 random bits in Crockford base32,
so ids sort by creation time and cursor pagination can compare ids directly. Monotonic within a
process (the ULID spec's monotonic mode): ids made in the same millisecond take the previous
random part plus one, so two events written back to back list in the order they happened.
Written here because it is a few lines and a dependency would add nothing.
"""

from __future__ import annotations

import secrets
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = 0


def _next_value() -> int:
    global _last
    with _lock:
        value = (time.time_ns() // 1_000_000) << _RANDOM_BITS | secrets.randbits(_RANDOM_BITS)
        # Same millisecond (or a clock stepped back): one more than the last. The random part has
        # 80 bits, so this never runs into the next millisecond in practice.
        _last = value if value >> _RANDOM_BITS > _last >> _RANDOM_BITS else _last + 1
        return _last


def new_id(prefix: str) -> str:
    value = _next_value()
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
