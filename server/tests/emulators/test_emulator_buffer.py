"""The Buffer emulator over real HTTP: discovery, the PKCE-only authorization code flow with
`iss` on the callback, single-use rotating refresh tokens (reuse revokes the grant), RFC 7009
revocation, userinfo and the GraphQL account query."""

from __future__ import annotations

from typing import Any

AUTHORIZE = "/auth/auth"
TOKEN = "/auth/token"
CLIENT, SECRET = "buffer-app", "buffer-secret"
ACCOUNT_QUERY = "query { account { id email name timezone organizations { id name } } }"


def authorize_params(
    emu: Any, challenge: str, scope: str = "account:read posts:write offline_access"
) -> dict[str, str]:
    return {
        "client_id": CLIENT,
        "response_type": "code",
        "redirect_uri": emu.CALLBACK,
        "scope": scope,
        "state": "st4te",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "prompt": "consent",
    }


def tokens(emu: Any, scope: str = "account:read posts:write offline_access") -> dict[str, Any]:
    emu.register_app(CLIENT, SECRET)
    verifier, challenge = emu.pkce_pair()
    callback = emu.consent(AUTHORIZE, authorize_params(emu, challenge, scope), user="64b7f0c2a1b2c3d4e5f60001")
    response = emu.http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": emu.CALLBACK,
            "client_id": CLIENT,
            "client_secret": SECRET,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(emu: Any, refresh_token: str) -> Any:
    return emu.http.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT,
            "client_secret": SECRET,
        },
    )


def account(emu: Any, access_token: str, query: str = ACCOUNT_QUERY) -> Any:
    return emu.http.post("/api", json={"query": query}, headers={"Authorization": f"Bearer {access_token}"})


def test_discovery_advertises_the_issuer_and_iss_support(buffer_emu: Any) -> None:
    metadata = buffer_emu.http.get("/auth/.well-known/oauth-authorization-server").json()
    issuer = buffer_emu.base_url + "/auth"
    assert metadata["issuer"] == issuer
    assert metadata["authorization_endpoint"] == issuer + "/auth" and metadata["token_endpoint"] == issuer + "/token"
    assert metadata["revocation_endpoint"] == issuer + "/token/revocation"
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {"client_secret_post", "none"}
    rfc8414 = buffer_emu.http.get("/.well-known/oauth-authorization-server/auth").json()
    assert rfc8414 == metadata


def test_full_flow_with_iss_userinfo_and_graphql(buffer_emu: Any) -> None:
    emu = buffer_emu
    emu.register_app(CLIENT, SECRET)
    verifier, challenge = emu.pkce_pair()
    page = emu.http.get(AUTHORIZE, params=authorize_params(emu, challenge))
    assert page.status_code == 200 and "App buffer-app" in page.text and "offline_access" in page.text
    callback = emu.consent(AUTHORIZE, authorize_params(emu, challenge), user="64b7f0c2a1b2c3d4e5f60001")
    assert callback["state"] == "st4te" and callback["iss"] == emu.base_url + "/auth"

    response = emu.http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": emu.CALLBACK,
            "client_id": CLIENT,
            "client_secret": SECRET,
            "code_verifier": verifier,
        },
    )
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["refresh_token"]
    assert body["scope"] == "account:read posts:write offline_access"

    me = emu.http.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"sub": "64b7f0c2a1b2c3d4e5f60001"}
    result = account(emu, body["access_token"])
    assert result.status_code == 200
    assert result.json() == {
        "data": {
            "account": {
                "id": "64b7f0c2a1b2c3d4e5f60001",
                "email": "sandbox@example.com",
                "name": "Sandbox User",
                "timezone": "Europe/London",
                "organizations": [{"id": "64b7f0c2a1b2c3d4e5f6a001", "name": "Sandbox Organization"}],
            }
        }
    }


def test_public_client_authenticates_with_none(buffer_emu: Any) -> None:
    emu = buffer_emu
    emu.register_app("public-app", None)
    verifier, challenge = emu.pkce_pair()
    params = authorize_params(emu, challenge) | {"client_id": "public-app"}
    code = emu.consent(AUTHORIZE, params, user="64b7f0c2a1b2c3d4e5f60001")["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": emu.CALLBACK, "code_verifier": verifier}
    assert emu.http.post(TOKEN, data=data | {"client_id": "public-app"}).status_code == 200


def test_pkce_is_required_and_verified(buffer_emu: Any) -> None:
    emu = buffer_emu
    emu.register_app(CLIENT, SECRET)
    _, challenge = emu.pkce_pair()
    params = authorize_params(emu, challenge)
    del params["code_challenge"], params["code_challenge_method"]
    refused = emu.http.get(AUTHORIZE, params=params)
    assert refused.status_code == 302
    error = emu.query_of(refused.headers["location"])
    assert error["error"] == "invalid_request" and error["iss"] == emu.base_url + "/auth" and error["state"] == "st4te"

    code = emu.consent(AUTHORIZE, authorize_params(emu, challenge), user="64b7f0c2a1b2c3d4e5f60001")["code"]
    wrong = emu.http.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": emu.CALLBACK,
            "client_id": CLIENT,
            "client_secret": SECRET,
            "code_verifier": emu.pkce_pair()[0],
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_client_authentication_rules(buffer_emu: Any) -> None:
    emu = buffer_emu
    emu.register_app(CLIENT, SECRET)
    verifier, challenge = emu.pkce_pair()
    code = emu.consent(AUTHORIZE, authorize_params(emu, challenge), user="64b7f0c2a1b2c3d4e5f60001")["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": emu.CALLBACK, "code_verifier": verifier}
    basic = emu.http.post(TOKEN, data=data, auth=(CLIENT, SECRET))
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    no_secret = emu.http.post(TOKEN, data=data | {"client_id": CLIENT})
    assert no_secret.status_code == 401 and no_secret.json()["error"] == "invalid_client"


def test_wrong_redirect_uri_reuse_and_expiry_of_codes(buffer_emu: Any) -> None:
    emu = buffer_emu
    emu.register_app(CLIENT, SECRET)
    verifier, challenge = emu.pkce_pair()

    def exchange(code: str, redirect_uri: str = emu.CALLBACK) -> Any:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        return emu.http.post(TOKEN, data=data | {"client_id": CLIENT, "client_secret": SECRET})

    code = emu.consent(AUTHORIZE, authorize_params(emu, challenge), user="64b7f0c2a1b2c3d4e5f60001")["code"]
    assert exchange(code, emu.CALLBACK + "?x=1").json()["error"] == "invalid_grant"
    first = exchange(code)
    assert first.status_code == 200
    assert exchange(code).json()["error"] == "invalid_grant"
    # A replayed code revokes what it was exchanged for.
    assert refresh(emu, first.json()["refresh_token"]).json()["error"] == "invalid_grant"

    code = emu.consent(AUTHORIZE, authorize_params(emu, challenge), user="64b7f0c2a1b2c3d4e5f60001")["code"]
    emu.advance(61)
    assert exchange(code).json() == {"error": "invalid_grant", "error_description": "Authorization code has expired"}


def test_refresh_tokens_rotate_and_reuse_revokes_the_grant(buffer_emu: Any) -> None:
    emu = buffer_emu
    first = tokens(emu)
    second = refresh(emu, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and second["expires_in"] == 3600
    assert account(emu, second["access_token"]).status_code == 200

    reused = refresh(emu, first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # The whole grant is gone: the newest refresh token and every access token.
    assert refresh(emu, second["refresh_token"]).json()["error"] == "invalid_grant"
    dead = account(emu, second["access_token"])
    assert dead.status_code == 401 and dead.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_no_refresh_token_without_offline_access(buffer_emu: Any) -> None:
    body = tokens(buffer_emu, scope="account:read")
    assert "refresh_token" not in body


def test_revocation_endpoint(buffer_emu: Any) -> None:
    emu = buffer_emu
    body = tokens(emu)
    form = {
        "token": body["refresh_token"],
        "token_type_hint": "refresh_token",
        "client_id": CLIENT,
        "client_secret": SECRET,
    }
    revoked = emu.http.post("/auth/token/revocation", data=form)
    assert revoked.status_code == 200
    assert emu.http.post("/auth/token/revocation", data=form | {"token": "unknown"}).status_code == 200
    assert refresh(emu, body["refresh_token"]).json()["error"] == "invalid_grant"
    assert account(emu, body["access_token"]).status_code == 401
    assert emu.counts()["revoke"] == 2


def test_revoked_grant_and_expired_access_token_are_unauthenticated(buffer_emu: Any) -> None:
    emu = buffer_emu
    body = tokens(emu)
    emu.advance(3600)
    expired = account(emu, body["access_token"])
    assert expired.status_code == 401
    renewed = refresh(emu, body["refresh_token"]).json()
    emu.control("POST", "/revoke", {"user_id": "64b7f0c2a1b2c3d4e5f60001"})
    assert account(emu, renewed["access_token"]).status_code == 401
    assert refresh(emu, renewed["refresh_token"]).json()["error"] == "invalid_grant"
    userinfo = emu.http.get("/auth/me", headers={"Authorization": f"Bearer {renewed['access_token']}"})
    assert userinfo.status_code == 401 and userinfo.json()["error"] == "invalid_token"


def test_graphql_errors(buffer_emu: Any) -> None:
    emu = buffer_emu
    anonymous = emu.http.post("/api", json={"query": ACCOUNT_QUERY})
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "errors": [
            {"message": "An authentication JWT or Access Token is required", "extensions": {"code": "UNAUTHENTICATED"}}
        ]
    }
    token = tokens(emu)["access_token"]
    unknown = account(emu, token, "{ account { id shoeSize } }")
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["message"] == 'Cannot query field "shoeSize" on type "Account".'
    assert unknown.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert account(emu, token, "{ channels { id } }").status_code == 400
    assert account(emu, token, "{ account { id ").json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    aliased = account(emu, token, "query Health { me: account { id __typename } }").json()
    assert aliased == {"data": {"me": {"id": "64b7f0c2a1b2c3d4e5f60001", "__typename": "Account"}}}


def test_account_query_needs_account_read(buffer_emu: Any) -> None:
    emu = buffer_emu
    token = tokens(emu, scope="posts:read")["access_token"]
    forbidden = account(emu, token)
    assert forbidden.status_code == 200
    assert forbidden.json()["data"] is None and forbidden.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    emu.settings(account_scope="")
    assert account(emu, token).json()["data"]["account"]["id"] == "64b7f0c2a1b2c3d4e5f60001"


def test_rate_limit_shape(buffer_emu: Any) -> None:
    emu = buffer_emu
    token = tokens(emu)["access_token"]
    emu.fault("429", kind="api", retry_after=9)
    limited = account(emu, token)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "9"
    assert "RateLimit" in limited.headers and "RateLimit-Policy" in limited.headers
    error = limited.json()["errors"][0]
    assert error["extensions"] == {"code": "RATE_LIMIT_EXCEEDED", "window": "15m"}
