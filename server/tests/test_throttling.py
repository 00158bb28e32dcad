"""Throttles: failed secret keys per client address (past the limit: 429 without a database
query), and how many sign-ins one connect session may start."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from authpipe_server import projects
from authpipe_server.api.app import create_app
from authpipe_server.api.middleware import FAILED_KEY_LIMIT, FAILED_KEY_WINDOW
from authpipe_server.api.throttle import FailureThrottle, client_address
from authpipe_server.connect.state import STATES_PER_SESSION
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Project
from tests.e2e.conftest import Authpipe, authpipe, authpipe_env, emulators, result_of  # noqa: F401 (fixtures)

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def client_from(runtime: Runtime) -> AsyncIterator[Client]:
    """HTTP clients of one app in-process, each seen by the app as coming from its own address."""
    app: FastAPI = create_app(runtime, auth_cache_ttl=0.0001)  # a verified key is looked up again each time
    clients: list[httpx.AsyncClient] = []

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://authpipe.test"))
        return clients[-1]

    yield client
    for each in clients:
        await each.aclose()


@contextmanager
def counting_queries(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", count)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def unknown_key(i: int) -> str:
    return f"ap_sk_unknown{i:040d}"


async def new_key(runtime: Runtime, project_id: str) -> str:
    async with runtime.db.writing() as session:
        project = await session.get(Project, project_id)
        assert project is not None
        return (await projects.create_key(session, project)).secret


async def test_failed_keys_past_the_limit_are_429_without_a_query(
    client_from: Client, runtime: Runtime, project: tuple[str, str]
) -> None:
    project_id, secret = project
    attacker, neighbour = client_from("203.0.113.7"), client_from("198.51.100.9")
    assert (await attacker.get("/v1/connections", headers=bearer(secret))).status_code == 200
    fresh_key = await new_key(runtime, project_id)

    with counting_queries(runtime) as guesses:
        for i in range(FAILED_KEY_LIMIT):
            response = await attacker.get("/v1/connections", headers=bearer(unknown_key(i)))
            assert response.status_code == 401, i
    assert len(guesses) >= FAILED_KEY_LIMIT  # each new unknown key cost a lookup

    with counting_queries(runtime) as refused:
        for headers in (bearer(unknown_key(FAILED_KEY_LIMIT)), bearer(unknown_key(0)), {"Authorization": "Basic abc"}, {}):
            response = await attacker.get("/v1/connections", headers=headers)
            assert response.status_code == 429
            assert response.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(response.headers["retry-after"]) <= FAILED_KEY_WINDOW
        # A key this process has not verified yet is refused too: it could be one more guess.
        assert (await attacker.get("/v1/connections", headers=bearer(fresh_key))).status_code == 429
    assert refused == []

    # The key that already worked from there still works (looked up again: its cache is short).
    assert (await attacker.get("/v1/connections", headers=bearer(secret))).status_code == 200
    # Another address is not affected, for unknown keys as for new ones.
    assert (await neighbour.get("/v1/connections", headers=bearer(unknown_key(99)))).status_code == 401
    assert (await neighbour.get("/v1/connections", headers=bearer(fresh_key))).status_code == 200


async def test_repeating_one_bad_key_costs_one_query_and_no_strikes(client_from: Client, runtime: Runtime) -> None:
    stale = client_from("203.0.113.9")
    with counting_queries(runtime) as statements:
        for _ in range(3 * FAILED_KEY_LIMIT):
            response = await stale.get("/v1/connections", headers=bearer(unknown_key(1)))
            assert response.status_code == 401
            assert response.json()["error"]["message"] == "unknown or revoked secret key"
    assert len([s for s in statements if "secret_keys" in s]) == 1
    # Only new guesses count: this address may still try other keys.
    assert (await stale.get("/v1/connections", headers=bearer(unknown_key(2)))).status_code == 401


async def test_malformed_headers_count_without_a_query_and_missing_ones_do_not(client_from: Client, runtime: Runtime) -> None:
    careless = client_from("203.0.113.10")
    for _ in range(3 * FAILED_KEY_LIMIT):
        assert (await careless.get("/v1/connections")).status_code == 401  # no header: no guess

    malformed = [{"Authorization": "Basic abc"}, {"Authorization": "Bearer"}, bearer("not-a-key"), bearer("ap_sk_" + "x" * 200)]
    with counting_queries(runtime) as statements:
        for i in range(FAILED_KEY_LIMIT):
            response = await careless.get("/v1/connections", headers=malformed[i % len(malformed)])
            assert response.status_code == 401
            assert response.json()["error"]["message"] == "malformed secret key: send Authorization: Bearer ap_sk_…"
        assert (await careless.get("/v1/connections", headers=malformed[0])).status_code == 429
    assert statements == []


async def test_every_v1_route_declares_429(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    declared = {(path, method): set(op["responses"]) for path, ops in paths.items() if path.startswith("/v1/") for method, op in ops.items()}
    assert declared and all("401" in statuses and "429" in statuses for statuses in declared.values())


def test_the_window_closes_after_its_time() -> None:
    now = [1000.0]
    throttle = FailureThrottle(limit=3, window=60.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("a") is None
        throttle.failed("a")
        now[0] += 10
    assert throttle.retry_after("a") == 30  # the window opened at the first failure
    assert throttle.retry_after("b") is None
    now[0] += 29.5
    assert throttle.retry_after("a") == 1
    now[0] += 1
    assert throttle.retry_after("a") is None
    throttle.failed("a")  # a new window, counting from one
    assert throttle.retry_after("a") is None


def test_addresses_are_grouped_as_a_subscriber_holds_them() -> None:
    assert client_address("2001:db8:1:2:aaaa::1") == client_address("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:3::1") != client_address("2001:db8:1:2::1")
    assert client_address("::ffff:192.0.2.1") == client_address("192.0.2.1") == "192.0.2.1"
    assert client_address("192.0.2.1") != client_address("192.0.2.2")
    assert client_address(None) == "unknown"


def test_one_connect_session_starts_a_bounded_number_of_sign_ins(authpipe: Authpipe) -> None:
    authpipe.configure("spotify")
    token = authpipe.session()["token"]

    def states() -> int:
        with sqlite3.connect(authpipe.db_path) as db:
            return int(db.execute("SELECT count(*) FROM oauth_states").fetchone()[0])

    for _ in range(STATES_PER_SESSION):
        assert httpx.get(f"{authpipe.url}/connect/spotify", params={"session": token}).status_code == 302
    assert states() == STATES_PER_SESSION

    refused = httpx.get(f"{authpipe.url}/connect/spotify", params={"session": token})
    assert refused.status_code == 429
    outcome = result_of(refused.text)["message"]
    assert outcome["ok"] is False and outcome["code"] == "too_many_attempts"
    assert "start again from the app" in outcome["message"]
    assert states() == STATES_PER_SESSION  # nothing more was written

    # The cap is per connect session: a new link from the app starts afresh.
    again = httpx.get(f"{authpipe.url}/connect/spotify", params={"session": authpipe.session()["token"]})
    assert again.status_code == 302 and states() == STATES_PER_SESSION + 1
