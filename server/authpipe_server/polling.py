"""The loop every background worker runs: do a batch, and rest a moment when there was less
than a full batch to do, until told to stop."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)


async def poll(run_once: Callable[[], Awaitable[int]], stop: asyncio.Event, *, batch: int, idle: float, name: str) -> None:
    """Call `run_once` (which returns how many items it took) until `stop` is set. An error is
    logged and retried after the idle pause: one bad round must not end background work."""
    while not stop.is_set():
        try:
            taken = await run_once()
        except Exception:
            log.exception("%s: a round failed; retrying", name)
            taken = 0
        if taken < batch:
            try:
                await asyncio.wait_for(stop.wait(), idle)
            except TimeoutError:
                pass
