"""Counting failed attempts per client address, in this process's memory.

A fixed window per address opens at its first failure and lasts `window` seconds; once it holds
`limit` failures the address is refused until the window closes. Memory is bounded: at most
`size` addresses are remembered (the least recently used go first).
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from typing import Callable

from cachetools import TTLCache


@dataclass(slots=True)
class _Window:
    opened: float
    failures: int


class FailureThrottle:
    def __init__(self, *, limit: int, window: float, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        # An entry expires `window` seconds after it was inserted; counting a failure changes the
        # entry in place, which does not extend its life.
        self._windows: TTLCache[str, _Window] = TTLCache(size, window, timer=clock)

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None when it is not refused."""
        current = self._windows.get(address)
        if current is None or current.failures < self.limit:
            return None
        return max(1, math.ceil(current.opened + self.window - self._clock()))

    def failed(self, address: str) -> None:
        current = self._windows.get(address)
        if current is None:
            self._windows[address] = _Window(self._clock(), 1)
        else:
            current.failures += 1


def client_address(host: str | None) -> str:
    """The throttling key of a client: its IPv4 address, or its IPv6 /64 (one subscriber's
    usual allocation, so walking through a prefix's addresses gains nothing)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
