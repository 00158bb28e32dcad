"""Provider apps and connect sessions over the API: configuration, secrets never returned, and
bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ProviderApp

SECRET = "s3cr3t-client-secret-value"


def auth(project: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {project[1]}"}


async def test_configure_a_catalog_provider(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    body = {"client_id": "abc", "client_secret": SECRET, "scopes": ["user-read-email"], "overrides": {"api_base_url": "http://127.0.0.1:9/api"}}
    response = await api.put("/v1/providers/spotify", json=body, headers=auth(project))
    assert response.status_code == 200 and response.json()["configured"] is True
    assert SECRET not in response.text
    listed = (await api.get("/v1/providers", headers=auth(project))).json()["providers"]
    assert {p["name"]: p["configured"] for p in listed} == {
        "bluesky": True, "buffer": False, "facebook": False, "instagram": False, "spotify": True,
    }
    assert SECRET not in str(listed)
    async with runtime.db.sessions() as session:
        app = await session.scalar(select(ProviderApp))
    assert app is not None and app.client_secret is not None and SECRET.encode() not in app.client_secret
    # Re-configuring without a secret keeps the stored one.
    again = await api.put("/v1/providers/spotify", json={"client_id": "abc"}, headers=auth(project))
    assert again.status_code == 200
    async with runtime.db.sessions() as session:
        kept = await session.scalar(select(ProviderApp))
    assert kept is not None and kept.client_secret == app.client_secret


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("spotify", {"client_id": "a", "scopes": ["no-such-scope"]}, 400),
        ("spotify", {"client_secret": "x"}, 400),
        ("spotify", {"client_id": "a", "overrides": {"token_url": "javascript:alert(1)"}}, 400),
        ("spotify", {"client_id": "a", "overrides": {"evil": "http://x"}}, 400),
        ("spotify", {"client_id": "a", "unexpected": 1}, 400),
        ("spotify", {"client_id": 12}, 400),
        ("spotify", {"client_id": "a", "authorization_url": "http://x/auth"}, 400),
        ("spotify", {"client_id": "a" * 600}, 400),
        ("Not_A_Name", {"client_id": "a"}, 400),
        ("unknown", {"client_id": "a"}, 404),
        ("unknown", {"auth_mode": "oauth2", "client_id": "a"}, 400),
        ("unknown", {"auth_mode": "oauth2", "client_id": "a", "authorization_url": "http://x/a", "token_url": "http://x/t"}, 400),
        ("unknown", {"auth_mode": "app_password", "client_id": "a"}, 400),
    ],
)
async def test_bad_provider_bodies(api: httpx.AsyncClient, project: tuple[str, str], name: str, body: dict[str, Any], status: int) -> None:
    response = await api.put(f"/v1/providers/{name}", json=body, headers=auth(project))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in ("invalid_request", "provider_not_found")


async def test_malformed_json_is_400(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    response = await api.put("/v1/providers/spotify", content=b"{not json", headers=auth(project) | {"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"tenant_id": "org acme", "user_id": "u"}, 400, "invalid_request"),
        ({"tenant_id": "t" * 257, "user_id": "u"}, 400, "invalid_request"),
        ({"tenant_id": "t"}, 400, "invalid_request"),
        ({"tenant_id": "t", "user_id": "u", "allowed_providers": []}, 400, "invalid_request"),
        ({"tenant_id": "t", "user_id": "u", "allowed_providers": ["nope"]}, 404, "provider_not_found"),
        ({"tenant_id": "t", "user_id": "u", "allowed_providers": ["spotify"]}, 409, "provider_not_configured"),
        ({"tenant_id": "t", "user_id": "u", "scopes": {"spotify": ["x"]}}, 409, "provider_not_configured"),
        ({"tenant_id": "t", "user_id": "u", "origin": "*"}, 400, "invalid_request"),
        ({"tenant_id": "t", "user_id": "u", "return_url": "javascript:alert(1)"}, 400, "invalid_request"),
        ({"tenant_id": 5, "user_id": "u"}, 400, "invalid_request"),
    ],
)
async def test_bad_connect_sessions(api: httpx.AsyncClient, project: tuple[str, str], body: dict[str, Any], status: int, code: str) -> None:
    response = await api.post("/v1/connect-sessions", json=body, headers=auth(project))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_connect_session_shape(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    response = await api.post(
        "/v1/connect-sessions",
        json={"tenant_id": "org_acme", "user_id": "user_123", "allowed_providers": ["bluesky"], "origin": "https://app.example.com/"},
        headers=auth(project),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ap_cs_") and len(body["token"]) >= 6 + 43
    assert body["connect_url"] == f"http://127.0.0.1:8080/connect?session={body['token']}"
    assert body["expires_at"].endswith("Z")


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "spotify", "tenant_id": "t", "user_id": "u", "access_token": "x"},
        {"provider": "bluesky", "tenant_id": "t", "user_id": "u", "access_token": "x"},
        {"provider": "bluesky", "tenant_id": "t", "user_id": "u", "identifier": "a.test"},
        {"provider": "nope", "tenant_id": "t", "user_id": "u", "access_token": "x"},
        {"provider": "spotify", "tenant_id": "t", "user_id": "u", "access_token": "x", "expires_at": "yesterday"},
    ],
)
async def test_bad_new_connections(api: httpx.AsyncClient, project: tuple[str, str], body: dict[str, Any]) -> None:
    response = await api.post("/v1/connections", json=body, headers=auth(project))
    assert response.status_code in (400, 404, 409), response.text
    assert "x" != response.json()["error"]["message"]
    expected = {400: "invalid_request", 404: "provider_not_found", 409: "provider_not_configured"}
    assert response.json()["error"]["code"] == expected[response.status_code]


async def test_delete_unknown_connection(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    response = await api.delete("/v1/connections/conn_01M8NB6WCED5VPH3J4FG91MTSD", headers=auth(project))
    assert response.status_code == 404
    assert (await api.delete("/v1/connections/not-an-id", headers=auth(project))).status_code == 400
