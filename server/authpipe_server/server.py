"""Running the HTTP server (uvicorn) around a Runtime."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Awaitable, Callable

import uvicorn

from authpipe_server.api.app import create_app
from authpipe_server.config import Settings
from authpipe_server.errors import ConfigError
from authpipe_server.runtime import Runtime
from authpipe_server.background.workers import run_worker

Prepare = Callable[[Runtime], Awaitable[None]]


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO; some providers (Facebook) put secrets in query strings.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class PortInUse(ConfigError):
    pass


def bind(host: str, port: int, *, hint: str) -> socket.socket:
    """Listen on (host, port) now, before anything is printed: a taken port is one line naming
    `hint` (how to pick another), never a traceback after a banner that named the wrong address."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does; a listening port still refuses
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is in use; pick another: {hint}") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"not allowed to listen on port {port} (ports below 1024 need privileges); pick another: {hint}") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(
    settings: Settings,
    *,
    prepare: Prepare | None = None,
    sandbox: Path | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Listen (unless given a bound `sock`), open the runtime (failing fast with one line), run
    `prepare`, then serve until stopped. `sandbox`: the sandbox's data directory (`authpipe dev`)."""
    listening = sock or bind(settings.host, settings.port, hint="set AUTHPIPE_PORT to a free port")
    configure_logging()

    async def run() -> None:
        runtime = await Runtime.open(settings)
        try:
            if prepare is not None:
                await prepare(runtime)
            config = uvicorn.Config(
                create_app(runtime, sandbox=sandbox is not None, sandbox_data=sandbox),
                host=settings.host,
                port=settings.port,
                access_log=False,  # ours (api.middleware.AccessLog) never logs query strings
                log_config=None,
                server_header=False,
            )
            await uvicorn.Server(config).serve(sockets=[listening])
        finally:
            await runtime.close()

    try:
        asyncio.run(run())
    finally:
        listening.close()


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
