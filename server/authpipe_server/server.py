"""Running the HTTP server (uvicorn) around a Runtime."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Awaitable, Callable

import uvicorn

from authpipe_server.api.app import create_app
from authpipe_server.config import Settings
from authpipe_server.runtime import Runtime
from authpipe_server.background.workers import run_worker

Prepare = Callable[[Runtime], Awaitable[None]]


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO; some providers (Facebook) put secrets in query strings.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(settings: Settings, *, prepare: Prepare | None = None, sandbox: bool = False) -> None:
    """Open the runtime (failing fast with one line), run `prepare`, then serve until stopped."""
    configure_logging()

    async def run() -> None:
        runtime = await Runtime.open(settings)
        try:
            if prepare is not None:
                await prepare(runtime)
            config = uvicorn.Config(
                create_app(runtime, sandbox=sandbox),
                host=settings.host,
                port=settings.port,
                access_log=False,  # ours (api.middleware.AccessLog) never logs query strings
                log_config=None,
                server_header=False,
            )
            await uvicorn.Server(config).serve()
        finally:
            await runtime.close()

    asyncio.run(run())


def work(settings: Settings) -> None:
    """`authpipe worker`: background work only, until SIGINT or SIGTERM."""
    configure_logging()

    async def run() -> None:
        runtime = await Runtime.open(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("authpipe.worker").info("worker started (pid %d)", os.getpid())
        try:
            await run_worker(runtime, stop)
        finally:
            await runtime.close()

    asyncio.run(run())
