"""Webhooks end to end: Authpipe as a real server, connections made against the Bluesky emulator,
deliveries to a real receiver on loopback that verifies every signature with the independent
`standardwebhooks` package. Delivery runs either inside the server (workers on) or in a worker
of its own, as `authpipe worker` would, with a fast retry schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authpipe_server.api.app import create_app
from authpipe_server.config import load_settings
from authpipe_server.emulators import serve_in_thread
from authpipe_server.runtime import Runtime
from authpipe_server.webhooks.delivery import DeliveryWorker
from tests.conftest import make_project, new_master_key
from tests.e2e.conftest import Authpipe
from tests.test_webhooks_delivery import Received, Receiver

APP_PASSWORD = "sand-boxa-ppps-swrd"


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def env(sqlite_url: str, request: pytest.FixtureRequest) -> dict[str, str]:
    workers = "on" if request.node.get_closest_marker("workers") else "off"
    return {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_WORKERS": workers, "AUTHPIPE_EGRESS": "loopback"}


@pytest.fixture
def keys(env: dict[str, str]) -> tuple[str, str]:
    return make_project(env, "e2e")


@contextlib.contextmanager
def server(env: dict[str, str], keys: tuple[str, str], emulators: dict[str, str]) -> Iterator[Authpipe]:
    """An Authpipe server process-alike: its own Runtime, opened and closed by its lifespan."""
    factory = lambda url: create_app(load_settings(env | {"AUTHPIPE_PUBLIC_URL": url}), auth_cache_ttl=0.0001)
    with serve_in_thread(app_factory=factory) as url:
        authpipe = Authpipe(url, keys[0], keys[1], emulators, env["AUTHPIPE_DATABASE_URL"].removeprefix("sqlite:///"))
        try:
            yield authpipe
        finally:
            authpipe.api.close()


@pytest.fixture
def authpipe(env: dict[str, str], keys: tuple[str, str], emulators: dict[str, str]) -> Iterator[Authpipe]:
    with server(env, keys, emulators) as running:
        running.configure("bluesky")
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().serve() as running:
        yield running


@contextlib.contextmanager
def delivery_worker(env: dict[str, str], **options: Any) -> Iterator[None]:
    """A delivery worker with its own Runtime and event loop in a thread (an `authpipe worker`)."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        runtime = await Runtime.open(load_settings(env | {"AUTHPIPE_WORKERS": "on"}))
        try:
            state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
            started.set()
            await DeliveryWorker(runtime, **options).run(state["stop"])
        finally:
            await runtime.close()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            state["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="webhook-worker", daemon=True)
    thread.start()
    started.wait(15)
    assert "error" not in state, state.get("error")
    try:
        yield
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        assert "error" not in state, state.get("error")


FAST = {"schedule": (0.05,) * 200, "jitter": 0.5, "idle": 0.02}


# -- helpers -----------------------------------------------------------------------------------


def set_webhook(authpipe: Authpipe, url: str) -> str:
    response = authpipe.api.put("/v1/webhook", json={"url": url})
    assert response.status_code == 200, response.text
    assert response.json()["url"] == url
    return str(response.json()["secret"])


def bluesky(authpipe: Authpipe, user_id: str) -> dict[str, Any]:
    body = {"provider": "bluesky", "tenant_id": "org_acme", "user_id": user_id, "identifier": "sandbox.test", "app_password": APP_PASSWORD}
    response = authpipe.api.post("/v1/connections", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def delete(authpipe: Authpipe, connection_id: str) -> None:
    assert authpipe.api.delete(f"/v1/connections/{connection_id}").status_code == 204


def rows(authpipe: Authpipe, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(authpipe.db_path)) as conn:
        return list(conn.execute(sql, args))


def pending(authpipe: Authpipe) -> int:
    return int(rows(authpipe, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")[0][0])


def messages(secret: str, requests: list[Received]) -> list[dict[str, Any]]:
    """Each request's body, its signature verified by `standardwebhooks` (it raises on a bad one)."""
    return [Receiver.verify(secret, request) | {"_id": request.id} for request in requests]


def wait_until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.02)


# -- tests -------------------------------------------------------------------------------------


@pytest.mark.workers
def test_created_and_deleted_arrive_signed(authpipe: Authpipe, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    """With the server's own workers: a connection made and deleted → two signed webhooks, the
    same events in GET /v1/events, and the signing secret nowhere but in PUT's answer."""
    caplog.set_level(logging.DEBUG)
    secret = set_webhook(authpipe, receiver.url)
    created = bluesky(authpipe, "user_1")
    delete(authpipe, created["id"])
    receiver.wait(lambda r: len(r.delivered()) == 2)

    first, second = messages(secret, receiver.delivered())
    assert (first["type"], second["type"]) == ("connection.created", "connection.deleted")
    assert first["data"] == {"connection": created}  # the connection's public view, as the API shows it
    assert second["data"]["connection"]["id"] == created["id"]
    assert set(first) - {"_id"} == {"type", "timestamp", "data"} and first["timestamp"].endswith("Z")
    assert first["_id"] != second["_id"] and first["_id"].startswith("msg_")

    listing = authpipe.api.get("/v1/events", params={"connection_id": created["id"]})
    assert listing.status_code == 200
    events = listing.json()["events"]
    assert [(e["type"], e["data"]) for e in events] == [(second["type"], second["data"]), (first["type"], first["data"])]
    assert [e["created_at"] for e in events] == [second["timestamp"], first["timestamp"]]
    bad = authpipe.api.get("/v1/events", params={"limit": 0})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    assert authpipe.api.get("/v1/webhook").json() == {"url": receiver.url, "disabled_at": None}
    attempts = rows(authpipe, "SELECT status_code, latency_ms, error FROM webhook_attempts")
    assert len(attempts) == 2 and all(code == 204 and ms >= 0 and error is None for code, ms, error in attempts)

    # The secret (and the key bytes it encodes) only in PUT's answer: not in GET, the events,
    # the bodies, the logs or the database files.
    seen = [authpipe.api.get("/v1/webhook").text, listing.text, caplog.text] + [r.body.decode() for r in receiver.snapshot()]
    assert all(secret not in text and secret.removeprefix("whsec_") not in text for text in seen)
    assert all(APP_PASSWORD not in r.body.decode() for r in receiver.snapshot())
    stored = b"".join(p.read_bytes() for p in Path(authpipe.db_path).parent.glob(Path(authpipe.db_path).name + "*"))
    assert secret.encode() not in stored and secret.removeprefix("whsec_").encode() not in stored


def test_receiver_outage_then_every_event_in_order_exactly_once(authpipe: Authpipe, receiver: Receiver, env: dict[str, str]) -> None:
    """The receiver answers 500 for a while; once it recovers it has every event exactly once,
    in order per connection; retries kept their webhook-id; every try is recorded."""
    receiver.status = 500
    secret = set_webhook(authpipe, receiver.url)
    a = bluesky(authpipe, "user_a")
    b = bluesky(authpipe, "user_b")
    delete(authpipe, a["id"])
    a2 = bluesky(authpipe, "user_a")  # connected again: a new connection
    delete(authpipe, b["id"])
    with delivery_worker(env, **FAST):
        receiver.wait(lambda r: len(r.snapshot()) >= 8)
        receiver.status = 204
        wait_until(lambda: pending(authpipe) == 0)
    failed_ids = {r.id for r in receiver.snapshot() if r.status == 500}

    got = messages(secret, receiver.delivered())
    assert len(got) == 5 and len({m["_id"] for m in got}) == 5  # every event, exactly once
    order = lambda conn: [m["type"] for m in got if m["data"]["connection"]["id"] == conn["id"]]
    assert order(a) == order(b) == ["connection.created", "connection.deleted"]
    assert order(a2) == ["connection.created"]
    assert failed_ids and failed_ids <= {m["_id"] for m in got}  # the idempotency key held across retries
    assert {r.status for r in receiver.snapshot()} == {500, 204}

    # webhook_attempts mirrors what the receiver saw, try by try.
    for message in got:
        recorded = [row[0] for row in rows(authpipe, "SELECT status_code FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempted_at, id", message["_id"])]
        assert recorded == [r.status for r in receiver.snapshot() if r.id == message["_id"]]
    statuses = dict(rows(authpipe, "SELECT id, status FROM webhook_deliveries"))
    assert set(statuses.values()) == {"delivered"} and set(statuses) == {m["_id"] for m in got}


def test_nothing_is_lost_when_the_server_restarts(env: dict[str, str], keys: tuple[str, str], emulators: dict[str, str], receiver: Receiver) -> None:
    """The state change happens while no worker runs; the server stops; a new one with workers
    on delivers it."""
    with server(env, keys, emulators) as first:
        first.configure("bluesky")
        secret = set_webhook(first, receiver.url)
        created = bluesky(first, "user_1")
        assert pending(first) == 1
    assert receiver.snapshot() == []

    with server(env | {"AUTHPIPE_WORKERS": "on"}, keys, emulators) as second:
        receiver.wait(lambda r: len(r.delivered()) == 1)
        wait_until(lambda: pending(second) == 0)
    [message] = messages(secret, receiver.delivered())
    assert message["type"] == "connection.created" and message["data"]["connection"] == created
    assert len(receiver.snapshot()) == 1


def test_gone_disables_the_endpoint(authpipe: Authpipe, receiver: Receiver, env: dict[str, str]) -> None:
    receiver.status = 410
    set_webhook(authpipe, receiver.url)
    conn = bluesky(authpipe, "user_1")
    with delivery_worker(env, **FAST):
        wait_until(lambda: authpipe.api.get("/v1/webhook").json()["disabled_at"] is not None)
        assert [r.status for r in receiver.snapshot()] == [410]
        assert pending(authpipe) == 0
        delete(authpipe, conn["id"])  # a disabled endpoint is sent nothing: nothing is even queued
        assert rows(authpipe, "SELECT count(*) FROM webhook_deliveries")[0][0] == 1
        assert pending(authpipe) == 0

        receiver.status = 204
        secret = set_webhook(authpipe, receiver.url)  # PUT again enables it
        assert authpipe.api.get("/v1/webhook").json()["disabled_at"] is None
        again = bluesky(authpipe, "user_2")
        receiver.wait(lambda r: len(r.delivered()) == 1)
    [message] = messages(secret, receiver.delivered())
    assert message["type"] == "connection.created" and message["data"]["connection"]["id"] == again["id"]
    assert rows(authpipe, "SELECT status_code FROM webhook_attempts ORDER BY attempted_at") == [(410,), (204,)]
