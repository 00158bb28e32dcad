"""Health checks over real HTTP against the emulators: healthy, renamed, revoked (also where the
access token still works), and providers having a bad time, which must never revoke anyone."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import EMULATOR_APPS, Authpipe, connect, control, emulator

WHO = {"tenant_id": "org_acme", "user_id": "user_123"}


def check(authpipe: Authpipe, connection_id: str) -> dict[str, Any]:
    response = authpipe.api.post(f"/v1/connections/{connection_id}/check")
    assert response.status_code == 200, response.text
    return dict(response.json())


def events(authpipe: Authpipe, connection_id: str) -> list[str]:
    with sqlite3.connect(authpipe.db_path) as conn:
        return [row[0] for row in conn.execute("SELECT type FROM events WHERE connection_id = ? ORDER BY id", (connection_id,))]


def test_healthy_check_and_a_renamed_account(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify", user="sandbox_user")
    first = check(authpipe, conn["id"])
    assert first["status"] == "active" and first["last_checked_at"] is not None
    assert first["account"]["name"] == "Sandbox User"
    EMULATOR_APPS["spotify"].state.emulator.users["sandbox_user"].display_name = "Renamed User"
    renamed = check(authpipe, conn["id"])
    assert renamed["account"]["name"] == "Renamed User" and renamed["status"] == "active"
    assert events(authpipe, conn["id"]) == ["connection.created", "connection.updated"]


def test_revoked_grant_is_found_by_a_check(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify", user="sandbox_user")
    control(authpipe, "spotify", "revoke", user_id="sandbox_user")
    checked = check(authpipe, conn["id"])  # /me answers 401 → refresh → invalid_grant
    assert checked["status"] == "revoked" and checked["last_error"]["code"] == "invalid_grant"
    assert checked["last_checked_at"] is not None  # the refresh found it, inside a check
    assert events(authpipe, conn["id"])[-1] == "connection.revoked"
    assert authpipe.api.get("/v1/credentials", params={"provider": "spotify", **WHO}).status_code == 410


def test_expired_token_is_refreshed_by_a_check_not_revoked(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=1)
    conn = connect(authpipe, "spotify")
    time.sleep(1.2)
    checked = check(authpipe, conn["id"])  # 401 "The access token expired" → refresh → check again
    assert checked["status"] == "active" and checked["last_refreshed_at"] is not None


def test_facebook_dead_token(authpipe: Authpipe) -> None:
    authpipe.configure("facebook")
    conn = connect(authpipe, "facebook", user="100000000000001")
    assert check(authpipe, conn["id"])["status"] == "active"
    control(authpipe, "facebook", "revoke", user_id="100000000000001", reason="password_changed")
    checked = check(authpipe, conn["id"])  # Graph 190 → fb_exchange_token → 190 again
    assert checked["status"] == "revoked"


def test_bluesky_revoked_app_password_is_found_although_the_access_jwt_works(authpipe: Authpipe) -> None:
    authpipe.configure("bluesky")
    body = {"provider": "bluesky", **WHO, "identifier": "sandbox.test", "app_password": "sand-boxa-ppps-swrd"}
    conn = authpipe.api.post("/v1/connections", json=body).json()
    access = authpipe.api.get("/v1/credentials", params={"provider": "bluesky", **WHO}).json()["credential"]
    httpx.delete(f"{emulator(authpipe, 'bluesky')}/_control/users/sandbox.test/app-passwords/authpipe").raise_for_status()
    session = httpx.get(f"{emulator(authpipe, 'bluesky')}/xrpc/com.atproto.server.getSession", headers={"Authorization": f"Bearer {access}"})
    assert session.status_code == 200  # the stateless access JWT still works...
    checked = check(authpipe, conn["id"])  # ...but the check goes through refreshSession
    assert checked["status"] == "revoked" and checked["last_checked_at"] is not None


@pytest.mark.parametrize("mode", ["500", "timeout", "429"])
def test_a_provider_having_a_bad_hour_revokes_no_one(authpipe: Authpipe, mode: str) -> None:
    """An hour of checks every minute (60) while the provider answers 500 / times out / 429."""
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=1)  # so every check also has to refresh
    conn = connect(authpipe, "spotify")
    fault: dict[str, Any] = {"mode": mode, "count": 1000, "retry_after": 120}
    if mode == "timeout":
        fault |= {"delay": 0.05, "then": "504"}
    control(authpipe, "spotify", "faults", **fault)
    time.sleep(1.1)
    for _ in range(60):
        checked = check(authpipe, conn["id"])
        assert checked["status"] in ("active", "error"), checked
    assert checked["last_error"]["code"] in ("provider_error", "rate_limited", "provider_timeout")
    assert "connection.revoked" not in events(authpipe, conn["id"])
    control(authpipe, "spotify", "faults", "DELETE")
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=3600)
    recovered = authpipe.api.post(f"/v1/connections/{conn['id']}/refresh")
    assert recovered.status_code == 200 and recovered.json()["status"] == "active"


def test_rate_limited_check_waits_as_asked(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify")
    control(authpipe, "spotify", "faults", mode="429", count=1, kind="api", retry_after=600)
    checked = check(authpipe, conn["id"])
    assert checked["status"] == "active" and checked["last_error"]["code"] == "rate_limited"
    with sqlite3.connect(authpipe.db_path) as db:
        due, checked_at = db.execute("SELECT check_due_at, last_checked_at FROM connections WHERE id = ?", (conn["id"],)).fetchone()
    from datetime import datetime

    assert (datetime.fromisoformat(due) - datetime.fromisoformat(checked_at)).total_seconds() >= 600


def test_check_unknown_connection(authpipe: Authpipe) -> None:
    assert authpipe.api.post("/v1/connections/conn_01M8NB6WCED5VPH3J4FG91MTSD/check").status_code == 404


@pytest.fixture
def authpipe_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.node.get_closest_marker("workers"):
        return {"AUTHPIPE_WORKERS": "on", "AUTHPIPE_HEALTH_INTERVAL": "1"}
    return {"AUTHPIPE_WORKERS": "off"}


@pytest.mark.workers
def test_scheduled_check_finds_a_revoked_grant(authpipe: Authpipe) -> None:
    """Workers on, checks every second: a grant revoked at the provider is marked revoked with no
    request asking for it."""
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify", user="sandbox_user")
    control(authpipe, "spotify", "revoke", user_id="sandbox_user")
    deadline = time.monotonic() + 15
    status = "active"
    while time.monotonic() < deadline and status != "revoked":
        time.sleep(0.2)
        status = authpipe.api.get(f"/v1/connections/{conn['id']}").json()["status"]
    assert status == "revoked"
    assert events(authpipe, conn["id"])[-1] == "connection.revoked"


def test_metrics(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify")
    authpipe.api.get("/v1/credentials", params={"provider": "spotify", **WHO, "force_refresh": "true"})
    check(authpipe, conn["id"])
    text = httpx.get(f"{authpipe.url}/metrics").text
    assert 'authpipe_refreshes_total{outcome="ok",provider="spotify"} 1.0' in text
    assert 'authpipe_health_checks_total{outcome="ok",provider="spotify"} 1.0' in text
    assert 'authpipe_connections{provider="spotify",status="active"} 1.0' in text
    assert "authpipe_credential_read_seconds_count 1.0" in text
    assert "org_acme" not in text and "user_123" not in text and conn["id"] not in text


@pytest.mark.workers
def test_scheduled_check_sends_a_signed_revoked_webhook(authpipe: Authpipe) -> None:
    """The whole story: revoked at the provider → the next scheduled check marks it → a
    `connection.revoked` webhook, signed per Standard Webhooks, reaches a real receiver."""
    import json

    from standardwebhooks import Webhook

    from tests.test_webhooks_delivery import Receiver

    authpipe.configure("spotify")
    with Receiver().serve() as receiver:
        secret = authpipe.api.put("/v1/webhook", json={"url": receiver.url}).json()["secret"]
        conn = connect(authpipe, "spotify", user="sandbox_user")
        control(authpipe, "spotify", "revoke", user_id="sandbox_user")
        deadline = time.monotonic() + 20
        revoked: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not revoked:
            time.sleep(0.2)
            for request in receiver.snapshot():
                body = Webhook(secret).verify(request.body, request.headers)  # raises if the signature is wrong
                if body["type"] == "connection.revoked":
                    revoked.append(body)
    assert revoked, [json.loads(r.body)["type"] for r in receiver.snapshot()]
    connection = revoked[0]["data"]["connection"]
    assert connection["id"] == conn["id"] and connection["status"] == "revoked"
    assert set(connection) >= {"id", "provider", "tenant_id", "user_id", "status", "account", "last_error"}


@pytest.mark.workers
def test_checks_repeat_at_a_short_interval(authpipe: Authpipe) -> None:
    """AUTHPIPE_HEALTH_INTERVAL=1: a connection is checked about every second, not every 300 s
    (a finished check gives its claim back; before, the claim's lease outlived it)."""
    authpipe.configure("spotify")
    connect(authpipe, "spotify")
    control(authpipe, "spotify", "counts", "DELETE")
    time.sleep(6)
    assert control(authpipe, "spotify", "counts", "GET")["api"] >= 3
