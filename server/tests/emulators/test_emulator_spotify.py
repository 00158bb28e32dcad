"""The Spotify emulator over real HTTP: the authorization code flow with and without PKCE, the
token endpoint's errors, both refresh-token regimes, and GET /v1/me with its errors."""

from __future__ import annotations

import base64
from typing import Any

AUTHORIZE = "/accounts/authorize"
TOKEN = "/accounts/api/token"
ME = "/api/v1/me"
CLIENT, SECRET = "spotify-app", "spotify-secret"
SIX_MONTHS = 180 * 86400


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def authorize_params(
    emu: Any, challenge: str | None = None, scope: str = "user-read-email user-read-private"
) -> dict[str, str]:
    params = {
        "client_id": CLIENT,
        "response_type": "code",
        "redirect_uri": emu.CALLBACK,
        "scope": scope,
        "state": "st4te",
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params


def pkce_tokens(emu: Any, user: str = "sandbox_user") -> dict[str, Any]:
    emu.register_app(CLIENT, SECRET)
    verifier, challenge = emu.pkce_pair()
    callback = emu.consent(AUTHORIZE, authorize_params(emu, challenge), user=user)
    response = emu.http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": emu.CALLBACK,
            "client_id": CLIENT,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(emu: Any, refresh_token: str) -> Any:
    return emu.http.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT}
    )


def test_pkce_flow_from_consent_page_to_profile(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.register_app(CLIENT, SECRET)
    verifier, challenge = emu.pkce_pair()
    params = authorize_params(emu, challenge)

    page = emu.http.get(AUTHORIZE, params=params)
    assert page.status_code == 200
    assert "App spotify-app" in page.text and "user-read-email" in page.text and 'value="sandbox_user"' in page.text

    callback = emu.consent(AUTHORIZE, params, user="sandbox_user")
    assert callback["state"] == "st4te" and callback["code"]
    response = emu.http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": emu.CALLBACK,
            "client_id": CLIENT,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["scope"] == "user-read-email user-read-private" and tokens["refresh_token"]

    me = emu.http.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    profile = me.json()
    assert profile["id"] == "sandbox_user" and profile["display_name"] == "Sandbox User"
    assert profile["type"] == "user" and profile["uri"] == "spotify:user:sandbox_user" and profile["account_id"]
    assert profile["email"] == "sandbox@example.com" and profile["country"] == "US"


def test_confidential_client_authenticates_with_basic(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.register_app(CLIENT, SECRET)

    def exchange(headers: dict[str, str], data: dict[str, str]) -> Any:
        callback = emu.consent(AUTHORIZE, authorize_params(emu), user="sandbox_user")
        body = {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": emu.CALLBACK} | data
        return emu.http.post(TOKEN, headers=headers, data=body)

    assert exchange(basic(CLIENT, SECRET), {}).status_code == 200
    wrong = exchange(basic(CLIENT, "nope"), {})
    assert (wrong.status_code, wrong.json()) == (
        400,
        {"error": "invalid_client", "error_description": "Invalid client secret"},
    )
    # A secret in the body is not how Spotify authenticates a client.
    in_body = exchange({}, {"client_id": CLIENT, "client_secret": SECRET})
    assert (in_body.status_code, in_body.json()["error"]) == (400, "invalid_client")


def test_wrong_code_verifier_is_invalid_grant(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.register_app(CLIENT, SECRET)
    _, challenge = emu.pkce_pair()
    callback = emu.consent(AUTHORIZE, authorize_params(emu, challenge), user="sandbox_user")
    other_verifier, _ = emu.pkce_pair()
    response = emu.http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": emu.CALLBACK,
            "client_id": CLIENT,
            "code_verifier": other_verifier,
        },
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_code_exchange_needs_the_same_redirect_uri_and_works_once(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.register_app(CLIENT, SECRET)
    callback = emu.consent(AUTHORIZE, authorize_params(emu), user="sandbox_user")
    data = {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": emu.CALLBACK + "/"}
    mismatch = emu.http.post(TOKEN, headers=basic(CLIENT, SECRET), data=data)
    assert mismatch.json() == {"error": "invalid_grant", "error_description": "Invalid redirect URI"}

    data["redirect_uri"] = emu.CALLBACK
    assert emu.http.post(TOKEN, headers=basic(CLIENT, SECRET), data=data).status_code == 200
    again = emu.http.post(TOKEN, headers=basic(CLIENT, SECRET), data=data)
    assert (again.status_code, again.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid authorization code"},
    )


def test_codes_expire(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.register_app(CLIENT, SECRET)
    emu.settings(code_ttl=30)
    callback = emu.consent(AUTHORIZE, authorize_params(emu), user="sandbox_user")
    emu.advance(31)
    data = {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": emu.CALLBACK}
    response = emu.http.post(TOKEN, headers=basic(CLIENT, SECRET), data=data)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_authorize_refuses_unregistered_redirect_uris_and_localhost(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.register_app(CLIENT, SECRET)
    other = authorize_params(emu) | {"redirect_uri": "http://127.0.0.1:8080/elsewhere"}
    page = emu.http.get(AUTHORIZE, params=other)
    assert page.status_code == 400 and "INVALID_CLIENT: Invalid redirect URI" in page.text

    sandbox = {"client_id": "sandbox-client", "response_type": "code", "scope": "user-read-email"}
    assert emu.http.get(AUTHORIZE, params=sandbox | {"redirect_uri": "http://127.0.0.1:51234/cb"}).status_code == 200
    assert emu.http.get(AUTHORIZE, params=sandbox | {"redirect_uri": "http://[::1]:51234/cb"}).status_code == 200
    assert emu.http.get(AUTHORIZE, params=sandbox | {"redirect_uri": "http://localhost:51234/cb"}).status_code == 400
    refused = emu.http.post("/_control/apps", json={"client_id": "x", "redirect_uris": ["http://localhost:1/cb"]})
    assert refused.status_code == 400


def test_unknown_scope_and_denial_redirect_with_an_error(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.register_app(CLIENT, SECRET)
    bad_scope = emu.http.get(AUTHORIZE, params=authorize_params(emu, scope="user-read-email,streaming"))
    assert emu.query_of(bad_scope.headers["location"]) == {"error": "invalid_scope", "state": "st4te"}
    denied = emu.consent(AUTHORIZE, authorize_params(emu), user="sandbox_user", decision="deny")
    assert denied == {"error": "access_denied", "state": "st4te"}


def test_no_rotate_refresh_returns_no_refresh_token_and_expires_six_months_after_authorization(
    spotify_emu: Any,
) -> None:
    emu = spotify_emu
    assert emu.control("GET", "/settings")["refresh_mode"] == "no-rotate"
    tokens = pkce_tokens(emu)
    for _ in range(2):
        emu.advance(SIX_MONTHS / 2 - 10)
        refreshed = refresh(emu, tokens["refresh_token"])
        assert refreshed.status_code == 200
        assert "refresh_token" not in refreshed.json()
        assert refreshed.json()["scope"] == "user-read-email user-read-private"
    emu.advance(30)
    expired = refresh(emu, tokens["refresh_token"])
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_rotate_refresh_tokens_are_single_use(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.settings(refresh_mode="rotate")
    tokens = pkce_tokens(emu)
    first = refresh(emu, tokens["refresh_token"])
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != tokens["refresh_token"]
    reused = refresh(emu, tokens["refresh_token"])
    assert reused.json() == {"error": "invalid_grant", "error_description": "Refresh token revoked"}
    assert refresh(emu, rotated).status_code == 200


def test_web_api_token_errors(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = pkce_tokens(emu)
    missing = emu.http.get(ME)
    assert (missing.status_code, missing.json()) == (401, {"error": {"status": 401, "message": "No token provided"}})
    assert emu.http.get(ME, headers=bearer("garbage")).json()["error"]["message"] == "Invalid access token"
    emu.advance(3600)
    expired = emu.http.get(ME, headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401 and expired.json()["error"]["message"] == "The access token expired"
    renewed = refresh(emu, tokens["refresh_token"]).json()
    assert emu.http.get(ME, headers=bearer(renewed["access_token"])).status_code == 200


def test_revoked_grant(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = pkce_tokens(emu)
    assert emu.control("POST", "/revoke", {"user_id": "sandbox_user", "client_id": CLIENT}) == {"revoked_grants": 1}
    refused = refresh(emu, tokens["refresh_token"])
    assert refused.json() == {"error": "invalid_grant", "error_description": "Refresh token revoked"}
    me = emu.http.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 401 and me.json()["error"]["message"] == "Invalid access token"


def test_user_outside_the_development_mode_allow_list_gets_403(spotify_emu: Any) -> None:
    emu = spotify_emu
    emu.control("POST", "/users", {"id": "stranger", "display_name": "Stranger", "allowlisted": False})
    tokens = pkce_tokens(emu, user="stranger")
    me = emu.http.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 403
    assert me.json()["error"]["message"] == "User not registered in the Developer Dashboard"


def test_rate_limits_in_each_surface_shape(spotify_emu: Any) -> None:
    emu = spotify_emu
    tokens = pkce_tokens(emu)
    emu.fault("429", kind="api", retry_after=7)
    limited = emu.http.get(ME, headers=bearer(tokens["access_token"]))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert emu.http.get(ME, headers=bearer(tokens["access_token"])).status_code == 200

    emu.fault("429", kind="refresh", retry_after=3)
    limited = refresh(emu, tokens["refresh_token"])
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert isinstance(limited.json()["error"], str)
