"""The retention job, on SQLite and PostgreSQL: exactly what is past its retention goes, in
short batches, and a pending webhook's event stays."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from authpipe_server import projects
from authpipe_server.retention import RetentionJob
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import ConnectSession, Event, OAuthState, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from authpipe_server.store.types import utcnow
from authpipe_server.background.workers import background


def ago(now: datetime, **delta: float) -> datetime:
    return now - timedelta(**delta)


class Seed:
    """Rows of one project, each created as old (past retention) or recent."""

    def __init__(self, runtime: Runtime, project_id: str, endpoint_id: str) -> None:
        self.runtime, self.project_id, self.endpoint_id = runtime, project_id, endpoint_id

    @classmethod
    async def project(cls, runtime: Runtime) -> "Seed":
        async with runtime.db.writing() as session:
            project = await projects.create_project(session, f"p-{uuid.uuid4().hex[:8]}")
            endpoint = WebhookEndpoint(project_id=project.id, url="https://hooks.example.com/in", secret=b"sealed")
            session.add(endpoint)
            await session.flush()
            return cls(runtime, project.id, endpoint.id)

    async def connect_session(self, expires_at: datetime, *state_expiries: datetime) -> tuple[str, list[str]]:
        async with self.runtime.db.writing() as session:
            row = ConnectSession(
                project_id=self.project_id, token_hash=uuid.uuid4().hex, tenant_id="org_acme", user_id="user_1",
                expires_at=expires_at, created_at=expires_at - timedelta(minutes=30),
            )
            session.add(row)
            await session.flush()
            states = [
                OAuthState(state_hash=uuid.uuid4().hex, session_id=row.id, provider="spotify", expires_at=at, created_at=at - timedelta(minutes=10))
                for at in state_expiries
            ]
            session.add_all(states)
            await session.flush()
            return row.id, [state.id for state in states]

    async def event(self, created_at: datetime) -> str:
        async with self.runtime.db.writing() as session:
            row = Event(project_id=self.project_id, connection_id="conn_x", type="connection.created", data={}, created_at=created_at)
            session.add(row)
            await session.flush()
            return row.id

    async def delivery(self, event_id: str, status: str, created_at: datetime, attempts: int = 0) -> str:
        async with self.runtime.db.writing() as session:
            row = WebhookDelivery(
                project_id=self.project_id, endpoint_id=self.endpoint_id, event_id=event_id, connection_id="conn_x",
                status=status, attempts=attempts, next_attempt_at=created_at, created_at=created_at,
                delivered_at=created_at if status == "delivered" else None,
            )
            session.add(row)
            await session.flush()
            session.add_all(
                WebhookAttempt(delivery_id=row.id, attempted_at=created_at, status_code=500, latency_ms=12) for _ in range(attempts)
            )
            return row.id


async def ids(runtime: Runtime, model: Any) -> set[str]:
    async with runtime.db.sessions() as session:
        return set(await session.scalars(select(model.id)))


async def attempts_of(runtime: Runtime, delivery_id: str) -> int:
    async with runtime.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)) or 0)


async def test_one_run_deletes_exactly_what_is_past_retention(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    seed = await Seed.project(runtime)
    now = utcnow()
    # Connect sessions and states: expired more than 24 h ago goes; anything younger stays.
    await seed.connect_session(ago(now, hours=25), ago(now, hours=25, minutes=5), ago(now, hours=25))  # goes, with its states
    young_session, young_session_states = await seed.connect_session(ago(now, hours=23), ago(now, hours=23, minutes=5))
    live_session, live_session_states = await seed.connect_session(now + timedelta(minutes=20), now + timedelta(minutes=5))
    # Events (90 days by default) and deliveries (30): a finished old delivery goes with its
    # attempts; a pending one stays, and so does its event.
    event_delivered_old = await seed.event(ago(now, days=91))
    event_failed_old = await seed.event(ago(now, days=91))
    event_pending_old = await seed.event(ago(now, days=91))
    await seed.event(ago(now, days=90, hours=1))  # old and never sent: goes
    event_recent = await seed.event(ago(now, days=89))
    delivered_old = await seed.delivery(event_delivered_old, "delivered", ago(now, days=31), attempts=2)
    failed_old = await seed.delivery(event_failed_old, "failed", ago(now, days=31), attempts=3)
    pending_old = await seed.delivery(event_pending_old, "pending", ago(now, days=31), attempts=1)
    delivered_recent = await seed.delivery(event_recent, "delivered", ago(now, days=29), attempts=1)

    caplog.set_level(logging.INFO, logger="authpipe_server.retention")
    purged = await RetentionJob(runtime).purge()

    assert purged == {"oauth_states": 2, "connect_sessions": 1, "webhook_deliveries": 2, "events": 3}
    assert await ids(runtime, ConnectSession) == {young_session, live_session}
    assert await ids(runtime, OAuthState) == set(young_session_states + live_session_states)
    assert await ids(runtime, WebhookDelivery) == {pending_old, delivered_recent}
    assert [await attempts_of(runtime, d) for d in (delivered_old, failed_old, pending_old, delivered_recent)] == [0, 0, 1, 1]
    # The pending delivery's event stays however old it is; so does every recent event.
    assert await ids(runtime, Event) == {event_pending_old, event_recent}

    samples = {kind: runtime.metrics.registry.get_sample_value("authpipe_retention_purged_total", {"kind": kind}) for kind in purged}
    assert samples == {"oauth_states": 2.0, "connect_sessions": 1.0, "webhook_deliveries": 2.0, "events": 3.0}
    lines = [r.getMessage() for r in caplog.records if r.name == "authpipe_server.retention"]
    assert lines == ["retention: deleted 2 oauth_states, 1 connect_sessions, 2 webhook_deliveries, 3 events"]

    # A second run finds nothing, and says nothing.
    caplog.clear()
    assert await RetentionJob(runtime).purge() == {"oauth_states": 0, "connect_sessions": 0, "webhook_deliveries": 0, "events": 0}
    assert not [r for r in caplog.records if r.name == "authpipe_server.retention"]


async def test_batches_smaller_than_the_backlog_delete_it_all_a_batch_per_statement(runtime: Runtime) -> None:
    seed = await Seed.project(runtime)
    now = utcnow()
    old = [await seed.event(ago(now, days=100, minutes=i)) for i in range(5)]
    recent = await seed.event(ago(now, days=1))
    _, states = await seed.connect_session(ago(now, days=2), *(ago(now, days=2, minutes=i) for i in range(3)))
    deletes: list[str] = []

    def count_deletes(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM EVENTS"):
            deletes.append(statement)

    event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", count_deletes)
    try:
        purged = await RetentionJob(runtime, batch=2).purge()
    finally:
        event.remove(runtime.db.engine.sync_engine, "before_cursor_execute", count_deletes)

    assert purged == {"oauth_states": 3, "connect_sessions": 1, "webhook_deliveries": 0, "events": 5}
    assert len(deletes) == 3  # 2 + 2 + 1: each statement took at most a batch
    assert await ids(runtime, Event) == {recent}
    assert not set(old) & await ids(runtime, Event) and not set(states) & await ids(runtime, OAuthState)


async def test_retention_periods_come_from_the_settings(runtime: Runtime) -> None:
    runtime.settings = replace(runtime.settings, retention_events_days=7, retention_deliveries_days=2)
    seed = await Seed.project(runtime)
    now = utcnow()
    event_old, event_kept = await seed.event(ago(now, days=8)), await seed.event(ago(now, days=6))
    delivery_old = await seed.delivery(event_kept, "delivered", ago(now, days=3))
    delivery_kept = await seed.delivery(event_kept, "failed", ago(now, days=1))

    assert await RetentionJob(runtime).purge() == {"oauth_states": 0, "connect_sessions": 0, "webhook_deliveries": 1, "events": 1}
    assert await ids(runtime, Event) == {event_kept} and event_old not in await ids(runtime, Event)
    assert await ids(runtime, WebhookDelivery) == {delivery_kept} and delivery_old not in await ids(runtime, WebhookDelivery)


async def test_the_job_runs_in_the_background_and_stops_promptly(runtime: Runtime) -> None:
    seed = await Seed.project(runtime)
    old = await seed.event(ago(utcnow(), days=365))
    stop = asyncio.Event()
    task = asyncio.create_task(RetentionJob(runtime, first_run_delay=0.01, interval=3600).run(stop))
    for _ in range(200):
        if old not in await ids(runtime, Event):
            break
        await asyncio.sleep(0.02)
    assert old not in await ids(runtime, Event)
    stop.set()
    await asyncio.wait_for(task, 1.0)  # resting for an hour, yet it returns at once


async def test_background_work_includes_retention(runtime: Runtime) -> None:
    async with background(runtime):
        assert "retention" in {task.get_name() for task in asyncio.all_tasks()}
