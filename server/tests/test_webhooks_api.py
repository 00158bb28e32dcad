"""`PUT/GET/DELETE /v1/webhook` and `GET /v1/events`: shapes, validation, secrecy, pagination
(the app in-process; the end-to-end tests in tests/e2e/test_webhooks.py use real servers)."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest
from sqlalchemy import select, text

from authpipe_server import projects
from authpipe_server.events.record import (
    CREATED,
    DELETED,
    REFRESHED,
    REVOKED,
    record_event,
)
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection, WebhookEndpoint
from authpipe_server.webhooks.signing import open_keys

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


# -- /v1/webhook ------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_put_get_rotate_delete(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, key = project
    assert (await api.get("/v1/webhook", headers=auth(key))).status_code == 404

    put = await api.put("/v1/webhook", json={"url": "https://127.0.0.1:8443/authpipe?x=1"}, headers=auth(key))
    assert put.status_code == 200, put.text
    body = put.json()
    assert set(body) == {"url", "secret"} and body["url"] == "https://127.0.0.1:8443/authpipe?x=1"
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32

    got = await api.get("/v1/webhook", headers=auth(key))
    assert got.status_code == 200 and got.json() == {"url": "https://127.0.0.1:8443/authpipe?x=1", "disabled_at": None}
    assert secret not in got.text and secret.removeprefix("whsec_") not in got.text

    # Stored sealed: neither the secret nor its key bytes are in the row.
    async with runtime.db.sessions() as session:
        row = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id))
        raw = (await session.execute(text("SELECT * FROM webhook_endpoints"))).all()
    assert row is not None
    assert secret.encode() not in repr(raw).encode() and base64.b64decode(secret[6:]) not in row.secret
    assert (await open_keys(runtime.vault, project_id, row.id, row.secret)).current == secret

    rotated = await api.put("/v1/webhook", json={"url": "http://127.0.0.1:9999/hook"}, headers=auth(key))
    assert rotated.status_code == 200 and rotated.json()["secret"] != secret
    assert (await api.get("/v1/webhook", headers=auth(key))).json()["url"] == "http://127.0.0.1:9999/hook"
    async with runtime.db.sessions() as session:
        again = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id))
    assert again is not None and again.id == row.id  # one endpoint per project, updated in place
    keys = await open_keys(runtime.vault, project_id, again.id, again.secret)
    assert (keys.current, keys.previous) == (rotated.json()["secret"], secret)  # the old one signs for a day
    assert secret not in repr(keys)

    assert (await api.delete("/v1/webhook", headers=auth(key))).status_code == 204
    assert (await api.get("/v1/webhook", headers=auth(key))).status_code == 404
    gone = await api.delete("/v1/webhook", headers=auth(key))
    assert gone.status_code == 404 and error_code(gone) == "webhook_not_found"


BAD_BODIES: list[dict[str, object]] = [
    {},
    {"url": ""},
    {"url": 42},
    {"url": None},
    {"url": "ftp://hooks.example.com/x"},
    {"url": "hooks.example.com/x"},
    {"url": "https://"},
    {"url": "https:///path"},
    {"url": "https://hooks.example.com:99999/x"},
    {"url": "https://hooks.example.com/a b"},
    {"url": "https://hooks.example.com/x#frag"},
    {"url": "javascript:alert(1)"},
    {"url": "https://hooks.example.com/" + "a" * 2030},
    {"url": "https://hooks.example.com/x", "secret": "whsec_mine"},
]


@SQLITE_ONLY
async def test_bad_webhook_input_is_400(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    for body in BAD_BODIES:
        response = await api.put("/v1/webhook", json=body, headers=auth(project[1]))
        assert response.status_code == 400, (body, response.text)
        assert error_code(response) == "invalid_request" and response.json()["error"]["message"]
    assert (await api.get("/v1/webhook", headers=auth(project[1]))).status_code == 404  # nothing was saved


@SQLITE_ONLY
async def test_url_of_exactly_2048_characters_is_fine(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    url = "https://127.0.0.1/" + "a" * (2048 - len("https://127.0.0.1/"))  # the policy allows loopback in tests
    assert (await api.put("/v1/webhook", json={"url": url}, headers=auth(project[1]))).status_code == 200
    too_long = await api.put("/v1/webhook", json={"url": url + "a"}, headers=auth(project[1]))
    assert too_long.status_code == 400


@SQLITE_ONLY
async def test_webhook_and_events_need_a_key_and_are_declared(api: httpx.AsyncClient) -> None:
    for method, path in (("PUT", "/v1/webhook"), ("GET", "/v1/webhook"), ("DELETE", "/v1/webhook"), ("GET", "/v1/events")):
        response = await api.request(method, path, json={"url": "https://x.example.com"} if method == "PUT" else None)
        assert response.status_code == 401 and error_code(response) == "unauthorized"
    spec = (await api.get("/openapi.json")).json()["paths"]
    assert {"200", "400", "401"} <= set(spec["/v1/webhook"]["put"]["responses"])
    assert {"200", "401", "404"} <= set(spec["/v1/webhook"]["get"]["responses"])
    assert {"204", "401", "404"} <= set(spec["/v1/webhook"]["delete"]["responses"])
    assert {"200", "400", "401"} <= set(spec["/v1/events"]["get"]["responses"])
    assert "secret" not in spec["/v1/webhook"]["get"]["responses"]["200"]["content"]["application/json"]["schema"].get("$ref", "").lower()


# -- /v1/events -------------------------------------------------------------------------------


async def make_history(runtime: Runtime, project_id: str) -> dict[str, str]:
    """Two connections with a few events each; returns user → connection id."""
    ids = {}
    for user in ("user_a", "user_b"):
        async with runtime.db.writing() as session:
            connection = Connection(project_id=project_id, tenant_id="org_acme", user_id=user, provider="spotify", scopes=[], resources=[])
            session.add(connection)
            await session.flush()
            await record_event(session, connection, CREATED)
        ids[user] = connection.id
    for user, kind in (("user_a", REFRESHED), ("user_b", REVOKED), ("user_a", REFRESHED), ("user_a", DELETED)):
        async with runtime.db.writing() as session:
            row = await session.get(Connection, ids[user])
            assert row is not None
            await record_event(session, row, kind)
    return ids


async def test_events_newest_first_filtered_and_paginated(api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, key = project
    ids = await make_history(runtime, project_id)
    async with runtime.db.writing() as session:  # another project's events stay out of sight
        other = await projects.create_project(session, f"other-{uuid.uuid4().hex[:6]}")
    await make_history(runtime, other.id)

    listing = await api.get("/v1/events", headers=auth(key))
    assert listing.status_code == 200, listing.text
    events = listing.json()["events"]
    assert listing.json()["next_cursor"] is None and len(events) == 6
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    assert events[0]["type"] == "connection.deleted" and events[-1]["type"] == "connection.created"
    first = events[0]
    assert set(first) == {"id", "type", "created_at", "connection_id", "data"}
    assert first["id"].startswith("evt_") and first["created_at"].endswith("Z") and first["connection_id"] == ids["user_a"]
    assert set(first["data"]) == {"connection"} and first["data"]["connection"]["id"] == ids["user_a"]
    assert "secrets" not in listing.text

    only_a = (await api.get("/v1/events", params={"connection_id": ids["user_a"]}, headers=auth(key))).json()["events"]
    assert [e["type"] for e in only_a] == ["connection.deleted", "connection.refreshed", "connection.refreshed", "connection.created"]
    revoked = (await api.get("/v1/events", params={"type": "connection.revoked"}, headers=auth(key))).json()["events"]
    assert [(e["type"], e["connection_id"]) for e in revoked] == [("connection.revoked", ids["user_b"])]
    both = await api.get("/v1/events", params={"type": "connection.refreshed", "connection_id": ids["user_b"]}, headers=auth(key))
    assert both.json() == {"events": [], "next_cursor": None}

    seen, cursor = [], None
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/v1/events", params=params, headers=auth(key))).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == [e["id"] for e in events]
    pages = (await api.get("/v1/events", params={"limit": 1}, headers=auth(key))).json()
    assert len(pages["events"]) == 1 and pages["next_cursor"] == events[0]["id"]


BAD_PARAMS: list[dict[str, str | int]] = [
    {"limit": 0},
    {"limit": 101},
    {"limit": "ten"},
    {"cursor": "garbage"},
    {"cursor": "conn_01JABCDEFGHJKMNPQRSTVWXYZ0"},
    {"connection_id": "not-a-connection"},
    {"connection_id": "conn_" + "A" * 300},
    {"type": "Connection.Created"},
    {"type": "connection created"},
    {"type": ""},
]


@SQLITE_ONLY
async def test_bad_event_params_are_400(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    for params in BAD_PARAMS:
        response = await api.get("/v1/events", params=params, headers=auth(project[1]))
        assert response.status_code == 400, (params, response.text)
        assert error_code(response) == "invalid_request"


@SQLITE_ONLY
async def test_limit_bounds_and_unknown_filters_are_fine(api: httpx.AsyncClient, project: tuple[str, str]) -> None:
    for params in ({"limit": 1}, {"limit": 100}, {"type": "connection.created"}, {"connection_id": "conn_01JABCDEFGHJKMNPQRSTVWXYZ0"}):
        response = await api.get("/v1/events", params=params, headers=auth(project[1]))
        assert response.status_code == 200 and response.json() == {"events": [], "next_cursor": None}
