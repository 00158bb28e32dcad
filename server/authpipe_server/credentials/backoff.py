"""Retry delays after a transient provider failure: exponential, jittered, honouring Retry-After."""

from __future__ import annotations

import random

BASE_SECONDS = 10.0
CAP_SECONDS = 1800.0


def retry_delay(failures: int, retry_after: float | None = None, *, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """Seconds to wait after the `failures`-th failure in a row (1, 2, …): base·2^(n-1), capped,
    with "equal jitter" (half fixed, half random) so workers don't retry in lockstep; never
    sooner than the provider's Retry-After."""
    ceiling = min(cap, base * 2 ** min(max(0, failures - 1), 30))  # 2**30·base is past any cap
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)
