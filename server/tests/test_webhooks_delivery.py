"""The outbox and the delivery worker, on SQLite and PostgreSQL, delivering over real HTTP to a
receiver on loopback that checks signatures with the independent `standardwebhooks` package.

`Receiver` is shared with the end-to-end tests (tests/e2e/test_webhooks.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authpipe_server.emulators import serve_in_thread
from authpipe_server.events.record import (
    CREATED,
    DELETED,
    REFRESHED,
    REVOKED,
    record_event,
)
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import (
    Connection,
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from authpipe_server.store.types import utcnow
from authpipe_server.webhooks.delivery import DeliveryWorker
from authpipe_server.webhooks.endpoints import get_endpoint, put_endpoint

# -- the receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """A webhook receiver: records every request and answers `status` (or the next of `script`)."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.script: deque[int] = deque()
        self.delay = 0.0
        self.received: list[Received] = []
        self.url = ""
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                status = self.script.popleft() if self.script else self.status
                self.received.append(Received(dict(request.headers), body, status))
                delay = self.delay
            if delay:
                await asyncio.sleep(delay)
            return Response(status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    @contextlib.contextmanager
    def serve(self) -> Iterator[Receiver]:
        with serve_in_thread(self.app()) as base:
            self.url = f"{base}/hook"
            yield self

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        return [r for r in self.snapshot() if 200 <= r.status < 300]

    def wait(self, predicate: Callable[[Receiver], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            assert time.monotonic() < deadline, f"receiver waited in vain; got {[(r.id, r.status) for r in self.snapshot()]}"
            time.sleep(0.02)

    @staticmethod
    def verify(secret: str, request: Received) -> dict[str, Any]:
        """The body, after the independent library checked its signature (raises if it is wrong)."""
        body: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
        return body


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For tests of HTTP behaviour; claiming, ordering and the outbox run on both databases."""

# -- helpers -----------------------------------------------------------------------------------


async def new_connection(runtime: Runtime, project_id: str, user_id: str) -> Connection:
    async with runtime.db.writing() as session:
        connection = Connection(project_id=project_id, tenant_id="org_acme", user_id=user_id, provider="spotify", scopes=["user-read-email"], resources=[])
        session.add(connection)
        await session.flush()
        await record_event(session, connection, CREATED)
    return connection


async def change(runtime: Runtime, connection_id: str, type_: str) -> None:
    async with runtime.db.writing() as session:
        connection = await session.get(Connection, connection_id)
        assert connection is not None
        await record_event(session, connection, type_)


async def deliveries(runtime: Runtime, **where: Any) -> list[WebhookDelivery]:
    async with runtime.db.sessions() as session:
        query = select(WebhookDelivery).filter_by(**where).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        return list((await session.scalars(query)).all())


async def attempts(runtime: Runtime, delivery_id: str) -> list[WebhookAttempt]:
    async with runtime.db.sessions() as session:
        query = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.attempted_at)
        return list((await session.scalars(query)).all())


async def until(condition: Callable[[], Any], worker: DeliveryWorker, timeout: float = 15.0) -> None:
    """Run the worker until `condition()` (sync or async) holds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "the condition never held"
        await worker.run_once()
        await asyncio.sleep(0.01)


def fast(runtime: Runtime, **options: Any) -> DeliveryWorker:
    defaults: dict[str, Any] = {"schedule": (0.01, 0.01, 0.01, 0.01), "jitter": 0.0, "idle": 0.01}
    return DeliveryWorker(runtime, **(defaults | options))


def count(runtime: Runtime, outcome: str) -> float:
    return runtime.metrics.registry.get_sample_value("authpipe_webhook_deliveries_total", {"outcome": outcome}) or 0.0


# -- the outbox --------------------------------------------------------------------------------


async def test_outbox_rows_are_written_with_their_events(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    quiet = await new_connection(runtime, project_id, "before_any_endpoint")  # no endpoint yet: logged only
    assert await deliveries(runtime) == []
    await put_endpoint(runtime, project_id, "https://hooks.example.com/authpipe")

    conn = await new_connection(runtime, project_id, "user_1")
    await change(runtime, conn.id, REFRESHED)  # in the log, not a webhook type
    await change(runtime, conn.id, REVOKED)
    with pytest.raises(RuntimeError):  # a state change that rolls back leaves neither event nor delivery
        async with runtime.db.writing() as session:
            row = await session.get(Connection, conn.id)
            assert row is not None
            await record_event(session, row, DELETED)
            raise RuntimeError("the change failed")

    queued = await deliveries(runtime)
    async with runtime.db.sessions() as session:
        events = {e.id: e for e in (await session.scalars(select(Event).where(Event.connection_id == conn.id))).all()}
        assert await session.scalar(select(func.count()).select_from(Event).where(Event.connection_id == quiet.id)) == 1
    assert sorted(e.type for e in events.values()) == ["connection.created", "connection.refreshed", "connection.revoked"]
    assert [events[d.event_id].type for d in queued] == ["connection.created", "connection.revoked"]
    assert all(d.status == "pending" and d.connection_id == conn.id and d.project_id == project_id for d in queued)


@SQLITE_ONLY
async def test_a_disabled_endpoint_gets_nothing_queued(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    endpoint, _ = await put_endpoint(runtime, project_id, "https://hooks.example.com/authpipe")
    async with runtime.db.writing() as session:
        row = await session.get(WebhookEndpoint, endpoint.id)
        assert row is not None
        row.disabled_at = utcnow()
    await new_connection(runtime, project_id, "user_1")
    assert await deliveries(runtime) == []


# -- delivering --------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_delivered_signed_with_a_stable_id_and_recorded(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    with Receiver().serve() as receiver:
        _, secret = await put_endpoint(runtime, project_id, receiver.url)
        conn = await new_connection(runtime, project_id, "user_1")
        worker = fast(runtime)
        assert await worker.run_once() == 1
        [request] = receiver.snapshot()

    [delivery] = await deliveries(runtime)
    body = Receiver.verify(secret, request)
    async with runtime.db.sessions() as session:
        event = await session.get(Event, delivery.event_id)
    assert event is not None and body == event.data  # exactly the stored event
    assert body["type"] == "connection.created" and body["data"]["connection"]["id"] == conn.id
    assert set(body) == {"type", "timestamp", "data"} and set(body["data"]) == {"connection"}
    assert request.id == delivery.id and request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,") and " " not in request.headers["webhook-signature"]
    with pytest.raises(WebhookVerificationError):
        Receiver.verify("whsec_" + base64.b64encode(b"x" * 32).decode(), request)
    assert delivery.status == "delivered" and delivery.attempts == 1 and delivery.delivered_at is not None
    [attempt] = await attempts(runtime, delivery.id)
    assert attempt.status_code == 204 and attempt.error is None and attempt.latency_ms >= 0
    assert count(runtime, "delivered") == 1
    assert await worker.run_once() == 0  # delivered once, never again


async def test_outage_then_every_message_in_order_exactly_once(runtime: Runtime, project: tuple[str, str]) -> None:
    """The receiver answers 500 for a while; afterwards it has every message once, each
    connection's in order, and a retried message kept its webhook-id."""
    project_id, _ = project
    with Receiver(status=500).serve() as receiver:
        _, secret = await put_endpoint(runtime, project_id, receiver.url)
        worker = fast(runtime, schedule=(0.01,) * 50)
        a = await new_connection(runtime, project_id, "user_a")
        b = await new_connection(runtime, project_id, "user_b")
        await change(runtime, a.id, REVOKED)
        await change(runtime, b.id, DELETED)
        await change(runtime, a.id, DELETED)
        await until(lambda: len(receiver.snapshot()) >= 6, worker)
        # While the first message of a connection fails, its later ones are held back.
        failing = {r.id for r in receiver.snapshot()}
        queued = await deliveries(runtime)
        firsts = {queued[0].id, queued[1].id}
        assert failing == firsts
        receiver.status = 204
        await until(lambda: len(receiver.delivered()) == 5, worker)
        await worker.run_once()

    got = [(Receiver.verify(secret, r)["data"]["connection"]["id"], Receiver.verify(secret, r)["type"], r.id) for r in receiver.delivered()]
    assert len({message_id for _, _, message_id in got}) == 5  # exactly once each
    assert [t for c, t, _ in got if c == a.id] == ["connection.created", "connection.revoked", "connection.deleted"]
    assert [t for c, t, _ in got if c == b.id] == ["connection.created", "connection.deleted"]
    assert failing <= {message_id for _, _, message_id in got}  # the retried messages kept their ids
    retried = next(d for d in await deliveries(runtime) if d.id in failing)
    tries = await attempts(runtime, retried.id)
    assert [t.status_code for t in tries][-1] == 204 and {t.status_code for t in tries[:-1]} == {500}
    assert retried.attempts == len(tries) >= 3
    assert count(runtime, "retry") >= 4 and count(runtime, "delivered") == 5


@SQLITE_ONLY
async def test_refused_connections_and_timeouts_are_retried(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    _, old_secret = await put_endpoint(runtime, project_id, dead_url())
    await new_connection(runtime, project_id, "user_1")
    worker = fast(runtime, timeout=0.2)
    assert await worker.run_once() == 1  # refused: no crash, recorded, still pending
    [delivery] = await deliveries(runtime)
    [attempt] = await attempts(runtime, delivery.id)
    assert delivery.status == "pending" and attempt.status_code is None and "Connect" in (attempt.error or "")

    with Receiver().serve() as receiver:
        receiver.delay = 0.6  # slower than the worker's timeout
        _, new_secret = await put_endpoint(runtime, project_id, receiver.url)  # same endpoint, new secret
        await until(lambda: len(receiver.snapshot()) >= 1, worker)
        await asyncio.sleep(0.05)
        [delivery] = await deliveries(runtime)
        assert delivery.status == "pending" and "timeout" in (delivery.last_error or "")
        receiver.delay = 0.0
        await until(lambda: len(receiver.snapshot()) >= 2, worker)

    request = receiver.snapshot()[-1]  # (the first got its 204 after the worker had given up on it)
    assert request.id == delivery.id
    [delivery] = await deliveries(runtime)
    assert delivery.status == "delivered"
    # During the rotation both secrets sign: `v1,… v1,…`, and either verifies.
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Receiver.verify(new_secret, request) == Receiver.verify(old_secret, request)
    tries = await attempts(runtime, delivery.id)
    assert [t.status_code for t in tries] == [None, None, 204]


@SQLITE_ONLY
async def test_gone_disables_the_endpoint(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    with Receiver(status=410).serve() as receiver:
        await put_endpoint(runtime, project_id, receiver.url)
        a = await new_connection(runtime, project_id, "user_a")
        await change(runtime, a.id, REVOKED)
        b = await new_connection(runtime, project_id, "user_b")
        worker = fast(runtime)
        await until(lambda: len(receiver.snapshot()) >= 1, worker)
        for _ in range(3):
            await worker.run_once()
        sent = len(receiver.snapshot())

        endpoint = await get_endpoint(runtime, project_id)
        assert endpoint is not None and endpoint.disabled_at is not None
        assert sent <= 2  # a and b may have been in flight together; nothing after the 410
        assert {d.status for d in await deliveries(runtime)} == {"failed"}
        await change(runtime, b.id, DELETED)  # a disabled endpoint queues nothing
        assert len(await deliveries(runtime)) == 3
        assert count(runtime, "disabled") >= 1

        receiver.status = 204
        await put_endpoint(runtime, project_id, receiver.url)  # enabled again
        endpoint = await get_endpoint(runtime, project_id)
        assert endpoint is not None and endpoint.disabled_at is None
        await change(runtime, a.id, DELETED)
        await until(lambda: receiver.delivered(), worker)
    assert len(receiver.delivered()) == 1


@SQLITE_ONLY
async def test_gives_up_after_the_schedule_then_the_next_message_goes(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    with Receiver(status=503).serve() as receiver:
        await put_endpoint(runtime, project_id, receiver.url)
        conn = await new_connection(runtime, project_id, "user_1")
        await change(runtime, conn.id, DELETED)
        receiver.script.extend([503, 503, 503])  # the first message: 3 tries (schedule of 2), then failed
        receiver.status = 200
        worker = fast(runtime, schedule=(0.01, 0.01))
        await until(lambda: len(receiver.delivered()) == 1, worker)

    first, second = await deliveries(runtime)
    assert (first.status, first.attempts, first.last_status_code) == ("failed", 3, 503)
    assert (second.status, second.attempts) == ("delivered", 1)
    assert [r.id for r in receiver.snapshot()] == [first.id] * 3 + [second.id]
    assert count(runtime, "failed") == 1


@SQLITE_ONLY
async def test_retry_delays_grow_with_jitter(runtime: Runtime) -> None:
    worker = DeliveryWorker(runtime)
    assert worker.schedule[0] <= 10 and sum(worker.schedule) >= 24 * 3600  # about a day of retries
    assert all(later >= earlier for earlier, later in zip(worker.schedule, worker.schedule[1:]))
    delays = {worker._delay(1) for _ in range(20)}
    assert len(delays) > 1 and all(4 <= d <= 6 for d in delays)


async def test_claims_are_leased_and_never_shared(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    await put_endpoint(runtime, project_id, dead_url())
    connections = [await new_connection(runtime, project_id, f"user_{i}") for i in range(6)]
    for conn in connections:
        await change(runtime, conn.id, REVOKED)
    workers = [DeliveryWorker(runtime, batch=4) for _ in range(3)]
    claims = await asyncio.gather(*(w.claim() for w in workers))
    claimed = [d for batch in claims for d, _endpoint in batch]
    queued = await deliveries(runtime)
    assert len(queued) == 12
    assert len(claimed) == len(set(claimed)) == 6  # each connection's first message, once
    assert set(claimed) == {d.id for d in queued[:6]}  # the `created` ones, queued first
    assert await workers[0].claim() == []  # leased, and the later messages wait for the earlier

    short = DeliveryWorker(runtime, lease=0.0)
    async with runtime.db.writing() as session:  # a worker died: its leases run out
        for delivery_id in claimed[:2]:
            row = await session.get(WebhookDelivery, delivery_id)
            assert row is not None
            row.claimed_until = utcnow()
    await asyncio.sleep(0.01)
    assert sorted(d for d, _endpoint in await short.claim()) == sorted(claimed[:2])


@SQLITE_ONLY
async def test_the_worker_runs_until_stopped(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id, _ = project
    with Receiver().serve() as receiver:
        _, secret = await put_endpoint(runtime, project_id, receiver.url)
        stop = asyncio.Event()
        task = asyncio.create_task(fast(runtime).run(stop))
        conn = await new_connection(runtime, project_id, "user_1")
        await change(runtime, conn.id, DELETED)
        deadline = time.monotonic() + 10
        while len(receiver.delivered()) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert [Receiver.verify(secret, r)["type"] for r in receiver.delivered()] == ["connection.created", "connection.deleted"]
