"""Background work of a process: proactive refresh, health checks, webhook delivery, retention.
Runs inside `authpipe serve` unless AUTHPIPE_WORKERS=off, and alone in `authpipe worker`. A
process doing it says so with a heartbeat (background.heartbeat), which `authpipe doctor` reads."""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

from authpipe_server.background.heartbeat import Heartbeat, Kind
from authpipe_server.credentials.scheduler import RefreshScheduler
from authpipe_server.monitor.scheduler import CheckScheduler
from authpipe_server.retention import RetentionJob
from authpipe_server.runtime import Runtime
from authpipe_server.webhooks.delivery import DeliveryWorker


@contextlib.asynccontextmanager
async def background(runtime: Runtime, kind: Kind = "serve") -> AsyncIterator[asyncio.Event]:
    """Run the workers until the block exits; the yielded event stops them early. `kind` names
    the command in this process's heartbeat."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(RefreshScheduler(runtime).run(stop), name="refresh-scheduler"),
        asyncio.create_task(CheckScheduler(runtime).run(stop), name="health-checks"),
        asyncio.create_task(DeliveryWorker(runtime).run(stop), name="webhook-delivery"),
        asyncio.create_task(RetentionJob(runtime).run(stop), name="retention"),
        asyncio.create_task(Heartbeat(runtime.db, kind).run(stop), name="heartbeat"),
    ]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    async with background(runtime, "worker"):
        await stop.wait()
