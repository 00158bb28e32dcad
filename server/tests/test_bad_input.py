"""Input that used to end in a bare 500, on SQLite and PostgreSQL: text the database cannot store
(NUL, unpaired surrogates), dates past the calendar, tokens that cannot travel in a header, a
tampered ciphertext, a shredded tenant, and the database itself being down. Each gets its own
clear answer."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authpipe_server.api.app import create_app
from authpipe_server.connections.secrets import TokenSet
from authpipe_server.connections.service import Owner, save_grant
from authpipe_server.emulators import serve_in_thread
from authpipe_server.providers.base import Account, Described, Grant
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection, Project
from tests.test_cli import run

NUL_MESSAGE = "NUL"


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def error_of(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json()["error"])


def page_outcome(response: httpx.Response) -> dict[str, Any]:
    from tests.e2e.conftest import result_of

    assert response.headers["content-type"].startswith("text/html"), response.text
    return result_of(response.text)


async def configure_spotify(api: httpx.AsyncClient, secret: str) -> None:
    """Spotify's app, its API pointed at a closed loopback port (nothing leaves the machine)."""
    dead = f"http://127.0.0.1:{closed_port()}"
    body = {"client_id": "cid", "client_secret": "csecret", "overrides": {"api_base_url": dead, "token_url": f"{dead}/token"}}
    response = await api.put("/v1/providers/spotify", json=body, headers=auth(secret))
    assert response.status_code == 200, response.text


async def make_connection(runtime: Runtime, project_id: str, tenant_id: str, provider: str = "spotify", user_id: str = "user_1") -> Connection:
    grant = Grant(TokenSet(access_token=f"at-{uuid.uuid4().hex}", refresh_token="rt-1"), None, ["read"])
    connection, _ = await save_grant(runtime, Owner(project_id, tenant_id, user_id, provider), grant, Described(Account("acct-1", "Ada")), ["read"])
    return connection


def credential_query(tenant_id: str, provider: str = "spotify", user_id: str = "user_1") -> dict[str, str]:
    return {"provider": provider, "tenant_id": tenant_id, "user_id": user_id}


# -- text the database cannot store ------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/v1/connections?cursor=conn_%00", None),
        ("GET", "/v1/connections?tenant_id=org%00acme", None),
        ("GET", "/v1/credentials?provider=spotify&tenant_id=org_acme%00&user_id=u1", None),
        ("GET", "/v1/events?cursor=%00", None),
        ("PUT", "/v1/providers/spotify", '{"client_id": "abc\\u0000def", "client_secret": "s"}'),
        ("PUT", "/v1/providers/spotify", '{"client_id": "abc\\ud800", "client_secret": "s"}'),
        ("POST", "/v1/connect-sessions", '{"tenant_id": "org_acme", "user_id": "u1", "return_url": "https://app.example.com/\\u0000"}'),
        ("POST", "/v1/connect-sessions", '{"tenant_id": "org\\u0000", "user_id": "u1"}'),
        ("POST", "/v1/connect-sessions", '{"tenant_id": "org_acme", "user_id": "u1", "scopes": {"spotify\\u0000": ["read"]}}'),
    ],
)
async def test_nul_and_lone_surrogates_are_400_before_the_database(
    api: httpx.AsyncClient, project: tuple[str, str], method: str, path: str, body: str | None
) -> None:
    headers = auth(project[1]) | {"Content-Type": "application/json"}
    response = await api.request(method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request" and NUL_MESSAGE in error["message"]


async def test_escapes_that_are_storable_pass(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    # An escaped backslash before "u0000" is text, not a NUL; an accented letter and a surrogate pair are fine.
    body = '{"client_id": "caf\\u00e9-\\\\u0000-\\ud83d\\ude00", "client_secret": "s"}'
    response = await api.put("/v1/providers/spotify", content=body, headers=auth(project[1]) | {"Content-Type": "application/json"})
    assert response.status_code == 200, response.text


async def test_nul_without_a_key_is_still_401_first(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/connections?cursor=%00")
    assert response.status_code == 401 and error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    "method, path, form",
    [
        ("GET", "/connect?session=ap_cs_%00", None),
        ("GET", "/connect/spotify?session=ap_cs_x%00", None),
        ("GET", "/oauth/callback?state=abc%00&code=x", None),
        ("POST", "/connect/bluesky", {"session": "ap_cs_x", "identifier": "alice\x00.test", "app_password": "aaaa-bbbb-cccc-dddd"}),
    ],
)
async def test_nul_on_the_connect_pages_is_their_error_page(api: httpx.AsyncClient, method: str, path: str, form: dict[str, str] | None) -> None:
    response = await api.request(method, path, data=form)
    assert response.status_code == 400
    outcome = page_outcome(response)["message"]
    assert outcome["ok"] is False and outcome["code"] == "invalid_request" and NUL_MESSAGE in outcome["message"]


async def test_nul_in_a_provider_account_name_is_dropped(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    """A provider's userinfo answer with NUL in the account's id and name (PostgreSQL refuses NUL)."""

    async def userinfo(_: Request) -> JSONResponse:
        return JSONResponse({"sub": "acct\x00-1", "name": "Ada\x00 Lovelace"})

    with serve_in_thread(Starlette(routes=[Route("/userinfo", userinfo)])) as url:
        declared = await api.put(
            "/v1/providers/nul-names",
            json={
                "auth_mode": "oauth2",
                "display_name": "NUL names",
                "authorization_url": f"{url}/authorize",
                "token_url": f"{url}/token",
                "userinfo_url": f"{url}/userinfo",
                "client_id": "cid",
                "client_secret": "csecret",
                "scopes": ["read"],
            },
            headers=auth(project[1]),
        )
        assert declared.status_code == 200, declared.text
        body = {"provider": "nul-names", "tenant_id": "org_acme", "user_id": "u1", "access_token": "token-1"}
        created = await api.post("/v1/connections", json=body, headers=auth(project[1]))
    assert created.status_code == 201, created.text
    assert created.json()["account"] == {"id": "acct-1", "name": "Ada Lovelace"}


# -- imported tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expires_at, complaint",
    [
        ("9999-12-31T23:00:00-14:00", "is out of range once converted to UTC"),
        ("2200-01-01T00:00:00Z", "is more than 10 years ahead; leave it out for a token that does not expire"),
        ("2001-01-01T00:00:00Z", "is in the past"),
    ],
)
async def test_imported_expires_at_out_of_reach_is_400(api: httpx.AsyncClient, project: tuple[str, str], expires_at: str, complaint: str) -> None:
    await configure_spotify(api, project[1])
    body = {"provider": "spotify", "tenant_id": "org_acme", "user_id": "u1", "access_token": "token-1", "expires_at": expires_at}
    response = await api.post("/v1/connections", json=body, headers=auth(project[1]))
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request" and error["message"] == f"expires_at: {complaint}"


@pytest.mark.parametrize("field", ["access_token", "refresh_token"])
@pytest.mark.parametrize("token", ["tök-1", "two words", "tab\there", "line\nbreak"])
async def test_imported_tokens_must_be_visible_ascii(api: httpx.AsyncClient, project: tuple[str, str], field: str, token: str) -> None:
    await configure_spotify(api, project[1])
    body = {"provider": "spotify", "tenant_id": "org_acme", "user_id": "u1", "access_token": "token-1"} | {field: token}
    response = await api.post("/v1/connections", json=body, headers=auth(project[1]))
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request" and error["message"].startswith(f"{field}: must be visible ASCII")
    assert token not in response.text


# -- secrets that cannot be opened -------------------------------------------------------------


async def test_tampered_ciphertext_is_410_everywhere(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, secret = project
    await configure_spotify(api, secret)
    connection = await make_connection(runtime, project_id, "org_acme")
    assert connection.secrets is not None
    tampered = connection.secrets[:-1] + bytes([connection.secrets[-1] ^ 1])
    async with runtime.db.writing() as session:
        await session.execute(update(Connection).where(Connection.id == connection.id).values(secrets=tampered))

    read = await api.get("/v1/credentials", params=credential_query("org_acme"), headers=auth(secret))
    assert read.status_code == 410 and error_of(read)["code"] == "credential_unreadable"
    assert "connect again" in error_of(read)["message"]
    for action in ("refresh", "check"):
        answer = await api.post(f"/v1/connections/{connection.id}/{action}", headers=auth(secret))
        assert answer.status_code == 410 and error_of(answer)["code"] == "credential_unreadable", (action, answer.text)

    deleted = await api.delete(f"/v1/connections/{connection.id}", headers=auth(secret))
    assert deleted.status_code == 204
    events = (await api.get("/v1/events", params={"type": "connection.deleted"}, headers=auth(secret))).json()["events"]
    assert events[0]["data"]["revocation"] == {"ok": False, "code": "credential_unreadable"}


async def test_shredded_tenant_is_revoked_listed_and_410(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str], database_url: str) -> None:
    project_id, secret = project
    async with runtime.db.sessions() as session:
        project_name = (await session.get(Project, project_id)).name  # type: ignore[union-attr]
    shredded = await make_connection(runtime, project_id, "org_gone")
    kept = await make_connection(runtime, project_id, "org_kept")
    env = {"AUTHPIPE_DATABASE_URL": database_url}

    first = run("tenants", "shred", "--project", project_name, "org_gone", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "shredded 1 data key(s) of tenant org_gone: its stored secrets are now unreadable; 1 connection(s) marked revoked"

    read = await api.get("/v1/credentials", params=credential_query("org_gone"), headers=auth(secret))
    assert read.status_code == 410 and error_of(read)["code"] == "tenant_shredded"
    assert (await api.get("/v1/credentials", params=credential_query("org_kept"), headers=auth(secret))).status_code == 200
    listed = (await api.get("/v1/connections", params={"tenant_id": "org_gone"}, headers=auth(secret))).json()["connections"]
    assert [(c["id"], c["status"], c["last_error"]["code"]) for c in listed] == [(shredded.id, "revoked", "tenant_shredded")]
    assert "data key was destroyed" in listed[0]["last_error"]["message"]
    kept_view = (await api.get(f"/v1/connections/{kept.id}", headers=auth(secret))).json()
    assert kept_view["status"] == "active" and kept_view["last_error"] is None
    async with runtime.db.sessions() as session:
        row = await session.get(Connection, shredded.id)
        assert row is not None and row.secrets is None

    # This process's vault still holds the shredded key in its cache: a connection sealed with it
    # now slips past the shred. Running the shred again catches it, and announces nothing twice.
    slipped = await make_connection(runtime, project_id, "org_gone", user_id="user_2")
    second = run("tenants", "shred", "--project", project_name, "org_gone", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "tenant org_gone was already shredded; 1 connection(s) marked revoked"
    assert run("tenants", "shred", "--project", project_name, "org_gone", env=env).stdout.strip().endswith("; 0 connection(s) marked revoked")
    revoked = (await api.get("/v1/events", params={"type": "connection.revoked"}, headers=auth(secret))).json()["events"]
    assert sorted(e["connection_id"] for e in revoked) == sorted([shredded.id, slipped.id])
    assert all(e["data"]["connection"]["last_error"]["code"] == "tenant_shredded" for e in revoked)

    deleted = await api.delete(f"/v1/connections/{shredded.id}", headers=auth(secret))
    assert deleted.status_code == 204
    events = (await api.get("/v1/events", params={"type": "connection.deleted"}, headers=auth(secret))).json()["events"]
    assert events[0]["data"]["revocation"] == {"ok": False, "code": "tenant_shredded"}


async def test_a_connection_that_slipped_past_the_shred_is_410_and_then_revoked(
    api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]
) -> None:
    """Only the tenant's keys destroyed (as by a process whose connection rows were not marked)."""
    project_id, secret = project
    connection = await make_connection(runtime, project_id, "org_gone")
    assert await runtime.vault.shred(project_id, "org_gone") == 1
    read = await api.get("/v1/credentials", params=credential_query("org_gone"), headers=auth(secret))
    assert read.status_code == 410 and error_of(read)["code"] == "tenant_shredded"
    view = (await api.get(f"/v1/connections/{connection.id}", headers=auth(secret))).json()
    assert view["status"] == "revoked" and view["last_error"]["code"] == "tenant_shredded"
    again = await api.get("/v1/credentials", params=credential_query("org_gone"), headers=auth(secret))
    assert again.status_code == 410 and error_of(again)["code"] == "tenant_shredded"


# -- the database itself -----------------------------------------------------------------------


def unreachable_engine(runtime: Runtime, tmp: Any) -> AsyncEngine:
    if runtime.db.is_sqlite:
        return create_async_engine(f"sqlite+aiosqlite:///{tmp}/no/such/dir/authpipe.db")
    return create_async_engine(runtime.db.engine.url.set(host="127.0.0.1", port=closed_port()))


async def use_engine(runtime: Runtime, engine: AsyncEngine) -> None:
    """Point every session (and the read path's lookup) of `runtime` at `engine`."""
    await runtime.db.engine.dispose()
    runtime.db.engine = engine
    runtime.db.sessions.configure(bind=engine)
    runtime.db._writes.configure(bind=engine.execution_options(authpipe_write=True))
    runtime.lookup.close()


@pytest.fixture
async def cached_key_api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app with secret keys remembered for a minute, so requests get past auth to the routes."""
    app = create_app(runtime, auth_cache_ttl=60)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://authpipe.test") as client:
        yield client


async def test_database_down_is_503_never_500_or_401(cached_key_api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str], tmp_path: Any) -> None:
    secret = project[1]
    assert (await cached_key_api.get("/v1/connections", headers=auth(secret))).status_code == 200
    await use_engine(runtime, unreachable_engine(runtime, tmp_path))

    for path in ("/v1/connections", "/v1/credentials?provider=spotify&tenant_id=org_acme&user_id=u1", "/v1/providers"):
        response = await cached_key_api.get(path, headers=auth(secret))
        assert response.status_code == 503, (path, response.text)
        assert error_of(response)["code"] == "unavailable" and response.headers["retry-after"] == "5"
    unchecked = await cached_key_api.get("/v1/connections", headers=auth("ap_sk_" + "y" * 43))  # the key check itself fails
    assert unchecked.status_code == 503 and error_of(unchecked)["code"] == "unavailable", unchecked.text
    assert unchecked.headers["retry-after"] == "5"
    page = await cached_key_api.get("/connect", params={"session": "ap_cs_" + "x" * 40})
    assert page.status_code == 503 and page.headers["retry-after"] == "5"
    assert page_outcome(page)["message"]["code"] == "unavailable"


async def test_exhausted_pool_is_503(cached_key_api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    secret = project[1]
    assert (await cached_key_api.get("/v1/connections", headers=auth(secret))).status_code == 200
    tiny = create_async_engine(runtime.db.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    await use_engine(runtime, tiny)
    async with tiny.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        response = await cached_key_api.get("/v1/connections", headers=auth(secret))
    assert response.status_code == 503 and error_of(response)["code"] == "unavailable"
    assert response.headers["retry-after"] == "5"
