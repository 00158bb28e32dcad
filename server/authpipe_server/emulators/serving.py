"""Run an ASGI app as a real HTTP server on a free loopback port, in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn
from starlette.types import ASGIApp


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp | None = None,
    *,
    app_factory: Callable[[str], ASGIApp] | None = None,
    host: str = "127.0.0.1",
    log_level: str = "warning",
    startup_timeout: float = 10.0,
    shutdown_timeout: int = 1,
) -> Iterator[str]:
    """Serves `app` with uvicorn until the block exits; yields its base URL (no trailing slash).

    An app that must know its own URL before it starts (an OAuth client's redirect URI) is
    given as `app_factory(base_url)` instead.

    The socket is bound here, to port 0, before the server starts, so the port is known up front
    and two servers never race for one. On exit the server stops accepting, gives requests still
    running `shutdown_timeout` seconds (then cancels them: a response the emulator is holding
    must not keep the test run waiting) and runs the app's lifespan shutdown.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not 0: asyncio only disables Nagle's algorithm on accepted
    # sockets that say so, and without TCP_NODELAY every keep-alive response stalls ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    base_url = f"http://{url_host}:{port}"
    if (app is None) == (app_factory is None):
        raise TypeError("give either app or app_factory")
    config = uvicorn.Config(
        app if app is not None else app_factory(base_url),  # type: ignore[misc]
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=shutdown_timeout,
    )
    server = uvicorn.Server(config)
    exit_codes: list[object] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit as exc:  # uvicorn's answer to a failed lifespan startup
            exit_codes.append(exc.code)

    thread = threading.Thread(target=run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                code = exit_codes[0] if exit_codes else None
                raise RuntimeError(f"the server stopped during startup (exit code {code}; see its log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start within {startup_timeout} s")
            time.sleep(0.005)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(shutdown_timeout + 5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5.0)
        sock.close()
