"""Silent refresh over real HTTP against the emulators: expiry, rotation, revocation, outages,
rate limits, and the proactive scheduler."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Authpipe, connect, control, emulator

WHO = {"tenant_id": "org_acme", "user_id": "user_123"}


def credential(authpipe: Authpipe, provider: str, **params: Any) -> httpx.Response:
    return authpipe.api.get("/v1/credentials", params={"provider": provider, **WHO, **params})


def token(authpipe: Authpipe, provider: str, **params: Any) -> dict[str, Any]:
    response = credential(authpipe, provider, **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def spotify_accepts(authpipe: Authpipe, access_token: str) -> bool:
    me = httpx.get(f"{emulator(authpipe, 'spotify')}/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})
    return me.status_code == 200


def events(authpipe: Authpipe, connection_id: str) -> list[str]:
    with sqlite3.connect(authpipe.db_path) as conn:
        return [row[0] for row in conn.execute("SELECT type FROM events WHERE connection_id = ? ORDER BY id", (connection_id,))]


def connection(authpipe: Authpipe, connection_id: str) -> dict[str, Any]:
    return dict(authpipe.api.get(f"/v1/connections/{connection_id}").json())


def test_credential_read_without_refresh(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify")
    first = token(authpipe, "spotify")
    assert first == token(authpipe, "spotify")
    assert first["connection_id"] == conn["id"] and first["token_type"] == "bearer" and first["provider"] == "spotify"
    assert first["scopes"] == conn["scopes"] and first["expires_at"] == conn["expires_at"]
    assert spotify_accepts(authpipe, first["credential"])
    assert control(authpipe, "spotify", "counts", "GET")["refresh"] == 0


def test_expired_token_is_refreshed(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=1)
    conn = connect(authpipe, "spotify")
    old = token(authpipe, "spotify", min_ttl=0)["credential"]
    time.sleep(1.2)
    assert not spotify_accepts(authpipe, old)
    fresh = token(authpipe, "spotify")
    assert fresh["credential"] != old and spotify_accepts(authpipe, fresh["credential"])
    assert control(authpipe, "spotify", "counts", "GET")["refresh"] == 1
    assert connection(authpipe, conn["id"])["last_refreshed_at"] is not None


def test_min_ttl_and_force_refresh(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    connect(authpipe, "spotify")
    first = token(authpipe, "spotify")["credential"]
    second = token(authpipe, "spotify", min_ttl=3600)["credential"]  # 3600 s tokens: fewer than that remain
    assert second != first
    third = token(authpipe, "spotify", force_refresh="true")["credential"]
    assert third != second and spotify_accepts(authpipe, third)
    assert control(authpipe, "spotify", "counts", "GET")["refresh"] == 2


def test_spotify_without_rotation_keeps_the_refresh_token(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", refresh_mode="no-rotate")
    connect(authpipe, "spotify")
    for _ in range(3):
        assert spotify_accepts(authpipe, token(authpipe, "spotify", force_refresh="true")["credential"])


def test_spotify_rotation_is_kept(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", refresh_mode="rotate")
    connect(authpipe, "spotify")
    for _ in range(3):  # a reused rotated token would be "Refresh token revoked"
        assert spotify_accepts(authpipe, token(authpipe, "spotify", force_refresh="true")["credential"])


def test_buffer_single_use_refresh_tokens_rotate(authpipe: Authpipe) -> None:
    authpipe.configure("buffer")
    conn = connect(authpipe, "buffer")
    tokens = {token(authpipe, "buffer", force_refresh="true")["credential"] for _ in range(3)}
    assert len(tokens) == 3
    assert connection(authpipe, conn["id"])["status"] == "active"
    assert control(authpipe, "buffer", "counts", "GET")["refresh"] == 3


def test_revoked_grant_is_410_and_an_event(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify", user="sandbox_user")
    control(authpipe, "spotify", "revoke", user_id="sandbox_user")
    response = credential(authpipe, "spotify", force_refresh="true")
    assert response.status_code == 410 and response.json()["error"]["code"] == "connection_revoked"
    after = connection(authpipe, conn["id"])
    assert after["status"] == "revoked" and after["last_error"]["code"] == "invalid_grant"
    assert events(authpipe, conn["id"]) == ["connection.created", "connection.revoked"]
    assert credential(authpipe, "spotify").status_code == 410  # from then on, without asking the provider
    assert control(authpipe, "spotify", "counts", "GET")["refresh"] == 1


@pytest.mark.parametrize("provider", ["facebook", "bluesky"])
def test_other_refresh_kinds_and_their_revocation(authpipe: Authpipe, provider: str) -> None:
    authpipe.configure(provider)
    if provider == "bluesky":
        created = authpipe.api.post("/v1/connections", json={"provider": "bluesky", **WHO, "identifier": "sandbox.test", "app_password": "sand-boxa-ppps-swrd"})
        conn = created.json()
    else:
        conn = connect(authpipe, provider, user="100000000000001")
    token(authpipe, provider)
    before = control(authpipe, provider, "counts", "GET")["refresh"]  # Facebook's connect made it long-lived
    assert token(authpipe, provider, force_refresh="true")["credential"]
    assert control(authpipe, provider, "counts", "GET")["refresh"] == before + 1  # fb_exchange_token / refreshSession
    if provider == "bluesky":  # revoking the app password kills its refresh tokens at once
        httpx.delete(f"{emulator(authpipe, provider)}/_control/users/sandbox.test/app-passwords/authpipe").raise_for_status()
    else:
        control(authpipe, provider, "revoke", user_id="100000000000001")
    assert credential(authpipe, provider, force_refresh="true").status_code == 410
    assert connection(authpipe, conn["id"])["status"] == "revoked"


def test_facebook_page_token_as_a_resource(authpipe: Authpipe) -> None:
    authpipe.configure("facebook")
    connect(authpipe, "facebook", user="100000000000001")
    page = token(authpipe, "facebook", resource="page:200000000000001")
    user = token(authpipe, "facebook")
    assert page["credential"] != user["credential"] and page["expires_at"] is None
    graph = emulator(authpipe, "facebook")
    me = httpx.get(f"{graph}/graph/v22.0/me", params={"fields": "id,name"}, headers={"Authorization": f"Bearer {page['credential']}"})
    assert me.status_code == 200 and me.json()["id"] == "200000000000001"  # the page token acts as the Page
    missing = credential(authpipe, "facebook", resource="page:999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_not_found"


def test_provider_outage_keeps_serving_then_recovers(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify")
    current = token(authpipe, "spotify")["credential"]
    control(authpipe, "spotify", "faults", mode="500", count=2, kind="refresh")
    served = token(authpipe, "spotify", min_ttl=3600)  # wants a refresh; the provider fails
    assert served["credential"] == current
    during = connection(authpipe, conn["id"])
    assert during["status"] == "active" and during["last_error"]["code"] == "provider_error"
    assert token(authpipe, "spotify", min_ttl=3600)["credential"] == current  # backing off: no new call
    assert control(authpipe, "spotify", "counts", "GET")["refresh"] == 1
    forced = credential(authpipe, "spotify", force_refresh="true")  # the second failure
    assert forced.status_code == 200 and forced.json()["credential"] == current
    recovered = token(authpipe, "spotify", force_refresh="true")["credential"]
    assert recovered != current and spotify_accepts(authpipe, recovered)
    assert connection(authpipe, conn["id"])["last_error"] is None


def test_outage_past_expiry_is_an_error_then_recovered(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=1)
    conn = connect(authpipe, "spotify")
    control(authpipe, "spotify", "faults", mode="500", count=1, kind="refresh")
    time.sleep(1.2)
    failed = credential(authpipe, "spotify")
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "provider_error"
    assert connection(authpipe, conn["id"])["status"] == "error"
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=3600)
    assert spotify_accepts(authpipe, token(authpipe, "spotify", force_refresh="true")["credential"])
    assert connection(authpipe, conn["id"])["status"] == "active"
    assert events(authpipe, conn["id"]) == [
        "connection.created", "connection.refresh_failed", "connection.recovered", "connection.refreshed",
    ]


def test_rate_limit_retry_after_is_honoured(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify")
    control(authpipe, "spotify", "faults", mode="429", count=1, kind="refresh", retry_after=120)
    before = datetime.now(timezone.utc)
    assert token(authpipe, "spotify", min_ttl=3600)["credential"]
    with sqlite3.connect(authpipe.db_path) as db:
        due = db.execute("SELECT refresh_due_at FROM connections WHERE id = ?", (conn["id"],)).fetchone()[0]
    due_at = datetime.fromisoformat(due).replace(tzinfo=timezone.utc)
    assert (due_at - before).total_seconds() >= 119
    assert connection(authpipe, conn["id"])["last_error"]["code"] == "rate_limited"
    token(authpipe, "spotify", min_ttl=3600)  # inside the Retry-After window: the provider is left alone
    assert control(authpipe, "spotify", "counts", "GET")["refresh"] == 1


def test_manual_refresh_endpoint(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    conn = connect(authpipe, "spotify", user="sandbox_user")
    refreshed = authpipe.api.post(f"/v1/connections/{conn['id']}/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["last_refreshed_at"] is not None
    control(authpipe, "spotify", "faults", mode="500", count=1, kind="refresh")
    assert authpipe.api.post(f"/v1/connections/{conn['id']}/refresh").status_code == 502
    control(authpipe, "spotify", "revoke", user_id="sandbox_user")
    assert authpipe.api.post(f"/v1/connections/{conn['id']}/refresh").status_code == 410
    assert authpipe.api.post("/v1/connections/conn_01M8NB6WCED5VPH3J4FG91MTSD/refresh").status_code == 404


def test_unknown_connection_and_bad_parameters(authpipe: Authpipe) -> None:
    missing = credential(authpipe, "spotify")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "connection_not_found"
    for bad in ({"min_ttl": "-1"}, {"min_ttl": "soon"}, {"force_refresh": "perhaps"}, {"resource": "page 1"}):
        assert credential(authpipe, "spotify", **bad).status_code == 400, bad
    assert authpipe.api.get("/v1/credentials", params={"provider": "spotify"}).status_code == 400


@pytest.fixture
def authpipe_env(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"AUTHPIPE_WORKERS": "on" if request.node.get_closest_marker("workers") else "off"}


@pytest.mark.workers
def test_proactive_refresh_before_expiry(authpipe: Authpipe) -> None:
    """With workers on, a 4-second token (shorter than the margin) is refreshed at half its life,
    with no request asking for it."""
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=4)
    conn = connect(authpipe, "spotify")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and control(authpipe, "spotify", "counts", "GET")["refresh"] == 0:
        time.sleep(0.2)
    assert control(authpipe, "spotify", "counts", "GET")["refresh"] >= 1
    assert connection(authpipe, conn["id"])["last_refreshed_at"] is not None


def test_expired_while_rate_limited_is_429_with_retry_after(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    control(authpipe, "spotify", "settings", "PATCH", access_ttl=1)
    connect(authpipe, "spotify")
    control(authpipe, "spotify", "faults", mode="429", count=1, kind="refresh", retry_after=90)
    time.sleep(1.2)
    response = credential(authpipe, "spotify")
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    assert 60 <= int(response.headers["retry-after"]) <= 91
