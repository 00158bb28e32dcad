"""The Bluesky emulator over real HTTP: app-password sessions, JWT shape and errors, refresh
rotation with its grace period, app-password revocation, identity resolution and profiles."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from authpipe_server.emulators import bluesky, serve_in_thread

XRPC = "/xrpc"
HANDLE, DID, APP_PASSWORD = "sandbox.test", "did:plc:sandboxuseraaaaaaaaaaaaa", "sand-boxa-ppps-swrd"


def claims(jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = jwt.split(".")
    assert len(parts) == 3
    header, payload = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2])
    return header, payload


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_session(emu: Any, identifier: str = HANDLE, password: str = APP_PASSWORD) -> Any:
    return emu.http.post(
        f"{XRPC}/com.atproto.server.createSession", json={"identifier": identifier, "password": password}
    )


def refresh_session(emu: Any, refresh_jwt: str) -> Any:
    return emu.http.post(f"{XRPC}/com.atproto.server.refreshSession", headers=bearer(refresh_jwt))


def get_session(emu: Any, access_jwt: str) -> Any:
    return emu.http.get(f"{XRPC}/com.atproto.server.getSession", headers=bearer(access_jwt))


def test_create_session_with_an_app_password(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    response = create_session(emu)
    assert response.status_code == 200
    session = response.json()
    assert session["did"] == DID and session["handle"] == HANDLE and session["active"] is True
    assert session["email"] == "sandbox@example.com"
    pds = next(s for s in session["didDoc"]["service"] if s["id"] == "#atproto_pds")
    assert pds == {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": emu.base_url}

    header, access = claims(session["accessJwt"])
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    assert access["scope"] == "com.atproto.appPass" and access["sub"] == DID and access["typ"] == "at+jwt"
    assert access["exp"] - access["iat"] == 120 * 60
    header, refresh = claims(session["refreshJwt"])
    assert header["typ"] == "refresh+jwt" and refresh["scope"] == "com.atproto.refresh" and refresh["jti"]
    assert refresh["exp"] - refresh["iat"] == 90 * 86400

    assert get_session(emu, session["accessJwt"]).json()["did"] == DID
    by_did = create_session(emu, identifier=DID).json()
    by_email = create_session(emu, identifier="SANDBOX@example.com").json()
    assert by_did["did"] == by_email["did"] == DID


def test_account_password_and_privileged_app_password_scopes(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    full = create_session(emu, password="sandbox-password").json()
    assert claims(full["accessJwt"])[1]["scope"] == "com.atproto.access"
    privileged = create_session(emu, identifier="second.test", password="seco-ndap-ppas-swrd").json()
    assert claims(privileged["accessJwt"])[1]["scope"] == "com.atproto.appPassPrivileged"


def test_wrong_password_is_401_authentication_required(bluesky_emu: Any) -> None:
    for identifier, password in ((HANDLE, "aaaa-bbbb-cccc-dddd"), ("nobody.test", APP_PASSWORD)):
        response = create_session(bluesky_emu, identifier, password)
        assert response.status_code == 401
        assert response.json() == {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}


def test_refresh_rotates_with_a_two_hour_grace(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    first = create_session(emu).json()
    second = refresh_session(emu, first["refreshJwt"])
    assert second.status_code == 200
    second = second.json()
    assert claims(second["refreshJwt"])[1]["jti"] != claims(first["refreshJwt"])[1]["jti"]
    assert get_session(emu, second["accessJwt"]).status_code == 200

    emu.advance(3600)
    again = refresh_session(emu, first["refreshJwt"]).json()  # within the grace: the same next id
    assert claims(again["refreshJwt"])[1]["jti"] == claims(second["refreshJwt"])[1]["jti"]

    emu.advance(3601)
    revoked = refresh_session(emu, first["refreshJwt"])
    assert revoked.status_code == 400
    assert revoked.json() == {"error": "ExpiredToken", "message": "Token has been revoked"}
    assert refresh_session(emu, second["refreshJwt"]).status_code == 200


def test_expired_access_jwt_is_400_expired_token(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    session = create_session(emu).json()
    emu.advance(120 * 60)
    expired = get_session(emu, session["accessJwt"])
    assert expired.status_code == 400 and expired.json() == {"error": "ExpiredToken", "message": "Token has expired"}
    renewed = refresh_session(emu, session["refreshJwt"]).json()
    assert get_session(emu, renewed["accessJwt"]).status_code == 200


def test_revoked_app_password_keeps_access_jwts_but_not_refresh(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    session = create_session(emu).json()
    revoked = emu.control("DELETE", f"/users/{HANDLE}/app-passwords/authpipe")
    assert revoked == {"revoked": "authpipe", "deleted_refresh_tokens": 1}

    assert get_session(emu, session["accessJwt"]).status_code == 200  # stateless until exp
    refused = refresh_session(emu, session["refreshJwt"])
    assert refused.status_code == 400 and refused.json() == {
        "error": "ExpiredToken",
        "message": "Token has been revoked",
    }
    assert create_session(emu).status_code == 401
    emu.advance(120 * 60)
    assert get_session(emu, session["accessJwt"]).json()["error"] == "ExpiredToken"


def test_new_app_password_through_the_control_api(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    created = emu.control("POST", f"/users/{DID}/app-passwords", {"name": "ci"}, status=201)
    assert created["name"] == "ci" and len(created["password"]) == 19
    assert create_session(emu, password=created["password"]).status_code == 200
    user = emu.control(
        "POST", "/users", {"handle": "new.test", "display_name": "New", "app_passwords": [{"name": "x"}]}
    )
    assert user["did"].startswith("did:plc:") and len(user["did"]) == 32
    assert create_session(emu, "new.test", user["app_passwords"][0]["password"]).status_code == 200


def test_token_errors(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    session = create_session(emu).json()
    missing = emu.http.get(f"{XRPC}/com.atproto.server.getSession")
    assert missing.status_code == 401 and missing.json() == {
        "error": "AuthMissing",
        "message": "Authentication Required",
    }
    wrong_kind = get_session(emu, session["refreshJwt"])
    assert wrong_kind.status_code == 400 and wrong_kind.json() == {
        "error": "InvalidToken",
        "message": "Bad token scope",
    }
    assert refresh_session(emu, session["accessJwt"]).json()["error"] == "InvalidToken"
    head, payload, _ = session["accessJwt"].split(".")
    forged = get_session(emu, f"{head}.{payload}.{'A' * 43}")
    assert forged.status_code == 400 and forged.json() == {
        "error": "InvalidToken",
        "message": "Token could not be verified",
    }


def test_delete_session_revokes_the_refresh_token(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    session = create_session(emu).json()
    deleted = emu.http.post(f"{XRPC}/com.atproto.server.deleteSession", headers=bearer(session["refreshJwt"]))
    assert deleted.status_code == 200
    assert refresh_session(emu, session["refreshJwt"]).json() == {
        "error": "ExpiredToken",
        "message": "Token has been revoked",
    }
    assert emu.counts() == {"authorize": 0, "token": 1, "refresh": 1, "api": 0, "revoke": 1}


def test_identity_and_profile(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    resolved = emu.http.get(f"{XRPC}/com.atproto.identity.resolveHandle", params={"handle": HANDLE})
    assert resolved.json() == {"did": DID}
    unknown = emu.http.get(f"{XRPC}/com.atproto.identity.resolveHandle", params={"handle": "nobody.test"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "InvalidRequest"

    document = emu.http.get(f"/plc/{DID}").json()
    assert document["id"] == DID and document["alsoKnownAs"] == [f"at://{HANDLE}"]
    assert document["service"] == [
        {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": emu.base_url}
    ]
    assert document["verificationMethod"][0]["publicKeyMultibase"].startswith("zQ3s")
    assert emu.http.get("/plc/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").status_code == 404

    session = create_session(emu).json()
    profile = emu.http.get(
        f"{XRPC}/app.bsky.actor.getProfile", params={"actor": DID}, headers=bearer(session["accessJwt"])
    )
    assert profile.json()["displayName"] == "Sandbox User" and profile.json()["handle"] == HANDLE
    assert emu.http.get(f"{XRPC}/com.atproto.repo.listRecords").status_code == 501


def test_a_did_web_account(bluesky_emu: Any) -> None:
    """A did:web account (capitals and a %3A port kept exactly): sessions and handle resolution
    work; the PLC directory does not know it (its document is its host's to serve)."""
    emu = bluesky_emu
    did = "did:web:Alice.example%3A8443"
    emu.control("POST", "/users", {"handle": "alice.test", "did": did, "app_passwords": [{"name": "x", "password": APP_PASSWORD}]})
    session = create_session(emu, identifier=did).json()
    assert session["did"] == did and session["didDoc"]["id"] == did
    assert session["didDoc"]["alsoKnownAs"] == ["at://alice.test"]
    resolved = emu.http.get(f"{XRPC}/com.atproto.identity.resolveHandle", params={"handle": "alice.test"})
    assert resolved.json() == {"did": did}
    assert create_session(emu, identifier=did.lower()).status_code == 401  # a DID is matched exactly
    assert emu.http.get(f"/plc/{did}").status_code == 404


def test_rate_limit_shape(bluesky_emu: Any) -> None:
    emu = bluesky_emu
    emu.fault("429", kind="token", retry_after=30)
    limited = create_session(emu)
    assert limited.status_code == 429
    assert limited.json() == {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
    assert limited.headers["RateLimit-Remaining"] == "0" and limited.headers["RateLimit-Policy"] == "30;w=300"
    reset_at = int(limited.headers["RateLimit-Reset"])
    now = emu.control("GET", "/time")["now"]
    assert 25 <= reset_at - now <= 31 and limited.headers["Retry-After"] == "30"
    assert create_session(emu).status_code == 200


def test_base_url_option_sets_the_pds_endpoint() -> None:
    with serve_in_thread(bluesky.create_app(base_url="https://pds.example.test/")) as url:
        response = httpx.post(
            f"{url}{XRPC}/com.atproto.server.createSession", json={"identifier": HANDLE, "password": APP_PASSWORD}
        )
        assert response.json()["didDoc"]["service"][0]["serviceEndpoint"] == "https://pds.example.test"
