"""Authpipe commands as real processes, for tests that need the process boundary (the command
line, several servers sharing PostgreSQL, SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "authpipe_server.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class running_server:
    """Start an `authpipe` server command, wait for /healthz, stop it with SIGINT on exit."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")}
        full_env.update(env)
        self.port = int(env["AUTHPIPE_PORT"])
        self.process = subprocess.Popen([*CLI, *args], env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.output = ""

    def __enter__(self) -> "running_server":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.process.communicate()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=20)
        self.output = out + err

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
