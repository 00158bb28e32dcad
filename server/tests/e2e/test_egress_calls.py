"""The egress policy at call time: a provider app or webhook stored while loopback was allowed
(or written straight into the database) is refused when the server runs under
`AUTHPIPE_EGRESS=public` — a clear failure, and not one byte reaches the address."""

from __future__ import annotations

import time
from typing import Any, Iterator

import httpx
import pytest

from authpipe_server.api.app import create_app
from authpipe_server.config import load_settings
from authpipe_server.emulators import serve_in_thread
from tests.conftest import make_project, new_master_key
from tests.e2e.conftest import Authpipe, connect
from tests.hostile import HostileServer, answer


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_WORKERS": "off"}


def serve(env: dict[str, str], egress: str) -> Any:
    factory = lambda url: create_app(load_settings(env | {"AUTHPIPE_PUBLIC_URL": url, "AUTHPIPE_EGRESS": egress}), auth_cache_ttl=0.0001)  # noqa: E731
    return serve_in_thread(app_factory=factory)


@pytest.fixture
def stored(env: dict[str, str], emulators: dict[str, str]) -> Iterator[tuple[dict[str, Any], tuple[str, str], HostileServer]]:
    """A Spotify connection made under `loopback`, whose app then points its token endpoint at a
    loopback stand-in (as a hostile API-key holder would have stored it)."""
    keys = make_project(env, "egress")
    with HostileServer(answer(200, b'{"access_token": "internal", "expires_in": 3600}')) as internal:
        with serve(env, "loopback") as url:
            authpipe = Authpipe(url, *keys, emulators, "")
            authpipe.configure("spotify")
            conn = connect(authpipe, "spotify")
            authpipe.configure("spotify", overrides={"token_url": f"{internal.url()}/token", "api_base_url": f"{internal.url()}/api"})
            authpipe.api.put("/v1/webhook", json={"url": f"{internal.url()}/hook"}).raise_for_status()
        yield conn, keys, internal


def test_a_stored_internal_token_url_is_refused_at_call_time(env: dict[str, str], emulators: dict[str, str], stored: Any) -> None:
    conn, keys, internal = stored
    with serve(env, "public") as url:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys[1]}"})
        refreshed = api.post(f"/v1/connections/{conn['id']}/refresh")
        assert refreshed.status_code == 502
        assert "refused" in refreshed.json()["error"]["message"]
        after = api.get(f"/v1/connections/{conn['id']}").json()
        assert after["status"] == "active" and after["last_error"]["code"] == "egress_refused"
        checked = api.post(f"/v1/connections/{conn['id']}/check").json()
        assert checked["status"] == "active"  # a refused address is no reason to call a grant gone
    assert internal.accepted == 0


def test_a_stored_internal_webhook_is_refused_at_delivery(env: dict[str, str], emulators: dict[str, str], stored: Any) -> None:
    conn, keys, internal = stored
    with serve(env | {"AUTHPIPE_WORKERS": "on"}, "public") as url:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys[1]}"})
        assert api.delete(f"/v1/connections/{conn['id']}").status_code == 204  # queues connection.deleted
        deadline, attempts = time.monotonic() + 15, []
        while time.monotonic() < deadline and not attempts:
            time.sleep(0.2)
            import sqlite3

            with sqlite3.connect(env["AUTHPIPE_DATABASE_URL"].removeprefix("sqlite:///")) as db:
                attempts = db.execute("SELECT error FROM webhook_attempts").fetchall()
    assert attempts and all("refused by the egress policy" in (error or "") for (error,) in attempts), attempts
    assert internal.accepted == 0
