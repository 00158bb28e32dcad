"""Helpers of the SDK tests: a REAL Authpipe sandbox (`authpipe dev` as a subprocess on loopback)
whose provider emulators are driven through their control API, and transports that count the
requests the SDK makes while still doing real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx

from authpipe import AsyncAuthpipe, Authpipe

AUTHPIPE = Path(sys.executable).with_name("authpipe")  # the server's command, installed in this venv
BLUESKY_HANDLE = "sandbox.test"
BLUESKY_APP_PASSWORD = "sand-boxa-ppps-swrd"  # the sandbox user's app password `authpipe`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    """`authpipe dev` in a temporary directory, its secret key, and a raw API client for setup."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="authpipe-sdk-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.secret = ""
        self.api = httpx.Client(base_url=self.url, timeout=30)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")}
        env |= {"AUTHPIPE_PORT": str(self.port), "AUTHPIPE_PUBLIC_URL": self.url}
        with open(self.dir / "server.log", "ab") as log:
            self.process = subprocess.Popen([str(AUTHPIPE), "dev"], cwd=self.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"authpipe dev exited: {(self.dir / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("authpipe dev did not come up within 30 s")
            time.sleep(0.1)
        self.secret = (self.dir / ".authpipe" / "default-secret-key").read_text().strip()
        self.api.headers["Authorization"] = f"Bearer {self.secret}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        self.stop()
        self.api.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def control(self, emulator: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.api.request(method, f"/_sandbox/{emulator}/_control/{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    def connect_bluesky(
        self, user_id: str, *, tenant_id: str = "org_acme", access_ttl: int = 7200, handle: str = BLUESKY_HANDLE
    ) -> dict[str, Any]:
        """A Bluesky connection made with `handle`'s app password `authpipe`; its access JWTs live `access_ttl` s."""
        self.control("bluesky", "PATCH", "settings", {"access_ttl": access_ttl})
        body = {
            "provider": "bluesky",
            "tenant_id": tenant_id,
            "user_id": user_id,
            "identifier": handle,
            "app_password": BLUESKY_APP_PASSWORD,
        }
        response = self.api.post("/v1/connections", json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def new_bluesky_account(self) -> str:
        """A Bluesky account of its own (to revoke without touching the others); its handle."""
        handle = f"{uuid.uuid4().hex[:10]}.test"
        self.control(
            "bluesky", "POST", "users", {"handle": handle, "app_passwords": [{"name": "authpipe", "password": BLUESKY_APP_PASSWORD}]}
        )
        return handle

    def revoke_bluesky_app_password(self, handle: str) -> None:
        """The app password's refresh tokens die: the next refresh of its connections is refused."""
        self.control("bluesky", "DELETE", f"users/{handle}/app-passwords/authpipe")

    def has_route(self, method: str, path: str) -> bool:
        """Whether the server under test implements a route yet (per its /openapi.json)."""
        paths = self.api.get("/openapi.json").json()["paths"]
        return method.lower() in paths.get(path, {})


class CountingTransport(httpx.HTTPTransport):
    """Real HTTP, plus a count of every request the SDK sends (retries included)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self.paths)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.paths.append(request.url.path)
        return super().handle_request(request)


class CountingAsyncTransport(httpx.AsyncHTTPTransport):
    """`CountingTransport` for `AsyncAuthpipe`."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    @property
    def count(self) -> int:
        return len(self.paths)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)


def make_client(sandbox: Sandbox, **options: Any) -> tuple[Authpipe, CountingTransport]:
    transport = CountingTransport()
    options = {"secret_key": sandbox.secret, "base_url": sandbox.url} | options
    return Authpipe(transport=transport, **options), transport


def make_async_client(sandbox: Sandbox, **options: Any) -> tuple[AsyncAuthpipe, CountingAsyncTransport]:
    transport = CountingAsyncTransport()
    options = {"secret_key": sandbox.secret, "base_url": sandbox.url} | options
    return AsyncAuthpipe(transport=transport, **options), transport


class Gateway:
    """A reverse proxy on loopback in front of the sandbox, as a load balancer would be: it
    forwards every request, or, while `status` is set, answers that status itself (an overloaded
    gateway's 503, a rate limiter's 429), which the real server never does for a valid token."""

    def __init__(self, upstream: str) -> None:
        self.status: int | None = None
        gateway = self
        client = httpx.Client(base_url=upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                if gateway.status is not None:
                    body = json.dumps({"error": {"code": "gateway_unavailable", "message": f"the gateway answered {gateway.status}"}})
                    status, headers, content = gateway.status, {"content-type": "application/json"}, body.encode()
                else:
                    length = int(self.headers.get("content-length") or 0)
                    upstream_headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type", "accept")}
                    answer = client.request(self.command, self.path, headers=upstream_headers, content=self.rfile.read(length))
                    status, content = answer.status_code, answer.content
                    headers = {"content-type": answer.headers.get("content-type", "application/json")}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._client = client
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
