"""One project's slow or hostile provider never holds up another project's background work, and
never stops a process from shutting down. Two projects on one real server with workers on; the
hostile provider is a raw-socket stand-in on loopback (tests.hostile)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any, Iterator

import pytest

from authpipe_server.api.app import create_app
from authpipe_server.config import load_settings
from authpipe_server.emulators import serve_in_thread
from tests.conftest import make_project, new_master_key
from tests.e2e.conftest import Authpipe, connect, control
from tests.hostile import HostileServer, answer, drip

MARGIN = 5  # AUTHPIPE_REFRESH_MARGIN: a token is refreshed 5 s before it expires


class TwoProjects:
    def __init__(self, env: dict[str, str], url: str, emulators: dict[str, str], db_path: str, keys: dict[str, tuple[str, str]]) -> None:
        self.env, self.url = env, url
        self.slow, self.other = (Authpipe(url, *keys[name], emulators, db_path) for name in ("slow", "other"))

    def point(self, project: Authpipe, **overrides: str) -> None:
        """Re-point the project's Spotify app at other hosts (keeping the emulator elsewhere)."""
        body = project.configure("spotify")
        assert body["configured"]
        emulator = project.emulators["spotify"]
        current = {"authorization_url": f"{emulator}/accounts/authorize", "token_url": f"{emulator}/accounts/api/token", "api_base_url": f"{emulator}/api"}
        response = project.api.put("/v1/providers/spotify", json={"client_id": "sandbox-client", "client_secret": "sandbox-secret", "overrides": current | overrides})
        assert response.status_code == 200, response.text


def server_env(db_url: str, **extra: str) -> dict[str, str]:
    return {"AUTHPIPE_DATABASE_URL": db_url, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_EGRESS": "loopback", **extra}


@pytest.fixture
def two_projects(emulators: dict[str, str], sqlite_url: str, request: pytest.FixtureRequest) -> Iterator[TwoProjects]:
    extra: dict[str, str] = getattr(request, "param", {})
    env = server_env(sqlite_url, AUTHPIPE_WORKERS="on", AUTHPIPE_REFRESH_MARGIN=str(MARGIN), **extra)
    keys = {name: make_project(env, name) for name in ("slow", "other")}
    factory = lambda url: create_app(load_settings(env | {"AUTHPIPE_PUBLIC_URL": url}), auth_cache_ttl=0.0001)  # noqa: E731
    with serve_in_thread(app_factory=factory) as url:
        yield TwoProjects(env, url, emulators, sqlite_url.removeprefix("sqlite:///"), keys)


def row(project: Authpipe, connection_id: str) -> dict[str, Any]:
    with sqlite3.connect(project.db_path) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM connections WHERE id = ?", (connection_id,)).fetchone())


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def test_a_dripping_token_endpoint_does_not_delay_another_projects_refresh(two_projects: TwoProjects) -> None:
    slow, other = two_projects.slow, two_projects.other
    slow.configure("spotify")
    other.configure("spotify")
    control(slow, "spotify", "settings", "PATCH", access_ttl=MARGIN + 2)  # due 2 s after connecting
    victims = [connect(slow, "spotify", user_id=f"user_{i}") for i in range(12)]
    control(slow, "spotify", "settings", "PATCH", access_ttl=MARGIN + 8)  # due 8 s after connecting
    with HostileServer(drip(seconds=60)) as dripping:
        two_projects.point(slow, token_url=f"{dripping.url()}/accounts/api/token")
        mine = connect(other, "spotify")
        due = when(row(other, mine["id"])["refresh_due_at"])
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and row(other, mine["id"])["last_refreshed_at"] is None:
            time.sleep(0.2)
        refreshed = when(row(other, mine["id"])["last_refreshed_at"])
        assert dripping.accepted >= 8, "the slow project's refreshes were under way"
    assert refreshed is not None and due is not None, "the other project's refresh never ran"
    # Due at `due`; the scheduler polls every second. Before the fix it waited for the whole
    # claimed batch, i.e. for the slow provider's drip (a minute).
    assert refreshed - due < timedelta(seconds=5), refreshed - due
    assert all(row(slow, v["id"])["status"] == "active" for v in victims)  # slow is not broken


@pytest.mark.parametrize("two_projects", [{"AUTHPIPE_HEALTH_INTERVAL": "1"}], indirect=True)
def test_a_huge_retry_after_pauses_only_that_projects_app(two_projects: TwoProjects) -> None:
    slow, other = two_projects.slow, two_projects.other
    slow.configure("spotify")
    other.configure("spotify")
    victim = connect(slow, "spotify", user_id="victim")
    with HostileServer(answer(429, b'{"error": "slow down"}', {"Retry-After": "3000000000"})) as limiting:
        two_projects.point(slow, api_base_url=f"{limiting.url()}/api")
        mine = connect(other, "spotify")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (limiting.accepted == 0 or row(other, mine["id"])["last_checked_at"] is None):
            time.sleep(0.1)
        assert limiting.accepted >= 1, "the slow project's check never ran"
        first = when(row(other, mine["id"])["last_checked_at"])
        time.sleep(4)
        later = when(row(other, mine["id"])["last_checked_at"])
        assert limiting.accepted == 1  # that app is paused…
    assert first is not None and later is not None and later > first  # …the other project's checks go on
    paused = row(slow, victim["id"])
    assert paused["last_error_code"] == "rate_limited" and paused["status"] == "active"
    # Retry-After: 3000000000 is obeyed for at most an hour.
    assert when(paused["check_due_at"]) - when(paused["last_checked_at"]) <= timedelta(seconds=3600)  # type: ignore[operator]


def test_sigterm_stops_a_worker_within_seconds_mid_drip(two_projects: TwoProjects, tmp_path: Any) -> None:
    """A worker whose refresh is stuck on a dripping provider still stops promptly: running jobs
    get a short grace period, then are cancelled (their claims run out and they are retried)."""
    slow = two_projects.slow
    slow.configure("spotify")
    control(slow, "spotify", "settings", "PATCH", access_ttl=MARGIN + 1)
    connect(slow, "spotify")
    with HostileServer(drip(seconds=120)) as dripping:
        two_projects.point(slow, token_url=f"{dripping.url()}/accounts/api/token")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")} | two_projects.env
        worker = subprocess.Popen([sys.executable, "-m", "authpipe_server.cli", "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and dripping.accepted < 2:  # the server's worker and this one
                time.sleep(0.1)
            assert dripping.accepted >= 1
            time.sleep(1)
            stopped = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=30)
            took = time.monotonic() - stopped
        finally:
            if worker.poll() is None:
                worker.kill()
    assert code == 0, worker.stdout.read() if worker.stdout else ""
    assert took < 15, took  # the drip would have held it for two minutes
