"""The control API every emulator shares: injected faults, counts, the clock offset, the
response hold, settings, reset, apps, and the consent page."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from authpipe_server.emulators import serve_in_thread, spotify

SPOTIFY_CLIENT, SPOTIFY_SECRET = "spotify-app", "spotify-secret"


def spotify_tokens(emu: Any) -> dict[str, Any]:
    """A Spotify grant for the confidential test app (client credentials in HTTP Basic)."""
    emu.register_app(SPOTIFY_CLIENT, SPOTIFY_SECRET)
    params = {"client_id": SPOTIFY_CLIENT, "response_type": "code", "redirect_uri": emu.CALLBACK, "scope": "streaming"}
    code = emu.consent("/accounts/authorize", params, user="sandbox_user")["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": emu.CALLBACK}
    response = emu.http.post("/accounts/api/token", data=data, auth=(SPOTIFY_CLIENT, SPOTIFY_SECRET))
    assert response.status_code == 200
    return response.json()


def spotify_refresh(emu: Any, refresh_token: str, timeout: float = 5.0) -> httpx.Response:
    return emu.http.post(
        "/accounts/api/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(SPOTIFY_CLIENT, SPOTIFY_SECRET),
        timeout=timeout,
    )


def spotify_me(emu: Any, token: str = "none", timeout: float = 5.0) -> httpx.Response:
    return emu.http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


@pytest.mark.parametrize(
    ("emulator", "path", "params"),
    [
        ("spotify_emu", "/accounts/authorize", {"scope": "user-read-email streaming"}),
        ("facebook_emu", "/www/v22.0/dialog/oauth", {"scope": "email,pages_show_list"}),
        (
            "buffer_emu",
            "/auth/auth",
            {"scope": "account:read offline_access", "code_challenge": "x" * 43, "code_challenge_method": "S256"},
        ),
    ],
)
def test_consent_page_with_the_sandbox_app(
    request: pytest.FixtureRequest, emulator: str, path: str, params: dict[str, str]
) -> None:
    emu = request.getfixturevalue(emulator)
    query = params | {
        "client_id": "sandbox-client",
        "redirect_uri": "http://127.0.0.1:8080/oauth/callback",
        "response_type": "code",
    }
    page = emu.http.get(path, params=query)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Authpipe Sandbox" in html
    for scope in params["scope"].replace(",", " ").split():
        assert scope in html
    first_user = emu.control("GET", "/users")["users"][0]
    first_id = first_user.get("id")
    assert f'name="user" value="{first_id}"' in html
    assert 'value="approve"' in html and 'value="deny"' in html
    assert "<script" not in html and "<link" not in html and "src=" not in html  # no external assets


def test_faults_of_one_kind_leave_other_calls_alone(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = spotify_tokens(emu)
    emu.fault("500", kind="refresh", count=2)
    assert emu.control("GET", "/faults")["faults"][0]["remaining"] == 2
    assert spotify_me(emu, tokens["access_token"]).status_code == 200
    for _ in range(2):
        failed = spotify_refresh(emu, tokens["refresh_token"])
        assert failed.status_code == 500 and failed.json()["error"] == "server_error"
    assert spotify_refresh(emu, tokens["refresh_token"]).status_code == 200
    assert emu.control("GET", "/faults") == {"faults": []}


def test_fault_without_kind_hits_the_next_call_and_can_be_cleared(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.fault(500)
    failed = spotify_me(emu)
    assert failed.status_code == 500 and failed.json() == {"error": {"status": 500, "message": "Server error."}}
    emu.fault("429", count=3)
    assert emu.control("DELETE", "/faults") == {"cleared": 1}
    assert spotify_me(emu).status_code == 401


def test_timeout_then_504(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.fault("timeout", kind="api", delay=0.2, then="504")
    started = time.monotonic()
    response = spotify_me(emu)
    assert response.status_code == 504 and time.monotonic() - started >= 0.2


def test_timeout_then_close(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.fault("timeout", kind="api", delay=0.1, then="close")
    with pytest.raises(httpx.RemoteProtocolError):
        spotify_me(emu)
    assert spotify_me(emu).status_code == 401  # the next call is answered normally


def test_timeout_longer_than_the_client_waits(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = spotify_tokens(emu)
    emu.fault("timeout", kind="api", delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        spotify_me(emu, tokens["access_token"], timeout=0.1)
    assert spotify_me(emu, tokens["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("emulator", "method", "path"),
    [
        ("spotify_emu", "GET", "/api/v1/me"),
        ("facebook_emu", "GET", "/graph/v22.0/me"),
        ("buffer_emu", "POST", "/api"),
        ("bluesky_emu", "GET", "/xrpc/com.atproto.server.getSession"),
    ],
)
def test_injected_500_and_429_on_every_emulator(
    request: pytest.FixtureRequest, emulator: str, method: str, path: str
) -> None:
    emu = request.getfixturevalue(emulator)
    emu.fault("500", kind="api")
    failed = emu.http.request(method, path)
    assert failed.status_code == 500 and failed.json()
    emu.fault("429", kind="api", retry_after=4)
    limited = emu.http.request(method, path)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "4"
    assert emu.counts()["api"] == 2


def test_counts_by_kind_and_reset(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = spotify_tokens(emu)
    spotify_refresh(emu, tokens["refresh_token"])
    spotify_me(emu, tokens["access_token"])
    spotify_me(emu, tokens["access_token"])
    assert emu.counts() == {"authorize": 1, "token": 1, "refresh": 1, "api": 2, "revoke": 0}
    assert emu.control("DELETE", "/counts") == {"authorize": 0, "token": 0, "refresh": 0, "api": 0, "revoke": 0}


def test_time_offset(spotify_emu: Any) -> None:
    emu = spotify_emu
    before = emu.control("GET", "/time")
    assert before["offset"] == 0 and abs(before["now"] - time.time()) < 5
    assert emu.control("POST", "/time", {"offset": 100})["offset"] == 100
    emu.advance(50)
    after = emu.control("GET", "/time")
    assert after["offset"] == 150 and after["now"] - time.time() > 140
    assert emu.http.post("/_control/time", json={}).status_code == 400
    assert emu.http.post("/_control/time", json={"offset": 1, "advance": 1}).status_code == 400


def test_hold_keeps_a_refresh_response_until_released(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = spotify_tokens(emu)
    assert emu.control("POST", "/hold", {}) == {"active": True, "kinds": ["refresh", "token"], "waiting": 0}
    results: list[httpx.Response] = []
    caller = threading.Thread(target=lambda: results.append(spotify_refresh(emu, tokens["refresh_token"])))
    caller.start()
    deadline = time.monotonic() + 3
    while emu.control("GET", "/hold")["waiting"] != 1:
        assert time.monotonic() < deadline, "the refresh never reached the hold"
        time.sleep(0.01)
    caller.join(0.1)
    assert caller.is_alive() and not results
    assert spotify_me(emu, tokens["access_token"]).status_code == 200  # other kinds pass
    assert emu.control("POST", "/release") == {"released": 1}
    caller.join(3)
    assert results[0].status_code == 200
    assert emu.control("GET", "/hold") == {"active": False, "kinds": [], "waiting": 0}


def test_a_caller_killed_during_a_held_rotation_leaves_the_provider_rotated(buffer_emu: Any) -> None:
    """Buffer rotates before the response is held: a caller that dies waiting has lost the new
    refresh token, and its old one now revokes the grant, as at the real provider."""
    emu = buffer_emu
    emu.register_app("app", "secret")
    verifier, challenge = emu.pkce_pair()
    params = {
        "client_id": "app",
        "response_type": "code",
        "redirect_uri": emu.CALLBACK,
        "scope": "account:read offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    code = emu.consent("/auth/auth", params, user="64b7f0c2a1b2c3d4e5f60001")["code"]
    auth = {"client_id": "app", "client_secret": "secret"}
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": emu.CALLBACK,
        "code_verifier": verifier,
    }
    old_refresh = emu.http.post("/auth/token", data=exchange | auth).json()["refresh_token"]

    emu.control("POST", "/hold", {"kinds": ["refresh"]})
    with pytest.raises(httpx.ReadTimeout):
        emu.http.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": old_refresh} | auth, timeout=0.3
        )
    emu.control("POST", "/release")
    retried = emu.http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": old_refresh} | auth)
    assert retried.json()["error"] == "invalid_grant"


def test_settings_are_validated(spotify_emu: Any) -> None:
    emu = spotify_emu
    defaults = emu.control("GET", "/settings")
    assert defaults["access_ttl"] == 3600 and defaults["refresh_mode"] == "no-rotate"
    assert emu.settings(access_ttl=60, refresh_mode="rotate")["access_ttl"] == 60
    assert emu.http.patch("/_control/settings", json={"colour": "blue"}).status_code == 400
    assert emu.http.patch("/_control/settings", json={"refresh_mode": "sometimes"}).status_code == 400
    assert emu.http.patch("/_control/settings", json={"access_ttl": "60"}).status_code == 400
    tokens = spotify_tokens(emu)
    assert tokens["expires_in"] == 60


def test_reset_restores_defaults(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = spotify_tokens(emu)
    emu.control("POST", "/users", {"id": "extra"})
    emu.settings(access_ttl=5)
    emu.advance(10)
    emu.fault("500")
    emu.control("POST", "/reset")
    assert [user["id"] for user in emu.control("GET", "/users")["users"]] == ["sandbox_user", "second_user"]
    assert [app["client_id"] for app in emu.control("GET", "/apps")["apps"]] == ["sandbox-client"]
    assert emu.control("GET", "/settings")["access_ttl"] == 3600
    assert emu.control("GET", "/time")["offset"] == 0
    assert emu.control("GET", "/faults") == {"faults": []}
    assert spotify_me(emu, tokens["access_token"]).status_code == 401


def test_control_input_errors(spotify_emu: Any) -> None:
    emu = spotify_emu
    assert emu.http.post("/_control/faults", json={"mode": "418"}).status_code == 422
    assert emu.http.post("/_control/faults", json={"mode": "500", "kind": "dance"}).status_code == 422
    assert emu.http.post("/_control/users", json={"id": "sandbox_user"}).status_code == 400
    assert emu.http.post("/_control/revoke", json={"user_id": "ghost"}).status_code == 404
    assert emu.http.post("/_control/apps", json={"client_id": "a", "redirect_uris": []}).status_code == 422


def test_sandbox_app_can_be_left_out() -> None:
    with serve_in_thread(spotify.create_app(sandbox_app=False)) as url:
        assert httpx.get(f"{url}/_control/apps").json() == {"apps": []}
        params = {"client_id": "sandbox-client", "response_type": "code", "redirect_uri": "http://127.0.0.1:1/cb"}
        page = httpx.get(f"{url}/accounts/authorize", params=params)
        assert page.status_code == 400 and "INVALID_CLIENT" in page.text


def test_a_timed_fault_is_an_outage_until_the_clock_passes_it(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = spotify_tokens(emu)
    emu.fault("500", seconds=300)
    for _ in range(3):  # not used up by calls
        assert spotify_me(emu, tokens["access_token"]).status_code == 500
    [pending] = emu.control("GET", "/faults")["faults"]
    assert pending["until"] is not None and pending["mode"] == "500"
    emu.control("POST", "/time", {"advance": 301})
    assert emu.control("GET", "/faults") == {"faults": []}
    assert spotify_me(emu, tokens["access_token"]).status_code in (200, 401)  # answering again (the token aged too)


def test_a_timed_fault_must_be_a_sane_duration(spotify_emu: Any) -> None:
    for seconds in (0, -5, 86401, "soon"):
        spotify_emu.control("POST", "/faults", {"mode": "500", "seconds": seconds}, status=422)
