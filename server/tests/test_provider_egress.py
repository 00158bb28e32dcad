"""Provider URLs under `AUTHPIPE_EGRESS=public` (what `authpipe serve` runs with): every URL the
server will call is refused at configuration time when it names loopback, link-local, private or
IPv4-mapped addresses, plain http or user:password@; the authorization URL, where only browsers
go, is held to its shape alone. Nothing is saved when a URL is refused.

Public addresses are IP literals (1.1.1.1): they resolve without a DNS server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from authpipe_server.config import Settings, load_settings
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ProviderApp

PUBLIC = "https://1.1.1.1"
REFUSED = [
    ("https://127.0.0.1/oauth", "127.0.0.1 is not a public address"),
    ("https://localhost/oauth", "localhost is not a public address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is not a public address"),
    ("https://10.0.0.1/oauth", "10.0.0.1 is not a public address"),
    ("https://[::1]/oauth", "::1 is not a public address"),
    ("https://[::ffff:127.0.0.1]/oauth", "::ffff:127.0.0.1 is not a public address"),
    ("http://1.1.1.1/oauth", "only https:// URLs may be called"),
    ("https://user:pass@1.1.1.1/oauth", "URLs with user:password@ are refused"),
]


@pytest.fixture
def settings(sqlite_url: str, master_key: str) -> Settings:
    return load_settings({"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": master_key, "AUTHPIPE_EGRESS": "public"})


def auth(project: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {project[1]}"}


def custom(**fields: Any) -> dict[str, Any]:
    return {
        "auth_mode": "oauth2",
        "authorization_url": f"{PUBLIC}/authorize",
        "token_url": f"{PUBLIC}/token",
        "client_id": "client",
        "client_secret": "secret",
    } | fields


async def configured(api: httpx.AsyncClient, project: tuple[str, str]) -> dict[str, bool]:
    listed = (await api.get("/v1/providers", headers=auth(project))).json()["providers"]
    return {p["name"]: p["configured"] for p in listed}


async def saved_apps(runtime: Runtime) -> int:
    async with runtime.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(ProviderApp)) or 0)


def assert_refused(response: httpx.Response, field: str, reason: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field} is refused: ") and reason in error["message"], error


@pytest.mark.parametrize(("url", "reason"), REFUSED)
async def test_custom_token_url_is_refused(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str], url: str, reason: str) -> None:
    response = await api.put("/v1/providers/acme", json=custom(token_url=url), headers=auth(project))
    assert_refused(response, "token_url", reason)
    assert await saved_apps(runtime) == 0


@pytest.mark.parametrize("field", ["userinfo_url", "revocation_url", "api_base_url", "issuer"])
@pytest.mark.parametrize(("url", "reason"), [REFUSED[2], REFUSED[5]])
async def test_every_url_the_server_calls_is_refused(
    api: httpx.AsyncClient, project: tuple[str, str], field: str, url: str, reason: str
) -> None:
    response = await api.put("/v1/providers/acme", json=custom(**{field: url}), headers=auth(project))
    assert_refused(response, field, reason)


@pytest.mark.parametrize(("url", "reason"), [REFUSED[6], REFUSED[7]])
async def test_authorization_url_shape_is_refused(api: httpx.AsyncClient, project: tuple[str, str], url: str, reason: str) -> None:
    response = await api.put("/v1/providers/acme", json=custom(authorization_url=url), headers=auth(project))
    assert_refused(response, "authorization_url", reason)


async def test_public_urls_are_accepted_and_the_authorization_url_is_not_resolved(
    api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]
) -> None:
    """Only browsers follow the authorization URL: a name Authpipe cannot resolve is fine there.
    The declaration is stored with its api_base_url and, having an issuer, requires `iss`."""
    body = custom(
        authorization_url="https://login.intranet.invalid/authorize",
        userinfo_url=f"{PUBLIC}/me",
        revocation_url=f"{PUBLIC}/revoke",
        api_base_url=f"{PUBLIC}/api",
        issuer=PUBLIC,
    )
    response = await api.put("/v1/providers/acme", json=body, headers=auth(project))
    assert response.status_code == 200, response.text
    assert (await configured(api, project))["acme"] is True
    async with runtime.db.sessions() as session:
        app = await session.scalar(select(ProviderApp))
    assert app is not None and app.definition is not None
    assert app.definition["api_base_url"] == f"{PUBLIC}/api" and app.definition["require_iss"] is True


@pytest.mark.parametrize(("url", "reason"), REFUSED)
@pytest.mark.parametrize(("provider", "field"), [("spotify", "token_url"), ("spotify", "api_base_url"), ("bluesky", "plc_url")])
async def test_catalog_overrides_are_refused(
    api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str], provider: str, field: str, url: str, reason: str
) -> None:
    body: dict[str, Any] = {"overrides": {field: url}} | ({"client_id": "client", "client_secret": "secret"} if provider == "spotify" else {})
    response = await api.put(f"/v1/providers/{provider}", json=body, headers=auth(project))
    assert_refused(response, f"overrides.{field}", reason)
    assert await saved_apps(runtime) == 0


async def test_catalog_authorization_url_override_is_checked_for_shape_only(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    base = {"client_id": "client", "client_secret": "secret"}
    refused = await api.put("/v1/providers/spotify", json=base | {"overrides": {"authorization_url": "http://1.1.1.1/authorize"}}, headers=auth(project))
    assert_refused(refused, "overrides.authorization_url", "only https:// URLs may be called")
    accepted = await api.put(
        "/v1/providers/spotify", json=base | {"overrides": {"authorization_url": "https://accounts.intranet.invalid/authorize"}}, headers=auth(project)
    )
    assert accepted.status_code == 200, accepted.text
