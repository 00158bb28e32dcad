"""From connect session to a stored, encrypted connection, for each provider, over real HTTP:
Authpipe and the emulators are real servers; the test plays the browser."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Authpipe, FormParser, consent, new_browser, query, result_of


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def connect_oauth(authpipe: Authpipe, provider: str, *, user: str | None = None, status: int = 200, **session: Any) -> dict[str, Any]:
    """Click Connect, consent at the provider, follow the redirect back (all in one browser): the
    result page's outcome."""
    created = authpipe.session(**session)
    with new_browser() as browser:
        page = browser.get(created["connect_url"])
        assert page.status_code == 200 and f"/connect/{provider}?session=" in page.text
        start = browser.get(f"{authpipe.url}/connect/{provider}", params={"session": created["token"]})
        assert start.status_code == 302, start.text
        back = consent(browser, start.headers["location"], user=user)
        assert back.startswith(f"{authpipe.url}/oauth/callback?")
        result = browser.get(back)
    outcome = result_of(result.text)
    assert result.status_code == status, outcome
    return outcome


def stored(authpipe: Authpipe, outcome: dict[str, Any]) -> dict[str, Any]:
    assert outcome["message"]["ok"] is True, outcome
    connection = outcome["message"]["connection"]
    fetched = authpipe.api.get(f"/v1/connections/{connection['id']}").json()
    assert fetched == connection
    assert fetched["status"] == "active" and fetched["tenant_id"] == "org_acme" and fetched["user_id"] == "user_123"
    return dict(fetched)


def expires_in(connection: dict[str, Any]) -> float:
    return (parse_time(connection["expires_at"]) - datetime.now(timezone.utc)).total_seconds()


def test_spotify(authpipe: Authpipe) -> None:
    authpipe.configure("spotify", scopes=["user-read-email", "playlist-read-private"])
    created = authpipe.session()
    start = httpx.get(f"{authpipe.url}/connect/spotify", params={"session": created["token"]})
    params = query(start.headers["location"])
    assert params["response_type"] == "code" and params["client_id"] == "sandbox-client"
    assert params["redirect_uri"] == f"{authpipe.url}/oauth/callback"
    assert params["scope"] == "user-read-email playlist-read-private"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43  # 256 bits, base64url

    connection = stored(authpipe, connect_oauth(authpipe, "spotify", user="sandbox_user"))
    assert connection["provider"] == "spotify"
    assert connection["account"]["name"] == "Sandbox User" and connection["account"]["id"]
    assert connection["scopes"] == ["user-read-email", "playlist-read-private"]
    assert 3500 < expires_in(connection) <= 3600


def test_second_connect_updates_the_same_connection(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    first = stored(authpipe, connect_oauth(authpipe, "spotify", user="sandbox_user"))
    second = stored(authpipe, connect_oauth(authpipe, "spotify", user="second_user"))
    assert second["id"] == first["id"] and second["account"]["name"] == "Second User"
    assert len(authpipe.api.get("/v1/connections").json()["connections"]) == 1


def test_facebook_long_lived_token_and_pages(authpipe: Authpipe) -> None:
    authpipe.configure("facebook", scopes=["public_profile", "pages_show_list"])
    connection = stored(authpipe, connect_oauth(authpipe, "facebook", user="100000000000001"))
    assert connection["account"] == {"id": "100000000000001", "name": "Sandbox User"}
    assert expires_in(connection) > 50 * 86400  # made long-lived (≈60 days), not the 1-2 h short token
    assert {"id": "page:200000000000001", "name": "Sandbox Page"} in connection["resources"]
    assert {"id": "page:200000000000002", "name": "Second Sandbox Page"} in connection["resources"]
    assert connection["scopes"] == ["public_profile", "pages_show_list"]


def test_instagram_account_through_facebook_login(authpipe: Authpipe) -> None:
    authpipe.configure("instagram")
    connection = stored(authpipe, connect_oauth(authpipe, "instagram", user="100000000000001"))
    assert connection["account"] == {"id": "17841400000000001", "name": "sandbox.page"}
    assert connection["resources"] == [{"id": "ig:17841400000000001", "name": "sandbox.page"}]


def test_instagram_without_a_linked_account_stores_nothing(authpipe: Authpipe) -> None:
    authpipe.configure("instagram")
    outcome = connect_oauth(authpipe, "instagram", user="100000000000002", status=400)
    assert outcome["message"] == {
        "type": "authpipe:connect",
        "ok": False,
        "code": "no_instagram_account",
        "message": "none of your Facebook Pages has an Instagram professional account linked to it",
    }
    assert authpipe.api.get("/v1/connections").json()["connections"] == []


def test_buffer_with_pkce_and_iss(authpipe: Authpipe, browser: httpx.Client) -> None:
    authpipe.configure("buffer")
    created = authpipe.session()
    start = browser.get(f"{authpipe.url}/connect/buffer", params={"session": created["token"]})
    params = query(start.headers["location"])
    assert params["code_challenge_method"] == "S256" and "offline_access" in params["scope"].split(" ")
    back = consent(browser, start.headers["location"], user="64b7f0c2a1b2c3d4e5f60001")
    assert query(back)["iss"] == f"{authpipe.emulators['buffer']}/auth"
    connection = stored(authpipe, result_of(browser.get(back).text))
    assert connection["account"] == {"id": "64b7f0c2a1b2c3d4e5f60001", "name": "Sandbox User"}
    assert 3500 < expires_in(connection) <= 3600
    assert "offline_access" in connection["scopes"]


def test_bluesky_app_password_form(authpipe: Authpipe, browser: httpx.Client) -> None:
    authpipe.configure("bluesky")
    created = authpipe.session()
    form_page = browser.get(f"{authpipe.url}/connect/bluesky", params={"session": created["token"]})
    assert form_page.status_code == 200 and "App password" in form_page.text
    form = FormParser()
    form.feed(form_page.text)
    assert form.action == "/connect/bluesky" and form.fields["session"] == created["token"]

    wrong = browser.post(f"{authpipe.url}/connect/bluesky", data=form.fields | {"identifier": "sandbox.test", "app_password": "aaaa-bbbb-cccc-dddd"})
    assert wrong.status_code == 400 and "did not accept that handle and app password" in wrong.text
    assert 'value="sandbox.test"' in wrong.text and "aaaa-bbbb-cccc-dddd" not in wrong.text

    malformed = browser.post(f"{authpipe.url}/connect/bluesky", data=form.fields | {"identifier": "sandbox.test", "app_password": "hunter2"})
    assert malformed.status_code == 400 and 'aria-invalid="true"' in malformed.text

    done = browser.post(f"{authpipe.url}/connect/bluesky", data=form.fields | {"identifier": "@sandbox.test", "app_password": "sand-boxa-ppps-swrd"})
    connection = stored(authpipe, result_of(done.text))
    assert connection["account"] == {"id": "did:plc:sandboxuseraaaaaaaaaaaaa", "name": "sandbox.test"}
    assert 7000 < expires_in(connection) <= 7200  # accessJwt: 120 minutes


def test_bluesky_from_the_server_side(authpipe: Authpipe) -> None:
    authpipe.configure("bluesky")
    body = {"provider": "bluesky", "tenant_id": "org_acme", "user_id": "user_9", "identifier": "did:plc:sandboxuseraaaaaaaaaaaaa"}
    refused = authpipe.api.post("/v1/connections", json=body | {"app_password": "aaaa-bbbb-cccc-dddd"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "provider_rejected_credentials"
    created = authpipe.api.post("/v1/connections", json=body | {"app_password": "sand-boxa-ppps-swrd"})
    assert created.status_code == 201, created.text
    assert created.json()["account"]["name"] == "sandbox.test"
    again = authpipe.api.post("/v1/connections", json=body | {"app_password": "sand-boxa-ppps-swrd"})
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]


def test_custom_oauth2_provider(authpipe: Authpipe) -> None:
    """A custom provider declared through the API; Buffer's emulator plays a generic OAuth 2.0
    server with a userinfo endpoint."""
    emulator = authpipe.emulators["buffer"]
    declared = authpipe.api.put(
        "/v1/providers/acme-oauth",
        json={
            "auth_mode": "oauth2",
            "display_name": "Acme",
            "authorization_url": f"{emulator}/auth/auth",
            "token_url": f"{emulator}/auth/token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "scopes": ["account:read", "offline_access"],
            "scope_separator": " ",
            "token_auth": "client_secret_post",
            "pkce": True,
            "userinfo_url": f"{emulator}/auth/me",
            "revocation_url": f"{emulator}/auth/token/revocation",
            "account_id_field": "sub",
            "issuer": f"{emulator}/auth",
        },
    )
    assert declared.status_code == 200, declared.text
    assert declared.json()["configured"] is True and "sandbox-secret" not in declared.text
    listed = authpipe.api.get("/v1/providers").json()["providers"]
    assert any(p["name"] == "acme-oauth" and p["display_name"] == "Acme" for p in listed)
    connection = stored(authpipe, connect_oauth(authpipe, "acme-oauth", user="64b7f0c2a1b2c3d4e5f60001"))
    assert connection["account"]["id"] == "64b7f0c2a1b2c3d4e5f60001"
    assert connection["scopes"] == ["account:read", "offline_access"]

    deleted = authpipe.api.delete(f"/v1/connections/{connection['id']}")
    assert deleted.status_code == 204
    counts = httpx.get(f"{emulator}/_control/counts").json()
    assert counts["revoke"] == 1
    assert authpipe.api.get(f"/v1/connections/{connection['id']}").status_code == 404


def test_imported_tokens_are_checked_with_the_provider(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    body = {"provider": "spotify", "tenant_id": "org_acme", "user_id": "user_1", "access_token": "not-a-real-token"}
    refused = authpipe.api.post("/v1/connections", json=body)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "provider_rejected_credentials"
    assert "not-a-real-token" not in refused.text
    assert authpipe.api.get("/v1/connections").json()["connections"] == []


@pytest.mark.parametrize("provider", ["spotify", "facebook", "instagram", "buffer", "bluesky"])
def test_catalog_lists_every_provider_with_scopes_in_words(authpipe: Authpipe, provider: str) -> None:
    listed = {p["name"]: p for p in authpipe.api.get("/v1/providers").json()["providers"]}
    entry = listed[provider]
    assert entry["scopes"] and all(s["description"] for s in entry["scopes"])
    assert entry["configured"] is (provider == "bluesky")
    if provider == "spotify":
        names = [s["name"] for s in entry["scopes"]]
        assert names[:10] == [
            "ugc-image-upload", "user-read-playback-state", "user-modify-playback-state", "user-read-currently-playing",
            "app-remote-control", "streaming", "playlist-read-private", "playlist-read-collaborative",
            "playlist-modify-private", "playlist-modify-public",
        ]
        assert len(names) >= 19
