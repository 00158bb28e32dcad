"""serve_in_thread: a real server on a free loopback port, started before the block and gone after."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from authpipe_server.emulators import bluesky, serve_in_thread, spotify


def test_servers_get_distinct_ports_and_release_them() -> None:
    with serve_in_thread(spotify.create_app()) as first, serve_in_thread(bluesky.create_app()) as second:
        assert first != second and first.startswith("http://127.0.0.1:")
        assert httpx.get(f"{first}/_control/counts").status_code == 200
        assert httpx.get(f"{second}/plc/did:plc:sandboxuseraaaaaaaaaaaaa").status_code == 200
    port = urlsplit(first).port
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_failing_startup_raises() -> None:
    @contextlib.asynccontextmanager
    async def broken(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    with pytest.raises(RuntimeError, match="during startup"), serve_in_thread(FastAPI(lifespan=broken)):
        pass


def test_a_held_request_does_not_block_shutdown() -> None:
    started = time.monotonic()
    with serve_in_thread(spotify.create_app(), shutdown_timeout=1) as url:
        httpx.post(f"{url}/_control/hold", json={"kinds": ["token"]})
        caller = threading.Thread(
            target=lambda: httpx.post(
                f"{url}/accounts/api/token", data={"grant_type": "authorization_code"}, timeout=5
            ),
            daemon=True,
        )
        caller.start()
        deadline = time.monotonic() + 3
        while httpx.get(f"{url}/_control/hold").json()["waiting"] != 1:
            assert time.monotonic() < deadline, "the request never reached the hold"
            time.sleep(0.01)
    assert time.monotonic() - started < 4
