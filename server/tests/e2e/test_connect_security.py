"""The connect flow under attack and failure (docs/security.md): every bad callback is a 4xx page with
a code, never a stack trace, and stores nothing."""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.e2e.conftest import Authpipe, consent, new_browser, query, result_of


def start(authpipe: Authpipe, browser: httpx.Client, provider: str = "spotify", **session: Any) -> tuple[dict[str, Any], str]:
    """A connect session and the provider authorization URL it leads to, started in `browser`."""
    created = authpipe.session(**session)
    response = browser.get(f"{authpipe.url}/connect/{provider}", params={"session": created["token"]})
    assert response.status_code == 302, response.text
    return created, response.headers["location"]


def refused(response: httpx.Response, code: str, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert "Traceback" not in response.text and "text/html" in response.headers["content-type"]
    outcome = result_of(response.text)["message"]
    assert outcome["ok"] is False and outcome["code"] == code, outcome
    return dict(outcome)


def nothing_stored(authpipe: Authpipe) -> None:
    assert authpipe.api.get("/v1/connections").json()["connections"] == []


def counts(authpipe: Authpipe, emulator: str = "spotify") -> dict[str, int]:
    return dict(httpx.get(f"{authpipe.emulators[emulator]}/_control/counts").json())


@pytest.fixture
def spotify(authpipe: Authpipe) -> Authpipe:
    authpipe.configure("spotify")
    return authpipe


def test_state_replay(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    callback = consent(browser, authorize)
    assert result_of(browser.get(callback).text)["message"]["ok"] is True
    refused(browser.get(callback), "state_replayed")
    assert counts(spotify)["token"] == 1  # the replay never reached the provider
    assert len(spotify.api.get("/v1/connections").json()["connections"]) == 1


def test_forged_state(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    callback = consent(browser, authorize)
    forged = callback.replace(query(callback)["state"], "A" * 43)
    refused(browser.get(forged), "invalid_state")
    nothing_stored(spotify)
    assert counts(spotify)["token"] == 0


def test_state_from_another_session(spotify: Authpipe, browser: httpx.Client) -> None:
    """An attacker's code injected into the victim's browser with the victim's state does not
    connect: the state's PKCE verifier does not match the code's challenge."""
    _, victim_authorize = start(spotify, browser, user_id="victim")
    with new_browser() as attacker:
        _, attacker_authorize = start(spotify, attacker, user_id="attacker")
        attacker_code = query(consent(attacker, attacker_authorize))["code"]
    victim_state = query(victim_authorize)["state"]
    response = browser.get(f"{spotify.url}/oauth/callback", params={"code": attacker_code, "state": victim_state})
    refused(response, "token_exchange_failed", 502)
    nothing_stored(spotify)


def test_mismatched_iss_is_refused_before_the_exchange(authpipe: Authpipe, browser: httpx.Client) -> None:
    authpipe.configure("buffer")
    _, authorize = start(authpipe, browser, "buffer")
    callback = consent(browser, authorize)
    params = query(callback)
    evil = {**params, "iss": "https://evil.example"}
    refused(browser.get(f"{authpipe.url}/oauth/callback?{urlencode(evil)}"), "issuer_mismatch")
    assert counts(authpipe, "buffer")["token"] == 0
    nothing_stored(authpipe)


def test_missing_iss_is_refused_where_the_provider_sends_it(authpipe: Authpipe, browser: httpx.Client) -> None:
    authpipe.configure("buffer")
    _, authorize = start(authpipe, browser, "buffer")
    params = query(consent(browser, authorize))
    del params["iss"]
    refused(browser.get(f"{authpipe.url}/oauth/callback?{urlencode(params)}"), "issuer_missing")
    assert counts(authpipe, "buffer")["token"] == 0


def test_missing_pkce_verifier(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    callback = consent(browser, authorize)
    with sqlite3.connect(spotify.db_path) as conn:
        conn.execute("UPDATE oauth_states SET code_verifier = NULL")
    refused(browser.get(callback), "missing_pkce_verifier")
    assert counts(spotify)["token"] == 0
    nothing_stored(spotify)


def test_expired_session(spotify: Authpipe, browser: httpx.Client) -> None:
    created, authorize = start(spotify, browser)
    callback = consent(browser, authorize)
    with sqlite3.connect(spotify.db_path) as conn:
        conn.execute("UPDATE connect_sessions SET expires_at = '2020-01-01 00:00:00'")
    refused(browser.get(callback), "session_expired", 410)
    refused(browser.get(created["connect_url"]), "session_expired", 410)
    refused(browser.get(f"{spotify.url}/connect/spotify", params={"session": created["token"]}), "session_expired", 410)
    nothing_stored(spotify)


def test_expired_state(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    callback = consent(browser, authorize)
    with sqlite3.connect(spotify.db_path) as conn:
        conn.execute("UPDATE oauth_states SET expires_at = '2020-01-01 00:00:00'")
    refused(browser.get(callback), "state_expired")
    nothing_stored(spotify)


def test_denied_consent(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    callback = consent(browser, authorize, decision="deny")
    assert query(callback)["error"] == "access_denied"
    outcome = refused(browser.get(callback), "access_denied")
    assert outcome["message"] == "you declined access"
    refused(browser.get(callback), "state_replayed")  # the state was spent all the same
    nothing_stored(spotify)


def test_provider_down_during_the_exchange(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    callback = consent(browser, authorize)
    httpx.post(f"{spotify.emulators['spotify']}/_control/faults", json={"mode": "500", "count": 1, "kind": "token"}).raise_for_status()
    refused(browser.get(callback), "provider_unavailable", 502)
    nothing_stored(spotify)


def test_origin_is_never_a_wildcard(spotify: Authpipe, browser: httpx.Client) -> None:
    for origin in ("*", "https://app.example.com/path", "javascript:alert(1)", "null"):
        response = spotify.api.post("/v1/connect-sessions", json={"tenant_id": "t", "user_id": "u", "origin": origin})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", origin
    _, authorize = start(spotify, browser, origin="https://app.example.com:8443")
    page = browser.get(consent(browser, authorize))
    assert result_of(page.text)["origin"] == "https://app.example.com:8443"
    script = httpx.get(f"{spotify.url}/static/connect-result.js").text
    assert script.count("postMessage(") == 1 and "postMessage(data.message, data.origin)" in script


def test_return_url_comes_only_from_the_session(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser, return_url="https://app.example.com/done?x=1")
    sneaky = consent(browser, authorize) + "&return_url=https://evil.example&redirect_uri=https%3A%2F%2Fevil.example"
    page = browser.get(sneaky)  # parameters the callback does not expect are ignored, never followed
    assert result_of(page.text)["returnUrl"].startswith("https://app.example.com/done?x=1&connection_id=conn_")
    assert "evil.example" not in page.text
    for bad in ("javascript:alert(1)", "//evil.example", "/relative", "ftp://x.example"):
        response = spotify.api.post("/v1/connect-sessions", json={"tenant_id": "t", "user_id": "u", "return_url": bad})
        assert response.status_code == 400, bad


def test_result_page_goes_to_the_session_return_url(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser, return_url="https://app.example.com/done?x=1")
    page = browser.get(consent(browser, authorize) + "&return_url=https://evil.example")
    data = result_of(page.text)
    connection_id = data["message"]["connection"]["id"]
    assert data["returnUrl"] == f"https://app.example.com/done?x=1&connection_id={connection_id}"
    assert "evil.example" not in page.text


@pytest.mark.parametrize(
    ("path", "code", "status"),
    [
        ("/oauth/callback", "invalid_state", 400),
        ("/oauth/callback?state=" + "x" * 5000 + "&code=abc", "invalid_state", 400),
        ("/oauth/callback?state=a&state=b&code=c", "invalid_request", 400),
        ("/oauth/callback?error=access_denied", "invalid_state", 400),
        ("/connect", "missing_session", 400),
        ("/connect?session=" + "x" * 5000, "invalid_session", 400),
        ("/connect?session=ap_cs_unknown", "invalid_session", 404),
        ("/connect/NOT%20A%20PROVIDER?session=ap_cs_x", "provider_not_found", 404),
        ("/connect/spotify?session=%00%ff", "invalid_request", 400),  # refused by the input guard (NUL)
    ],
)
def test_malformed_requests(spotify: Authpipe, path: str, code: str, status: int) -> None:
    refused(httpx.get(spotify.url + path), code, status)
    nothing_stored(spotify)


def test_oversized_code_with_a_valid_state(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    params = query(consent(browser, authorize)) | {"code": "c" * 5000}
    refused(browser.get(f"{spotify.url}/oauth/callback?{urlencode(params)}"), "invalid_request")
    nothing_stored(spotify)


def test_provider_not_allowed_by_the_session(spotify: Authpipe) -> None:
    spotify.configure("buffer")
    created = spotify.session(allowed_providers=["buffer"])
    refused(httpx.get(f"{spotify.url}/connect/spotify", params={"session": created["token"]}), "provider_not_allowed", 403)
    page = httpx.get(created["connect_url"]).text
    assert "/connect/buffer?" in page and "/connect/spotify?" not in page


def test_tokens_never_reach_the_browser(spotify: Authpipe, browser: httpx.Client) -> None:
    _, authorize = start(spotify, browser)
    page = browser.get(consent(browser, authorize))
    connection = result_of(page.text)["message"]["connection"]
    assert set(connection) == {
        "id", "provider", "tenant_id", "user_id", "status", "account", "resources", "scopes",
        "expires_at", "created_at", "last_refreshed_at", "last_checked_at", "last_error",
    }
    assert "access_token" not in page.text and "refresh_token" not in page.text
