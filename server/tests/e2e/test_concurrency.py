"""Several `authpipe serve` processes sharing PostgreSQL: one refresh per connection however
many callers ask, and a process killed mid-refresh leaves the connection usable or explained."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

import httpx
import pytest

from authpipe_server.config import load_settings
from authpipe_server.runtime import Runtime
from tests.conftest import make_project, new_master_key
from tests.e2e.conftest import Authpipe, connect, control
from tests.processes import free_port, running_server


class Cluster:
    """Authpipe servers (workers off) on one PostgreSQL database, and the project they serve."""

    def __init__(self, pg_url: str, emulators: dict[str, str], count: int) -> None:
        self.env = {"AUTHPIPE_DATABASE_URL": pg_url, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_WORKERS": "off", "AUTHPIPE_EGRESS": "loopback"}
        self.ports = [free_port() for _ in range(count)]
        # One public URL (the OAuth redirect URI) for all, as behind a load balancer.
        self.env["AUTHPIPE_PUBLIC_URL"] = f"http://127.0.0.1:{self.ports[0]}"
        self.emulators = emulators
        self.project_id, self.secret = make_project(self.env, "cluster")
        self.servers = [self.start(port) for port in self.ports]

    def start(self, port: int) -> running_server:
        server = running_server(["serve"], self.env | {"AUTHPIPE_PORT": str(port)})
        server.__enter__()
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.__exit__(None, None, None)

    def authpipe(self, index: int = 0) -> Authpipe:
        return Authpipe(self.servers[index].url, self.project_id, self.secret, self.emulators, db_path="")


@pytest.fixture
def cluster(pg_url: str, emulators: dict[str, str]) -> Iterator[Cluster]:
    running = Cluster(pg_url, emulators, count=2)
    try:
        yield running
    finally:
        running.stop()


async def ask(cluster: Cluster, requests: list[tuple[int, str]], **params: Any) -> list[httpx.Response]:
    """Send every (server index, user id) request at once."""
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits, headers={"Authorization": f"Bearer {cluster.secret}"}) as client:
        return await asyncio.gather(
            *(
                client.get(
                    f"{cluster.servers[index].url}/v1/credentials",
                    params={"provider": "spotify", "tenant_id": "org_acme", "user_id": user, **params},
                )
                for index, user in requests
            )
        )


def wait_for(predicate: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def held(authpipe: Authpipe) -> int:
    return int(control(authpipe, "spotify", "hold", "GET")["waiting"])


@pytest.mark.parametrize("connections", [1, 20])
def test_stampede_makes_one_refresh_per_connection(cluster: Cluster, connections: int) -> None:
    first = cluster.authpipe(0)
    first.configure("spotify")
    users = [f"user_{i}" for i in range(connections)]
    for user in users:
        connect(first, "spotify", user_id=user)
    old = {user: first.api.get("/v1/credentials", params={"provider": "spotify", "tenant_id": "org_acme", "user_id": user}).json()["credential"] for user in users}
    control(first, "spotify", "counts", "DELETE")
    control(first, "spotify", "hold", kinds=["refresh"])

    requests = [(i % 2, users[i % connections]) for i in range(200)]  # 200 at once, over both servers

    async def scenario() -> list[httpx.Response]:
        pending = asyncio.ensure_future(ask(cluster, requests, min_ttl=3600))  # every token "expiring"
        await asyncio.to_thread(wait_for, lambda: held(first) == connections)
        await asyncio.sleep(0.5)  # let the stragglers pile up behind the locks
        assert held(first) == connections  # still exactly one refresh per connection at the provider
        control(first, "spotify", "release")
        return await pending

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 200
    assert control(first, "spotify", "counts", "GET")["refresh"] == connections
    by_user: dict[str, set[str]] = {}
    for (_, user), response in zip(requests, responses):
        by_user.setdefault(user, set()).add(response.json()["credential"])
    for user in users:
        assert len(by_user[user]) == 1 and by_user[user] != {old[user]}, user


@pytest.mark.parametrize(("provider", "survives"), [("spotify", True), ("buffer", False)])
def test_kill_mid_refresh(cluster: Cluster, provider: str, survives: bool) -> None:
    """SIGKILL the process while the provider holds its refresh. Spotify (no rotation): the next
    refresh simply works. Buffer (single-use rotating refresh tokens): the provider already
    rotated the token the dead process never stored, so the grant is gone — and the connection
    says so, naming the interrupted refresh."""
    first = cluster.authpipe(0)
    first.configure(provider)
    conn = connect(first, provider)
    params = {"provider": provider, "tenant_id": "org_acme", "user_id": "user_123"}
    control(first, provider, "hold", kinds=["refresh"])
    victim = cluster.servers[0]

    async def start_refresh() -> None:
        async with httpx.AsyncClient(timeout=2, headers={"Authorization": f"Bearer {cluster.secret}"}) as client:
            try:
                await client.get(f"{victim.url}/v1/credentials", params=params | {"min_ttl": "3600"})
            except httpx.HTTPError:
                pass  # the process is killed under us

    async def scenario() -> None:
        request = asyncio.ensure_future(start_refresh())
        await asyncio.to_thread(wait_for, lambda: int(control(first, provider, "hold", "GET")["waiting"]) == 1)
        victim.kill()
        control(first, provider, "release")
        await request

    asyncio.run(scenario())
    survivor = cluster.authpipe(1)
    # Answered at all (the client gives up after 30 s): the dead process's row lock was released.
    response = survivor.api.get("/v1/credentials", params=params | {"min_ttl": "3600"})
    after = survivor.api.get(f"/v1/connections/{conn['id']}").json()
    if survives:
        assert response.status_code == 200, response.text
        assert after["status"] == "active"
    else:
        assert response.status_code == 410
        assert after["status"] == "revoked"
        assert "interrupted" in after["last_error"]["message"]


def test_worker_processes_share_the_due_work(cluster: Cluster) -> None:
    """`authpipe worker` ×2 on one database: every due connection is refreshed once, by one of them."""
    import os
    import signal
    import subprocess

    from sqlalchemy import text

    from tests.processes import CLI

    first = cluster.authpipe(0)
    first.configure("spotify")
    ids = [connect(first, "spotify", user_id=f"user_{i}")["id"] for i in range(30)]
    control(first, "spotify", "counts", "DELETE")

    async def make_due() -> None:
        runtime = await Runtime.open(load_settings(cluster.env))
        try:
            async with runtime.db.writing() as session:
                await session.execute(text("UPDATE connections SET refresh_due_at = now() - interval '1 second'"))
        finally:
            await runtime.close()

    asyncio.run(make_due())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")} | cluster.env
    workers = [subprocess.Popen([*CLI, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        wait_for(lambda: control(first, "spotify", "counts", "GET")["refresh"] >= len(ids), 60)
        time.sleep(2)  # give a double refresh the chance to show
        assert control(first, "spotify", "counts", "GET")["refresh"] == len(ids)
        for connection_id in ids:
            assert first.api.get(f"/v1/connections/{connection_id}").json()["last_refreshed_at"] is not None
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        outputs = [worker.communicate(timeout=20)[1] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    assert all("worker started" in output for output in outputs)


def test_a_slow_provider_does_not_starve_the_database_pool(cluster: Cluster) -> None:
    """42 forced refreshes held by a slow provider (more than the 40 pooled connections a process
    has): no refresh holds a pooled connection while the provider answers, so another project's
    reads on the same process go on, and every held refresh completes once the provider answers."""
    first = cluster.authpipe(0)
    first.configure("spotify")
    users = [f"user_{i}" for i in range(42)]
    for user in users:
        connect(first, "spotify", user_id=user)
    other_id, other_secret = make_project(cluster.env, "other")
    other = Authpipe(cluster.servers[0].url, other_id, other_secret, cluster.emulators, db_path="")
    other.configure("spotify")
    connect(other, "spotify")
    control(first, "spotify", "hold", kinds=["refresh"])

    async def scenario() -> tuple[list[httpx.Response], list[int]]:
        storm = asyncio.ensure_future(ask(cluster, [(0, user) for user in users], force_refresh="true"))
        await asyncio.to_thread(wait_for, lambda: held(first) == len(users))
        params = {"provider": "spotify", "tenant_id": "org_acme", "user_id": "user_123"}
        statuses = []
        for _ in range(20):
            read = await asyncio.to_thread(other.api.get, "/v1/credentials", params=params)
            statuses.append(read.status_code)
        control(first, "spotify", "release")
        return await storm, statuses

    held_refreshes, other_reads = asyncio.run(scenario())
    assert other_reads == [200] * 20
    assert [r.status_code for r in held_refreshes] == [200] * len(users)
    assert control(first, "spotify", "counts", "GET")["refresh"] == len(users)
