"""Dashboard render times at 100,000 connections on PostgreSQL.

    .venv/bin/python bench/dashboard.py [DATABASE_URL] [--connections 100000] [--requests 50] [--keep]

DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/authpipe_bench_dashboard) names a
database this script DROPS and creates, migrates, and fills with one project of COUNT
connections (five providers; 2 % `error`, 2 % `revoked`; a thousand tenants) and their events
(created, refreshed, and the failure of each failing one; one connection has 300 events), then
VACUUM ANALYZE (the steady state autovacuum keeps a live database in). It is dropped again at the
end unless --keep.

Then it signs an operator in and requests each page REQUESTS times through the app in-process
(httpx.ASGITransport: the whole server side — session lookup, queries over loopback, templates,
middleware — without a network hop), and prints each page's median and p95 in milliseconds.
The issue's target: under 100 ms server time per page.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import asyncpg
import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url
from starlette.requests import Request

from authpipe_server import projects
from authpipe_server.api.app import create_app
from authpipe_server.config import load_settings
from authpipe_server.dashboard import accounts, sessions
from authpipe_server.ids import new_id
from authpipe_server.runtime import Runtime
from authpipe_server.store.db import Database, upgrade
from authpipe_server.store.models import Event

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/authpipe_bench_dashboard"
PROVIDERS = ("spotify", "facebook", "instagram", "buffer", "bluesky")
SCOPES = {"spotify": ["user-read-email"], "facebook": ["pages_show_list"], "instagram": ["instagram_basic"], "buffer": [], "bluesky": []}
TENANTS = 1000
BUSY_EVENTS = 300

CONNECTION_COLUMNS = (
    "id", "project_id", "tenant_id", "user_id", "provider", "status", "account_id", "account_name", "resources", "scopes",
    "secrets", "expires_at", "refresh_due_at", "check_due_at", "refresh_failures", "last_error_code", "last_error_message",
    "last_error_at", "created_at", "updated_at", "last_refreshed_at", "last_checked_at",
)
EVENT_COLUMNS = ("id", "project_id", "connection_id", "type", "data", "created_at")


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def recreate(url: str) -> None:
    name = make_url(url).database
    admin = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    db = Database.connect(make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        await upgrade(db.engine)
    finally:
        await db.dispose()


async def drop(url: str) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await admin.close()


def connection_rows(project_id: str, count: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """COUNT connections, oldest first (ids in creation order), made over the last 200 days."""
    rng = random.Random(12)
    start = now - timedelta(days=200)
    for i in range(count):
        provider = PROVIDERS[i % len(PROVIDERS)]
        roll = rng.random()
        status = "error" if roll < 0.02 else "revoked" if roll < 0.04 else "active"
        created = start + timedelta(seconds=200 * 86400 * i / count)
        expires = now + timedelta(minutes=rng.randint(-30, 60)) if provider != "bluesky" else None
        failing = status != "active" or rng.random() < 0.01
        error_at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 14)) if failing else None
        code = "invalid_grant" if status == "revoked" else "provider_error" if failing else None
        message = "the provider refused the refresh token" if status == "revoked" else "the provider answered 503" if failing else None
        yield (
            new_id("conn"), project_id, f"org_{i % TENANTS}", f"user_{i}", provider, status, f"acct-{i}", f"Listener {i}",
            json.dumps([{"id": f"page:{i}", "name": f"Page {i}"}] if provider == "facebook" else []), json.dumps(SCOPES[provider]),
            None, expires, expires - timedelta(minutes=10) if expires and status == "active" else None,
            now + timedelta(seconds=rng.randint(0, 3600)) if status == "active" else None, 3 if failing and status != "revoked" else 0,
            code, message, error_at, created, created, created + timedelta(minutes=5), now - timedelta(minutes=rng.randint(0, 600)),
        )


def view(row: tuple[Any, ...]) -> dict[str, Any]:
    """The connection's public view (what events carry), from a seeded row."""
    c = dict(zip(CONNECTION_COLUMNS, row))
    return {
        "id": c["id"], "provider": c["provider"], "tenant_id": c["tenant_id"], "user_id": c["user_id"], "status": c["status"],
        "account": {"id": c["account_id"], "name": c["account_name"]}, "resources": json.loads(c["resources"]),
        "scopes": json.loads(c["scopes"]), "expires_at": iso(c["expires_at"]), "created_at": iso(c["created_at"]),
        "last_refreshed_at": iso(c["last_refreshed_at"]), "last_checked_at": iso(c["last_checked_at"]),
        "last_error": {"code": c["last_error_code"], "message": c["last_error_message"], "at": iso(c["last_error_at"])} if c["last_error_code"] else None,
    }


def events_of(row: tuple[Any, ...], extra: int = 0) -> list[tuple[Any, ...]]:
    c = dict(zip(CONNECTION_COLUMNS, row))
    data = view(row)
    kinds = ["connection.created", "connection.refreshed"] + ["connection.refreshed"] * extra
    if c["status"] == "error":
        kinds.append("connection.refresh_failed")
    elif c["status"] == "revoked":
        kinds.append("connection.revoked")
    out = []
    for n, kind in enumerate(kinds):
        at = c["created_at"] + timedelta(minutes=n)
        body = json.dumps({"type": kind, "timestamp": iso(at), "data": {"connection": data}})
        out.append((None, c["project_id"], c["id"], kind, body, at))
    return out


async def seed(url: str, project_id: str, count: int) -> tuple[list[str], str]:
    """Write the connections and their events with COPY; returns the connection ids (oldest
    first) and the id of the connection with BUSY_EVENTS events."""
    now = datetime.now(timezone.utc)
    rows = list(connection_rows(project_id, count, now))
    busy = rows[len(rows) // 2]
    events = []
    for row in rows:
        events.extend(events_of(row, BUSY_EVENTS - 2 if row is busy else 0))
    events.sort(key=lambda e: e[5])
    events = [(new_id("evt"), *e[1:]) for e in events]  # ids in time order, as the server writes them
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.copy_records_to_table("connections", records=rows, columns=CONNECTION_COLUMNS)
        await conn.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)
        await conn.execute("VACUUM ANALYZE")  # the steady state autovacuum keeps a live database in
    finally:
        await conn.close()
    print(f"seeded {len(rows):,} connections and {len(events):,} events")
    return [r[0] for r in rows], busy[0]


def fake_request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [(b"user-agent", b"bench")], "client": ("127.0.0.1", 1)})


async def measure(client: httpx.AsyncClient, path: str, requests: int) -> tuple[float, float, int]:
    for _ in range(3):  # warm up: pools, template compilation, plans
        response = await client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], len(response.content)


async def run(url: str, count: int, requests: int, keep: bool) -> None:
    await recreate(url)
    try:
        master_key = base64.b64encode(os.urandom(32)).decode()
        settings = load_settings({"AUTHPIPE_DATABASE_URL": url, "AUTHPIPE_MASTER_KEY": master_key, "AUTHPIPE_WORKERS": "off"})
        runtime = await Runtime.open(settings)
        try:
            async with runtime.db.writing() as session:
                project = await projects.create_project(session, "bench")
                operator = await accounts.create_operator(session, "bench@example.com", accounts.hash_password("bench password 123"), None)
            ids, busy = await seed(url, project.id, count)
            started = await sessions.start(runtime.db, operator.id, fake_request())
            app = create_app(runtime)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as client:
                client.cookies.set(sessions.cookie_name(settings.public_url), started.token)
                base = f"/dashboard/projects/{project.id}"
                newest_first = ids[::-1]
                pages = [
                    ("overview", base),
                    ("list: first page", f"{base}/connections"),
                    ("list: status=error", f"{base}/connections?status=error"),
                    ("list: provider=spotify&status=revoked", f"{base}/connections?provider=spotify&status=revoked"),
                    ("list: tenant=org_42", f"{base}/connections?tenant=org_42"),
                    ("list: deep page (after the 90,000th)", f"{base}/connections?after={newest_first[min(90_000, len(ids) - 1)]}"),
                    ("list: back from deep (before=)", f"{base}/connections?before={newest_first[min(90_000, len(ids) - 1)]}"),
                    ("list: last page", f"{base}/connections?after={newest_first[-2]}"),
                    ("list: q=conn id prefix", f"{base}/connections?q={ids[len(ids) // 3][:14]}"),
                    ("list: q=account name prefix (scan)", f"{base}/connections?q=Listener%204242"),
                    ("list: q=exact user id (scan)", f"{base}/connections?q=user_77777"),
                    ("connection page", f"{base}/connections/{newest_first[len(ids) // 4]}"),
                    (f"connection page ({BUSY_EVENTS} events)", f"{base}/connections/{busy}"),
                    ("connection page (older events)", f"{base}/connections/{busy}?events_after={await oldest_event_but(runtime, busy, 40)}"),
                ]
                print(f"\n{count:,} connections on PostgreSQL; {requests} requests per page, in-process (httpx.ASGITransport):")
                print(f"  {'page':44} {'median':>9} {'p95':>9} {'bytes':>8}")
                for label, path in pages:
                    median, p95, size = await measure(client, path, requests)
                    print(f"  {label:44} {median:7.1f}ms {p95:7.1f}ms {size:8,}")
        finally:
            await runtime.close()
    finally:
        if not keep:
            await drop(url)


async def oldest_event_but(runtime: Runtime, connection_id: str, skip: int) -> str:
    """An event id `skip` events from the newest: a cursor into the timeline's older pages."""
    async with runtime.db.sessions() as session:
        found = await session.scalar(
            select(Event.id).where(Event.connection_id == connection_id).order_by(Event.id.desc()).offset(skip).limit(1)
        )
    assert found is not None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url", nargs="?", default=DEFAULT_URL)
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.connections, args.requests, args.keep))


if __name__ == "__main__":
    main()
