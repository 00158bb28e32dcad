"""Credential read speed and proactive-refresh throughput.

    .venv/bin/python bench/credentials.py read      [--seconds 10] [--connections 64]
    .venv/bin/python bench/credentials.py scheduler [--count 100000] [--database-url URL]

`read`: requests per second and p50/p99 latency of `GET /v1/credentials` on one `authpipe serve`
process (SQLite, workers off, a warm token), beside a bare endpoint of the same framework
(FastAPI on uvicorn, one process) returning a constant, in the same run, under the same load
from `wrk` (Debian's wrk; `apt-get install wrk`). Target: ratio >= 0.5.

`storm`: one `authpipe serve` process on PostgreSQL (workers off); 42 forced refreshes of one
project's connections are held by a slow provider (the emulator holds them for 10 s), more than
the process's 40 pooled database connections; meanwhile another project reads its credential
200 times. Prints those reads' latency and statuses: a slow provider must not starve the pool.

`scheduler`: COUNT connections all due at once, refreshed by one process's RefreshScheduler
against the Spotify emulator (in a child process, seeded with COUNT grants): wall time and the
process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import multiprocessing
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import httpx

HERE = Path(__file__).resolve().parent
AUTHPIPE = [sys.executable, "-m", "authpipe_server.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, process: Any) -> None:
    for _ in range(300):
        alive = process.is_alive() if hasattr(process, "is_alive") else process.poll() is None
        if not alive:
            raise SystemExit(f"{url}: the server exited")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


BARE_APP = """
from fastapi import FastAPI
app = FastAPI()
BODY = {"credential": "x" * 64, "token_type": "bearer", "expires_at": "2026-11-30T12:00:00Z",
        "connection_id": "conn_01M8NB6WCED5VPH3J4FG91MTSD", "provider": "spotify", "scopes": ["user-read-email"]}
@app.get("/v1/credentials")
async def constant() -> dict:
    return BODY
"""


def wrk(url: str, seconds: int, connections: int, header: str | None) -> tuple[float, float, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if header:
        args[1:1] = ["-H", header]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} requests failed against {url}")
    return rps, percentile("50"), percentile("99")


async def seed_connection(env: dict[str, str]) -> str:
    from authpipe_server import projects
    from authpipe_server.config import load_settings
    from authpipe_server.connections.secrets import TokenSet
    from authpipe_server.connections.service import Owner, save_grant
    from authpipe_server.providers.base import Account, Described, Grant
    from authpipe_server.runtime import Runtime
    from authpipe_server.store.types import utcnow

    runtime = await Runtime.open(load_settings(env))
    try:
        async with runtime.db.writing() as session:
            project = await projects.create_project(session, "bench")
            key = await projects.create_key(session, project)
        grant = Grant(TokenSet(access_token="BQ" + "a" * 200, refresh_token="AQ" + "b" * 120), utcnow() + timedelta(days=1), ["user-read-email"])
        await save_grant(runtime, Owner(project.id, "org_bench", "user_1", "spotify"), grant, Described(Account("u1", "Bench")), [])
        return key.secret
    finally:
        await runtime.close()


def bench_read(seconds: int, connections: int) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench read needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ) | {
            "AUTHPIPE_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "AUTHPIPE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "AUTHPIPE_WORKERS": "off",
            "AUTHPIPE_EGRESS": "loopback",
        }
        secret = asyncio.run(seed_connection(env))
        (Path(tmp) / "bare.py").write_text(BARE_APP)
        bare_port, authpipe_port = free_port(), free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(bare_port), "--log-level", "warning", "--no-access-log"],
            cwd=tmp,
        )
        server = subprocess.Popen([*AUTHPIPE, "serve"], env=env | {"AUTHPIPE_PORT": str(authpipe_port)}, stderr=subprocess.DEVNULL)
        try:
            wait_up(f"http://127.0.0.1:{bare_port}/v1/credentials", bare)
            wait_up(f"http://127.0.0.1:{authpipe_port}/healthz", server)
            query = "/v1/credentials?provider=spotify&tenant_id=org_bench&user_id=user_1"
            check = httpx.get(f"http://127.0.0.1:{authpipe_port}{query}", headers={"Authorization": f"Bearer {secret}"})
            assert check.status_code == 200, check.text
            header = f"Authorization: Bearer {secret}"
            wrk(f"http://127.0.0.1:{bare_port}{query}", 2, connections, None)  # warm-up
            wrk(f"http://127.0.0.1:{authpipe_port}{query}", 2, connections, header)
            bare_rps, bare_p50, bare_p99 = wrk(f"http://127.0.0.1:{bare_port}{query}", seconds, connections, None)
            rps, p50, p99 = wrk(f"http://127.0.0.1:{authpipe_port}{query}", seconds, connections, header)
        finally:
            for process in (bare, server):
                process.terminate()
                process.wait()
    print(f"GET /v1/credentials, one process, wrk -t2 -c{connections} -d{seconds}s:")
    print(f"  bare FastAPI constant     {bare_rps:9.0f} req/s   p50 {bare_p50:6.2f} ms   p99 {bare_p99:6.2f} ms")
    print(f"  Authpipe credential read  {rps:9.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    print(f"  ratio                     {rps / bare_rps:9.2f}   (target >= 0.5)")


# -- scheduler --------------------------------------------------------------------------------


def run_emulator(port: int, count: int, ready: "multiprocessing.synchronize.Event") -> None:
    import uvicorn

    from authpipe_server.emulators import spotify
    from authpipe_server.emulators.oauth import Grant

    app = spotify.create_app()
    oauth = app.state.emulator.oauth
    now = time.time()
    for i in range(count):
        grant = Grant(id=f"g{i}", client_id="sandbox-client", user_id="sandbox_user", scopes=("user-read-email",), declined=(), authorized_at=now, public=False)
        oauth.grants[grant.id] = grant
        token = oauth.issue_refresh(grant, now=now, expires_at=None)
        oauth.refresh.pop(token.value)
        token.value = f"AQbench{i}"
        oauth.refresh[token.value] = token
        access = oauth.issue_access(grant, now=now, expires_at=None)
        oauth.access.pop(access.value)
        access.value = f"BQbench{i}"
        oauth.access[access.value] = access
    ready.set()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.asynccontextmanager
async def seeded(count: int, database_url: str | None, *, due: str) -> AsyncIterator[tuple[Any, int]]:
    """A Runtime with COUNT Spotify connections whose `due` work ("refresh" or "check") is due
    now, and the Spotify emulator (child process) seeded with their grants: (runtime, port)."""
    from sqlalchemy import insert

    from authpipe_server import projects
    from authpipe_server.config import load_settings
    from authpipe_server.connections.secrets import TokenSet
    from authpipe_server.ids import new_id
    from authpipe_server.providers.apps import save_app
    from authpipe_server.runtime import Runtime
    from authpipe_server.sandbox.providers import overrides
    from authpipe_server.store.models import Connection
    from authpipe_server.store.types import utcnow
    from authpipe_server.vault import Place

    port = free_port()
    fork = multiprocessing.get_context("fork")
    ready = fork.Event()
    emulator = fork.Process(target=run_emulator, args=(port, count, ready), daemon=True)
    emulator.start()
    ready.wait(600)
    tmp = tempfile.mkdtemp()
    env = {
        "AUTHPIPE_DATABASE_URL": database_url or f"sqlite:///{tmp}/bench.db",
        "AUTHPIPE_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "AUTHPIPE_WORKERS": "off",
        "AUTHPIPE_EGRESS": "loopback",
    }
    runtime = await Runtime.open(load_settings(env))
    runtime.env = env  # type: ignore[attr-defined]  # for benchmarks that start a server on it
    try:
        wait_up(f"http://127.0.0.1:{port}/_control/counts", emulator)
        async with runtime.db.writing() as session:
            project = await projects.create_project(session, f"bench-{os.getpid()}")
        await save_app(runtime, project.id, "spotify", client_id="sandbox-client", client_secret="sandbox-secret", scopes=[], overrides=overrides("spotify", f"http://127.0.0.1:{port}"), definition=None)
        now = utcnow()
        rows = []
        for i in range(count):
            tenant = f"org_{i % 100}"
            connection_id = new_id("conn")
            sealed = await runtime.vault.encrypt(
                Place(project.id, tenant, "connections", connection_id, "secrets"),
                TokenSet(access_token=f"BQbench{i}", refresh_token=f"AQbench{i}").to_bytes(),
            )
            rows.append({
                "id": connection_id, "project_id": project.id, "tenant_id": tenant, "user_id": f"user_{i}",
                "provider": "spotify", "status": "active", "secrets": sealed, "expires_at": now + timedelta(seconds=300 if due == "refresh" else 86400),
                "refresh_due_at": now if due == "refresh" else None, "check_due_at": now if due == "check" else None,
                "resources": [], "scopes": [], "refresh_failures": 0, "created_at": now, "updated_at": now,
            })
        for start in range(0, count, 5000):
            async with runtime.db.writing() as session:
                await session.execute(insert(Connection), rows[start : start + 5000])
        del rows
        yield runtime, port
    finally:
        await runtime.close()
        emulator.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


async def bench_scheduler(count: int, database_url: str | None) -> None:
    from sqlalchemy import func, select

    from authpipe_server.credentials.scheduler import RefreshScheduler
    from authpipe_server.store.models import Connection

    async with seeded(count, database_url, due="refresh") as (runtime, port):
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scheduler = RefreshScheduler(runtime)
        started = time.perf_counter()
        while await scheduler.run_once():
            pass
        elapsed = time.perf_counter() - started
        rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        async with runtime.db.sessions() as session:
            refreshed = await session.scalar(select(func.count()).where(Connection.last_refreshed_at.is_not(None)))
        counts = httpx.get(f"http://127.0.0.1:{port}/_control/counts").json()
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"proactive refresh of {count} due connections, one process ({backend}), Spotify emulator in a child process:")
    print(f"  refreshed                  {refreshed} (emulator saw {counts['refresh']} refreshes)")
    print(f"  wall time                  {elapsed:8.1f} s   ({count / elapsed:.0f} refreshes/s)")
    print(f"  peak RSS                   {rss_peak / 1024:8.1f} MiB (before the run: {rss_before / 1024:.1f} MiB)")


async def bench_storm(database_url: str, held: int, hold_seconds: float) -> None:
    from sqlalchemy import select

    from authpipe_server import projects
    from authpipe_server.connections.secrets import TokenSet
    from authpipe_server.connections.service import Owner, save_grant
    from authpipe_server.providers.base import Account, Described, Grant
    from authpipe_server.store.models import Project
    from authpipe_server.store.types import utcnow

    async with seeded(held, database_url, due="check") as (runtime, port):
        env = runtime.env  # type: ignore[attr-defined]
        async with runtime.db.writing() as session:
            other = await projects.create_project(session, f"other-{os.getpid()}")
            other_key = await projects.create_key(session, other)
            slow = await session.scalar(select(Project).where(Project.name == f"bench-{os.getpid()}"))
            slow_key = await projects.create_key(session, slow)
        grant = Grant(TokenSet(access_token="BQ" + "o" * 100), utcnow() + timedelta(days=1), [])
        await save_grant(runtime, Owner(other.id, "org_other", "user_1", "spotify"), grant, Described(Account("o1", "Other")), [])
        server_port = free_port()
        server = subprocess.Popen([*AUTHPIPE, "serve"], env=dict(os.environ) | env | {"AUTHPIPE_PORT": str(server_port)}, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{server_port}"
        try:
            wait_up(f"{base}/healthz", server)
            httpx.post(f"http://127.0.0.1:{port}/_control/hold", json={"kinds": ["refresh"]}).raise_for_status()
            limits = httpx.Limits(max_connections=held + 10)
            async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
                slow_auth = {"Authorization": f"Bearer {slow_key.secret}"}
                storm = [
                    asyncio.ensure_future(client.get("/v1/credentials", headers=slow_auth, params={"provider": "spotify", "tenant_id": f"org_{i % 100}", "user_id": f"user_{i}", "force_refresh": "true"}))
                    for i in range(held)
                ]
                while httpx.get(f"http://127.0.0.1:{port}/_control/hold").json()["waiting"] < held:
                    await asyncio.sleep(0.05)
                release_at = time.monotonic() + hold_seconds
                latencies, statuses = [], []
                for _ in range(200):
                    started = time.perf_counter()
                    read = await client.get("/v1/credentials", headers={"Authorization": f"Bearer {other_key.secret}"}, params={"provider": "spotify", "tenant_id": "org_other", "user_id": "user_1"})
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses.append(read.status_code)
                await asyncio.sleep(max(0.0, release_at - time.monotonic()))
                httpx.post(f"http://127.0.0.1:{port}/_control/release").raise_for_status()
                storm_statuses = [r.status_code for r in await asyncio.gather(*storm)]
        finally:
            server.terminate()
            server.wait()
    latencies.sort()
    print(f"{held} forced refreshes held by a slow provider, another project's reads meanwhile (one process, PostgreSQL):")
    print(f"  other project's reads      200: {statuses.count(200)}/200   p50 {latencies[99]:.2f} ms   p99 {latencies[197]:.2f} ms   max {latencies[-1]:.2f} ms")
    print(f"  held refreshes             200: {storm_statuses.count(200)}/{held}   others: {sorted(set(storm_statuses) - {200})}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    read = sub.add_parser("read")
    read.add_argument("--seconds", type=int, default=10)
    read.add_argument("--connections", type=int, default=64)
    sched = sub.add_parser("scheduler")
    sched.add_argument("--count", type=int, default=100_000)
    sched.add_argument("--database-url")
    storm = sub.add_parser("storm")
    storm.add_argument("--database-url", required=True, help="postgresql://… (an empty, migrated database)")
    storm.add_argument("--held", type=int, default=42)
    storm.add_argument("--hold-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.what == "read":
        bench_read(args.seconds, args.connections)
    elif args.what == "storm":
        asyncio.run(bench_storm(args.database_url, args.held, args.hold_seconds))
    else:
        asyncio.run(bench_scheduler(args.count, args.database_url))


if __name__ == "__main__":
    main()
