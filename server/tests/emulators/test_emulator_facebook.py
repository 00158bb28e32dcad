"""The Facebook emulator over real HTTP: Facebook Login, the code exchange, long-lived tokens,
Page tokens, Instagram business accounts, debug_token and Graph's revoked-token errors."""

from __future__ import annotations

from typing import Any

import pytest

DIALOG = "/www/v22.0/dialog/oauth"
GRAPH = "/graph/v22.0"
CLIENT, SECRET = "1234567890", "fb-secret"
APP_TOKEN = f"{CLIENT}|{SECRET}"
USER_ID, PAGE_ID, SECOND_PAGE_ID, IG_ID = "100000000000001", "200000000000001", "200000000000002", "17841400000000001"
SCOPES = "public_profile,email,pages_show_list,instagram_basic"


def dialog_params(emu: Any, scope: str = SCOPES, **extra: str) -> dict[str, str]:
    return {"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "state": "st4te", "scope": scope} | extra


def short_lived_token(emu: Any, scope: str = SCOPES, extra_form: dict[str, Any] | None = None) -> str:
    emu.register_app(CLIENT, SECRET)
    callback = emu.consent(DIALOG, dialog_params(emu, scope), user=USER_ID, extra=extra_form)
    response = emu.http.post(
        f"{GRAPH}/oauth/access_token",
        data={"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "client_secret": SECRET, "code": callback["code"]},
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def exchange_params(short: str) -> dict[str, str]:
    return {"grant_type": "fb_exchange_token", "client_id": CLIENT, "client_secret": SECRET, "fb_exchange_token": short}


def long_lived_token(emu: Any, short: str) -> dict[str, Any]:
    """Renewal as Authpipe sends it: a POST form body, nothing in the URL."""
    response = emu.http.post(f"{GRAPH}/oauth/access_token", data=exchange_params(short))
    assert response.status_code == 200, response.text
    return response.json()


def debug(emu: Any, token: str) -> dict[str, Any]:
    response = emu.http.get(f"{GRAPH}/debug_token", params={"input_token": token, "access_token": APP_TOKEN})
    assert response.status_code == 200
    return response.json()["data"]


def graph_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    return error


def test_login_exchange_and_long_lived_token(facebook_emu: Any) -> None:
    emu = facebook_emu
    emu.register_app(CLIENT, SECRET)
    page = emu.http.get(DIALOG, params=dialog_params(emu))
    assert page.status_code == 200 and "App 1234567890" in page.text and "pages_show_list" in page.text

    response = emu.http.post(DIALOG, params=dialog_params(emu), data={"user": USER_ID, "decision": "approve"})
    assert response.status_code == 302 and response.headers["location"].endswith("#_=_")
    callback = emu.query_of(response.headers["location"])
    assert callback["state"] == "st4te"
    exchange = emu.http.get(
        f"{GRAPH}/oauth/access_token",
        params={"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "client_secret": SECRET, "code": callback["code"]},
    )
    short = exchange.json()
    assert short["token_type"] == "bearer" and 3600 <= short["expires_in"] <= 7200

    me = emu.http.get(f"{GRAPH}/me", params={"fields": "id,name", "access_token": short["access_token"]})
    assert me.json() == {"id": USER_ID, "name": "Sandbox User"}

    long = long_lived_token(emu, short["access_token"])
    assert long["expires_in"] == 5183944 and long["access_token"] != short["access_token"]
    data = debug(emu, long["access_token"])
    assert data["is_valid"] and data["type"] == "USER" and data["user_id"] == USER_ID and data["app_id"] == CLIENT
    assert data["expires_at"] - data["issued_at"] == 5183944
    assert data["scopes"] == SCOPES.split(",")
    assert {"scope": "pages_show_list", "target_ids": [PAGE_ID, SECOND_PAGE_ID]} in data["granular_scopes"]


def test_any_version_and_bearer_header_are_accepted(facebook_emu: Any) -> None:
    token = short_lived_token(facebook_emu)
    for path in ("/graph/v25.0/me", "/graph/v19.0/me", "/graph/me"):
        response = facebook_emu.http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.json() == {"id": USER_ID, "name": "Sandbox User"}


def test_page_tokens_from_a_long_lived_user_token_never_expire(facebook_emu: Any) -> None:
    emu = facebook_emu
    long = long_lived_token(emu, short_lived_token(emu))["access_token"]
    accounts = emu.http.get(f"{GRAPH}/me/accounts", params={"fields": "name,access_token", "access_token": long}).json()
    assert [(p["id"], p["name"]) for p in accounts["data"]] == [
        (PAGE_ID, "Sandbox Page"),
        (SECOND_PAGE_ID, "Second Sandbox Page"),
    ]
    page_token = accounts["data"][0]["access_token"]

    data = debug(emu, page_token)
    assert data["type"] == "PAGE" and data["profile_id"] == PAGE_ID and data["expires_at"] == 0 and data["is_valid"]
    same = emu.http.get(f"{GRAPH}/{PAGE_ID}", params={"fields": "access_token", "access_token": long}).json()
    assert same["access_token"] == page_token

    emu.advance(5183944 + 10)  # the user token is past its 60 days; the Page token is not
    assert debug(emu, long)["is_valid"] is False
    assert debug(emu, page_token)["is_valid"] is True
    me = emu.http.get(f"{GRAPH}/me", params={"access_token": page_token})
    assert me.json() == {"name": "Sandbox Page", "id": PAGE_ID}


def test_page_token_from_a_short_lived_user_token_expires_with_it(facebook_emu: Any) -> None:
    emu = facebook_emu
    short = short_lived_token(emu)
    page = emu.http.get(f"{GRAPH}/{PAGE_ID}", params={"fields": "access_token,name", "access_token": short}).json()
    data = debug(emu, page["access_token"])
    assert data["expires_at"] > 0 and "issued_at" not in data
    emu.advance(3600)
    assert debug(emu, page["access_token"])["error"]["subcode"] == 463


def test_instagram_business_account_lookup(facebook_emu: Any) -> None:
    emu = facebook_emu
    token = short_lived_token(emu)
    page = emu.http.get(
        f"{GRAPH}/{PAGE_ID}", params={"fields": "access_token,name,instagram_business_account", "access_token": token}
    ).json()
    assert page["instagram_business_account"] == {"id": IG_ID} and page["id"] == PAGE_ID
    without = emu.http.get(
        f"{GRAPH}/{SECOND_PAGE_ID}", params={"fields": "instagram_business_account", "access_token": token}
    )
    assert without.json() == {"id": SECOND_PAGE_ID}

    ig_user = emu.http.get(f"{GRAPH}/{IG_ID}", params={"fields": "username,name", "access_token": token})
    assert ig_user.json() == {"username": "sandbox.page", "name": "Sandbox Page", "id": IG_ID}
    nested = emu.http.get(
        f"{GRAPH}/{PAGE_ID}", params={"fields": "instagram_business_account{username}", "access_token": token}
    ).json()
    assert nested["instagram_business_account"] == {"id": IG_ID, "username": "sandbox.page"}


def test_instagram_lookup_needs_instagram_basic(facebook_emu: Any) -> None:
    token = short_lived_token(facebook_emu, scope="pages_show_list")
    error = graph_error(facebook_emu.http.get(f"{GRAPH}/{IG_ID}", params={"fields": "username", "access_token": token}))
    assert error["code"] == 10


def test_user_created_with_pages_and_instagram(facebook_emu: Any) -> None:
    emu = facebook_emu
    user = emu.control(
        "POST",
        "/users",
        {"name": "Owner", "pages": [{"name": "Shop", "instagram": {"username": "shop.ig", "name": "Shop IG"}}]},
    )
    page_id, ig_id = user["pages"][0]["id"], user["pages"][0]["instagram"]["id"]
    emu.register_app(CLIENT, SECRET)
    callback = emu.consent(DIALOG, dialog_params(emu), user=user["id"])
    token = emu.http.get(
        f"{GRAPH}/oauth/access_token",
        params={"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "client_secret": SECRET, "code": callback["code"]},
    ).json()["access_token"]
    pages = emu.http.get(f"{GRAPH}/me/accounts", params={"access_token": token}).json()["data"]
    assert [page["id"] for page in pages] == [page_id]
    lookup = emu.http.get(f"{GRAPH}/{page_id}", params={"fields": "instagram_business_account", "access_token": token})
    assert lookup.json()["instagram_business_account"] == {"id": ig_id}


def test_debug_token_of_invalid_tokens_is_200_with_is_valid_false(facebook_emu: Any) -> None:
    emu = facebook_emu
    token = short_lived_token(emu)
    garbage = debug(emu, "not-a-token")
    assert garbage == {
        "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
        "is_valid": False,
        "scopes": [],
    }
    emu.advance(3601)
    expired = debug(emu, token)
    assert expired["is_valid"] is False and expired["error"]["code"] == 190 and expired["error"]["subcode"] == 463
    no_app_token = emu.http.get(f"{GRAPH}/debug_token", params={"input_token": token})
    assert graph_error(no_app_token)["code"] == 100


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_access_token_takes_query_parameters_or_a_form_body(facebook_emu: Any, method: str) -> None:
    """Graph reads /oauth/access_token's parameters from a GET query (Meta's guides) or a POST form
    body: the code exchange, the renewal and their errors are the same either way."""
    emu = facebook_emu
    emu.register_app(CLIENT, SECRET)

    def call(params: dict[str, str]) -> Any:
        if method == "GET":
            return emu.http.get(f"{GRAPH}/oauth/access_token", params=params)
        return emu.http.post(f"{GRAPH}/oauth/access_token", data=params)

    code = emu.consent(DIALOG, dialog_params(emu), user=USER_ID)["code"]
    exchange = {"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "client_secret": SECRET, "code": code}
    assert graph_error(call(exchange | {"client_secret": "wrong"}))["code"] == 1
    short = call(exchange)
    assert short.status_code == 200 and short.json()["expires_in"] == 3600
    assert graph_error(call(exchange_params(short.json()["access_token"]) | {"client_secret": "wrong"}))["code"] == 1
    long = call(exchange_params(short.json()["access_token"]))
    assert long.status_code == 200 and long.json()["expires_in"] == 5183944
    assert debug(emu, long.json()["access_token"])["is_valid"] is True
    assert emu.counts()["token"] == 2 and emu.counts()["refresh"] == 2


def test_expired_tokens_cannot_be_exchanged(facebook_emu: Any) -> None:
    emu = facebook_emu
    short = short_lived_token(emu)
    emu.advance(3601)
    response = emu.http.post(f"{GRAPH}/oauth/access_token", data=exchange_params(short))
    error = graph_error(response)
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert error["message"].startswith("Error validating access token: Session has expired on ")
    assert response.headers["WWW-Authenticate"].startswith('OAuth "Facebook Platform" "invalid_token"')


def test_delete_permissions_revokes_the_grant_and_its_page_tokens(facebook_emu: Any) -> None:
    emu = facebook_emu
    long = long_lived_token(emu, short_lived_token(emu))["access_token"]
    page_token = emu.http.get(f"{GRAPH}/me/accounts", params={"access_token": long}).json()["data"][0]["access_token"]
    deleted = emu.http.delete(f"{GRAPH}/me/permissions", params={"access_token": long})
    assert deleted.json() == {"success": True}
    assert emu.counts()["revoke"] == 1

    for token in (long, page_token):
        error = graph_error(emu.http.get(f"{GRAPH}/me", params={"access_token": token}))
        assert (error["code"], error["error_subcode"]) == (190, 458)
        assert error["message"] == f"Error validating access token: The user has not authorized application {CLIENT}."
        data = debug(emu, token)
        assert data["is_valid"] is False and data["expires_at"] == 0 and data["error"]["subcode"] == 458


@pytest.mark.parametrize(("reason", "subcode"), [("password_changed", 460), ("logged_out", 467)])
def test_control_revocation_reasons(facebook_emu: Any, reason: str, subcode: int) -> None:
    emu = facebook_emu
    token = short_lived_token(emu)
    emu.control("POST", "/revoke", {"user_id": USER_ID, "reason": reason})
    error = graph_error(emu.http.get(f"{GRAPH}/me", params={"access_token": token}))
    assert (error["code"], error["error_subcode"]) == (190, subcode)


def test_code_exchange_errors(facebook_emu: Any) -> None:
    emu = facebook_emu
    emu.register_app(CLIENT, SECRET)
    code = emu.consent(DIALOG, dialog_params(emu), user=USER_ID)["code"]
    params = {"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "client_secret": SECRET, "code": code}
    wrong_secret = graph_error(emu.http.get(f"{GRAPH}/oauth/access_token", params=params | {"client_secret": "x"}))
    assert wrong_secret["code"] == 1
    mismatch = graph_error(
        emu.http.get(f"{GRAPH}/oauth/access_token", params=params | {"redirect_uri": emu.CALLBACK + "x"})
    )
    assert (mismatch["code"], mismatch["error_subcode"]) == (100, 36008)
    assert emu.http.get(f"{GRAPH}/oauth/access_token", params=params).status_code == 200
    reused = graph_error(emu.http.get(f"{GRAPH}/oauth/access_token", params=params))
    assert (reused["code"], reused["error_subcode"], reused["message"]) == (
        100,
        36009,
        "This authorization code has been used.",
    )


def test_pkce_is_verified_when_the_dialog_had_a_challenge(facebook_emu: Any) -> None:
    emu = facebook_emu
    emu.register_app(CLIENT, SECRET)
    verifier, challenge = emu.pkce_pair()
    params = dialog_params(emu, code_challenge=challenge, code_challenge_method="S256")
    code = emu.consent(DIALOG, params, user=USER_ID)["code"]
    exchange = {"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "client_secret": SECRET, "code": code}
    wrong = graph_error(emu.http.get(f"{GRAPH}/oauth/access_token", params=exchange | {"code_verifier": "a" * 43}))
    assert wrong["code"] == 100
    right = emu.http.get(f"{GRAPH}/oauth/access_token", params=exchange | {"code_verifier": verifier})
    assert right.status_code == 200


def test_declined_permissions_and_denial(facebook_emu: Any) -> None:
    emu = facebook_emu
    emu.register_app(CLIENT, SECRET)
    granted_only = {"scope_choice": "1", "granted": ["public_profile", "pages_show_list"]}
    params = dialog_params(emu, response_type="code,granted_scopes")
    callback = emu.consent(DIALOG, params, user=USER_ID, extra=granted_only)
    assert callback["granted_scopes"] == "public_profile,pages_show_list"
    assert callback["denied_scopes"] == "email,instagram_basic"
    token = emu.http.get(
        f"{GRAPH}/oauth/access_token",
        params={"client_id": CLIENT, "redirect_uri": emu.CALLBACK, "client_secret": SECRET, "code": callback["code"]},
    ).json()["access_token"]
    permissions = emu.http.get(f"{GRAPH}/me/permissions", params={"access_token": token}).json()["data"]
    assert {"permission": "email", "status": "declined"} in permissions
    assert {"permission": "pages_show_list", "status": "granted"} in permissions

    denied = emu.consent(DIALOG, dialog_params(emu), user=USER_ID, decision="deny")
    assert denied == {
        "error_reason": "user_denied",
        "error": "access_denied",
        "error_description": "Permissions error.",
        "state": "st4te",
    }


def test_dialog_refuses_unknown_apps_bad_redirects_and_space_separated_scopes(facebook_emu: Any) -> None:
    emu = facebook_emu
    emu.register_app(CLIENT, SECRET)
    unknown = emu.http.get(DIALOG, params=dialog_params(emu) | {"client_id": "999"})
    assert unknown.status_code == 400 and "Invalid App ID" in unknown.text
    blocked = emu.http.get(DIALOG, params=dialog_params(emu) | {"redirect_uri": "https://evil.example/cb"})
    assert blocked.status_code == 400 and "URL Blocked" in blocked.text
    assert emu.http.get("/www/v25.0/dialog/oauth", params=dialog_params(emu)).status_code == 200
    assert emu.http.get("/www/dialog/oauth", params=dialog_params(emu)).status_code == 200
    assert emu.http.get("/www/latest/dialog/oauth", params=dialog_params(emu)).status_code == 404
    spaced = emu.http.get(DIALOG, params=dialog_params(emu, scope="email pages_show_list"))
    assert spaced.status_code == 400 and "Invalid Scopes" in spaced.text


def test_graph_errors_for_missing_and_garbage_tokens_and_unknown_fields(facebook_emu: Any) -> None:
    emu = facebook_emu
    assert graph_error(emu.http.get(f"{GRAPH}/me"))["code"] == 2500
    garbage = graph_error(emu.http.get(f"{GRAPH}/me", params={"access_token": "EAAgarbage"}))
    assert garbage == garbage | {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"}
    token = short_lived_token(emu)
    unknown = graph_error(emu.http.get(f"{GRAPH}/me", params={"fields": "id,shoe_size", "access_token": token}))
    assert unknown["code"] == 100 and "(shoe_size)" in unknown["message"]
    other_user = graph_error(emu.http.get(f"{GRAPH}/100000000000002", params={"access_token": token}))
    assert (other_user["code"], other_user["error_subcode"]) == (100, 33)


def test_rate_limit_is_graph_shaped(facebook_emu: Any) -> None:
    emu = facebook_emu
    token = short_lived_token(emu)
    emu.fault("429", kind="api", retry_after=5)
    limited = emu.http.get(f"{GRAPH}/me", params={"access_token": token})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "5" and "X-App-Usage" in limited.headers
    assert limited.json()["error"]["code"] == 4
    emu.settings(rate_limit_status=400, error_status=401)
    emu.fault("429", kind="api")
    assert emu.http.get(f"{GRAPH}/me", params={"access_token": token}).status_code == 400
    assert emu.http.get(f"{GRAPH}/me", params={"access_token": "EAAgarbage"}).status_code == 401
