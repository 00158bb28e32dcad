"""Real-browser fixtures: Debian's Chromium driven by Playwright (sync API), and `authpipe dev`
started as a real subprocess, exactly as `make run` starts it.

Chromium must be at /usr/bin/chromium (`make test` installs Debian's `chromium` package through
`make browser`). Without it every test here fails, saying so; none is skipped. Never run
`playwright install`: it downloads a browser of its own.

Screenshots go to $AUTHPIPE_SCREENSHOTS when set, else to a pytest temporary directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000  # one page action or navigation; everything here is on loopback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def chromium_present() -> None:
    """Every browser test fails (never skips) without Chromium, before starting anything else."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's `chromium` package. "
            "`make test` installs it (target `make browser`: apt-get install chromium). "
            "Do not run `playwright install`.",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, one per module (the Playwright loop lives no longer than its tests)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (cookies, storage) for one test."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(TIMEOUT_MS)
    ctx.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("AUTHPIPE_SCREENSHOTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- `authpipe dev` ---------------------------------------------------------------------------


def authpipe_command() -> list[str]:
    """The `authpipe` script of this interpreter's environment (what `make run` runs)."""
    script = Path(sys.executable).with_name("authpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "authpipe_server.cli"]


@dataclass
class Sandbox:
    """A running `authpipe dev`: its public URL, project `default`'s secret key, an API client."""

    url: str
    secret: str
    directory: Path
    log: Path
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.secret}"}, timeout=15)

    def connect_session(self, **body: Any) -> dict[str, Any]:
        response = self.api.post("/v1/connect-sessions", json=body)
        assert response.status_code == 201, f"POST /v1/connect-sessions {body}: {response.status_code} {response.text}"
        return dict(response.json())

    def connections(self, **query: str) -> list[dict[str, Any]]:
        response = self.api.get("/v1/connections", params=query)
        assert response.status_code == 200, f"GET /v1/connections {query}: {response.status_code} {response.text}"
        return list(response.json()["connections"])

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """`authpipe dev --port N` in a fresh directory on a free port, as `make run PORT=N` starts it
    (no AUTHPIPE_PUBLIC_URL: the public URL must follow the port); stopped with SIGINT afterwards."""
    directory = tmp_path_factory.mktemp("sandbox")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")}
    log = directory / "authpipe-dev.log"
    with log.open("w") as out:
        process = subprocess.Popen([*authpipe_command(), "dev", "--port", str(port)], cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        key_file = directory / ".authpipe" / "default-secret-key"
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"`authpipe dev` exited with {process.returncode}:\n{log.read_text()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"`authpipe dev` did not answer {url}/healthz within 30 s:\n{log.read_text()}", pytrace=False)
            try:
                if key_file.exists() and httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        server = Sandbox(url=url, secret=key_file.read_text().strip(), directory=directory, log=log)
        yield server
        server.api.close()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
