"""The HTTP surface's ground rules: secret-key auth on /v1/*, the error shape, bad input, ops."""

from __future__ import annotations

import httpx
import pytest

from authpipe_server import projects
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Project


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize("path", ["/v1/connections", "/v1/no-such-route", "/v1/connections/conn_x"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer ap_sk_unknown"}],
)
async def test_v1_without_a_valid_key_is_401_first(api: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    response = await api.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_revoked_key_is_refused(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    _, secret = project
    assert (await api.get("/v1/connections", headers=auth(secret))).status_code == 200
    async with runtime.db.writing() as session:
        await projects.revoke_key(session, secret[:14])
    response = await api.get("/v1/connections", headers=auth(secret))
    assert response.status_code == 401
    assert secret not in response.text


async def test_keys_of_one_project_do_not_see_another(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    async with runtime.db.writing() as session:
        other = await projects.create_project(session, "other-project")
        other_key = (await projects.create_key(session, other)).secret
    assert (await api.get("/v1/connections", headers=auth(other_key))).json() == {"connections": [], "next_cursor": None}


@pytest.mark.parametrize(
    "query",
    [
        "tenant_id=" + "x" * 257,
        "tenant_id=has%20space",
        "user_id=",
        "provider=UPPER",
        "provider=a",
        "status=sleeping",
        "limit=0",
        "limit=abc",
        "limit=101",
    ],
)
async def test_bad_query_is_400_invalid_request(api: httpx.AsyncClient, project: tuple[str, str], query: str) -> None:
    response = await api.get(f"/v1/connections?{query}", headers=auth(project[1]))
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_request" and body["error"]["message"]


async def test_unknown_connection_is_404(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    response = await api.get("/v1/connections/conn_01M8NB6WCED5VPH3J4FG91MTSD", headers=auth(project[1]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "connection_not_found"


async def test_oversized_body_is_413(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    response = await api.post("/v1/connections", headers=auth(project[1]), content=b"x" * (65 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_ops_endpoints(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).json() == {"status": "ready"}
    spec = (await api.get("/openapi.json")).json()
    listing = spec["paths"]["/v1/connections"]["get"]["responses"]
    assert {"200", "400", "401"} <= set(listing)
    assert "404" in spec["paths"]["/v1/connections/{connection_id}"]["get"]["responses"]
    declared = [set(op["responses"]) for path in spec["paths"].values() for op in path.values()]
    assert all("422" not in statuses for statuses in declared)  # bad input is 400 invalid_request
    credentials = spec["paths"]["/v1/credentials"]["get"]
    assert [p["name"] for p in credentials["parameters"]] == ["provider", "tenant_id", "user_id", "min_ttl", "force_refresh", "resource"]
    assert {"400", "401", "404", "410", "429", "502"} <= set(credentials["responses"])


async def test_landing_page(api: httpx.AsyncClient) -> None:
    response = await api.get("/")
    assert response.status_code == 200 and "Next steps" in response.text
    assert "ap_sk_" not in response.text.replace("ap_sk_…", "")
    assert (await api.get("/static/authpipe.css")).status_code == 200


async def test_a_used_key_records_when_it_was_last_used(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, secret = project
    async with runtime.db.sessions() as session:
        owner = await session.get(Project, project_id)
        [before] = await projects.list_keys(session, owner)
    assert before.last_used_at is None
    assert (await api.get("/v1/connections", headers={"Authorization": f"Bearer {secret}"})).status_code == 200
    async with runtime.db.sessions() as session:
        [after] = await projects.list_keys(session, owner)
    assert after.last_used_at is not None
