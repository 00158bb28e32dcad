"""In-process single flight: concurrent callers asking for the same key share one call.

Used wherever a burst of identical work must reach a slow or rate-limited party only once:
unwrapping a tenant's data key, checking a secret key, refreshing a connection.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}

    async def do(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """Run `work` for `key`, or wait for the run already under way and share its outcome.
        If the caller running it is cancelled (its own deadline ran out), the others do not
        inherit the cancellation: the next of them runs `work` itself."""
        while (pending := self._inflight.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except _LeaderCancelled:
                continue
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await work()
            future.set_result(result)
            return result
        except asyncio.CancelledError:
            future.set_exception(_LeaderCancelled())
            future.exception()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: joiners re-raise it, and nobody waiting is fine too
            raise
        finally:
            del self._inflight[key]


class _LeaderCancelled(Exception):
    """The caller doing the work was cancelled; a waiting caller takes over."""
