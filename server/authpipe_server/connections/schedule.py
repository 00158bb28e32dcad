"""When a connection's background work falls due."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from authpipe_server.store.types import utcnow


def refresh_due(expires_at: datetime | None, margin: int, now: datetime | None = None) -> datetime | None:
    """`margin` seconds before expiry; a token whose whole lifetime is shorter than the margin is
    refreshed at half its lifetime. Tokens that never expire are never due."""
    if expires_at is None:
        return None
    now = now or utcnow()
    lifetime = expires_at - now
    if lifetime <= timedelta(seconds=margin):
        return now + lifetime / 2
    return expires_at - timedelta(seconds=margin)


def check_due(interval: int, now: datetime | None = None) -> datetime:
    """The next health check, spread by ±10 % so connections made together are not checked together."""
    return (now or utcnow()) + timedelta(seconds=interval * random.uniform(0.9, 1.1))
