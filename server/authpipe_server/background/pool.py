"""A bounded pool of background jobs, fair across provider apps.

Background work (refreshes, health checks) is claimed from the database a few rows at a time and
run here. What keeps one project's slow or hostile provider from delaying everyone else:

- a job runs under a hard deadline (`deadline`), so a dripping provider costs a slot for at most
  that long;
- at most `per_key` jobs run at once for one key (a project's provider app), so one app can never
  fill the pool; a scheduler asks `saturated()` and claims no more work for such an app until a
  slot frees;
- the pool never waits for a whole batch: a scheduler claims only as many rows as there are free
  slots and claims again as soon as any job ends.

`close()` lets running jobs finish for a short grace period, then cancels them, so SIGTERM stops a
process within seconds whatever a provider is doing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class JobPool:
    def __init__(self, *, total: int, per_key: int, deadline: float, name: str) -> None:
        self.total, self.per_key, self.deadline, self.name = total, per_key, deadline, name
        self._running: dict[asyncio.Task[None], Hashable] = {}
        self._per_key: Counter[Hashable] = Counter()
        self._changed = asyncio.Event()

    @property
    def free(self) -> int:
        return self.total - len(self._running)

    def saturated(self) -> set[Hashable]:
        """Keys that may take no more jobs right now."""
        return {key for key, count in self._per_key.items() if count >= self.per_key}

    def start(self, key: Hashable, label: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run `job` now under the deadline. The caller checked `free` and `saturated()`; a job
        for a saturated key still runs (it was already claimed), it only delays new claims."""
        task = asyncio.create_task(self._run(label, job), name=f"{self.name}:{label}")
        self._running[task] = key
        self._per_key[key] += 1
        task.add_done_callback(self._finished)

    async def _run(self, label: str, job: Callable[[], Awaitable[object]]) -> None:
        try:
            async with asyncio.timeout(self.deadline):
                await job()
        except TimeoutError:
            log.warning("%s: %s did not finish within %.0f s; abandoned (its claim runs out and it is retried)", self.name, label, self.deadline)
        except asyncio.CancelledError:
            raise
        except Exception:  # one job's bug must not stop anyone else's work
            log.exception("%s: %s failed unexpectedly", self.name, label)

    def _finished(self, task: asyncio.Task[None]) -> None:
        key = self._running.pop(task)
        self._per_key[key] -= 1
        if self._per_key[key] <= 0:
            del self._per_key[key]
        self._changed.set()

    def forget_changes(self) -> None:
        """Start watching for the next job to end (call before looking at `free`)."""
        self._changed.clear()

    async def wait(self, stop: asyncio.Event, timeout: float) -> None:
        """Until a job ends (since `forget_changes`), `stop` is set, or `timeout` seconds pass."""
        waiters = [asyncio.ensure_future(self._changed.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def run_batch(self, jobs: list[tuple[Hashable, str, Callable[[], Awaitable[object]]]]) -> int:
        """Start `jobs` (ignoring the limits) and wait for all of them: one round, for tests and
        benchmarks. Returns how many there were."""
        for key, label, job in jobs:
            self.start(key, label, job)
        if self._running:
            await asyncio.wait(list(self._running))
        return len(jobs)

    async def close(self, grace: float = 5.0) -> None:
        """Let running jobs finish for `grace` seconds, then cancel what is left."""
        if not self._running:
            return
        _, pending = await asyncio.wait(list(self._running), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            log.info("%s: cancelled %d job(s) at shutdown", self.name, len(pending))


Claim = Callable[[int, set[Hashable]], Awaitable[list[tuple[Hashable, str, Callable[[], Awaitable[object]]]]]]
"""(how many, keys to leave out) → claimed jobs as (key, label, job)."""


async def run_claimed(pool: JobPool, claim: Claim, stop: asyncio.Event, *, idle: float, name: str, grace: float = 5.0) -> None:
    """The scheduler loop: claim as many jobs as there are free slots (leaving out saturated
    keys), start them, and claim again as soon as a slot frees or `idle` seconds pass."""
    try:
        while not stop.is_set():
            pool.forget_changes()
            claimed = 0
            if pool.free > 0:
                try:
                    jobs = await claim(pool.free, pool.saturated())
                except Exception:
                    log.exception("%s: claiming work failed; retrying", name)
                    jobs = []
                for key, label, job in jobs:
                    pool.start(key, label, job)
                claimed = len(jobs)
            if claimed == 0 or pool.free == 0:
                await pool.wait(stop, idle)
    finally:
        await pool.close(grace)
