"""`AsyncAuthpipe`: the same cache and rules as `Authpipe`, with tasks instead of threads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from support import Sandbox, make_async_client

from authpipe import AuthpipeError, ConnectionNotFound, Credential

BLUESKY = {"provider": "bluesky", "tenant_id": "org_acme"}


async def holding(sandbox: Sandbox) -> bool:
    """Whether the Bluesky emulator is holding a refresh (the server is refreshing for a caller)."""
    return int((await asyncio.to_thread(sandbox.control, "bluesky", "GET", "hold"))["waiting"]) > 0


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_a_hit_completes_without_awaiting_anything(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    ap, transport = make_async_client(sandbox)
    async with ap:
        first = await ap.get_credential(**BLUESKY, user_id=user_id)
        for _ in range(1000):
            call = ap.get_credential(**BLUESKY, user_id=user_id)
            # The coroutine finishes at its first step: it never suspends, so it does no I/O.
            with pytest.raises(StopIteration) as done:
                call.send(None)
            assert done.value.value is first
        assert transport.count == 1


async def test_concurrent_misses_from_100_tasks_make_one_request(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    ap, transport = make_async_client(sandbox)
    async with ap:
        await asyncio.to_thread(sandbox.control, "bluesky", "POST", "hold", {"kinds": ["refresh"]})
        try:
            # More than the token's lifetime: a miss, and a refresh the emulator holds; a task
            # that came late would miss again.
            tasks = [asyncio.create_task(ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300)) for _ in range(100)]
            await eventually(lambda: holding(sandbox))
            await asyncio.sleep(0.2)
        finally:
            await asyncio.to_thread(sandbox.control, "bluesky", "POST", "release")
        results = await asyncio.gather(*tasks)
    assert len({id(c) for c in results}) == 1 and isinstance(results[0], Credential)
    assert transport.count == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_request(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    ap, transport = make_async_client(sandbox)
    async with ap:
        await asyncio.to_thread(sandbox.control, "bluesky", "POST", "hold", {"kinds": ["refresh"]})
        try:
            leader = asyncio.create_task(ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300))
            follower = asyncio.create_task(ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300))
            await eventually(lambda: holding(sandbox))
            leader.cancel()
        finally:
            await asyncio.to_thread(sandbox.control, "bluesky", "POST", "release")
        assert isinstance(await follower, Credential)
        assert leader.cancelled()
    assert transport.count == 1


async def test_refresh_ahead_runs_one_background_task(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id, access_ttl=90)  # inside the refresh-ahead window at once
    ap, transport = make_async_client(sandbox)
    async with ap:
        first = await ap.get_credential(**BLUESKY, user_id=user_id)
        served = await asyncio.gather(*(ap.get_credential(**BLUESKY, user_id=user_id) for _ in range(100)))
        assert all(c is first for c in served)

        async def replaced() -> bool:
            return await ap.get_credential(**BLUESKY, user_id=user_id) is not first

        await eventually(replaced)
        assert transport.count == 2


async def test_errors(sandbox: Sandbox) -> None:
    ap, transport = make_async_client(sandbox)
    async with ap:
        with pytest.raises(ConnectionNotFound) as caught:
            await ap.get_credential(**BLUESKY, user_id="nobody")
        assert (caught.value.status, caught.value.code) == (404, "connection_not_found")
        with pytest.raises(AuthpipeError) as invalid:
            await ap.get_credential(provider="bluesky", tenant_id="bad tenant!", user_id="u1")
        assert (invalid.value.status, invalid.value.code) == (400, "invalid_request")
    assert transport.count == 2


async def test_management_calls(sandbox: Sandbox, user_id: str) -> None:
    tenant = f"t_{user_id}"
    ids = {sandbox.connect_bluesky(f"{user_id}_{i}", tenant_id=tenant)["id"] for i in range(3)}
    ap, _ = make_async_client(sandbox)
    async with ap:
        page = await ap.list_connections(tenant_id=tenant, limit=2)
        assert len(page.connections) == 2 and page.next_cursor is not None
        assert {c.id async for c in ap.iter_connections(tenant_id=tenant, limit=2)} == ids
        one = await ap.get_connection(next(iter(ids)))
        assert one.tenant_id == tenant and one.status == "active"
        session = await ap.create_connect_session(tenant, user_id, allowed_providers=["spotify"])
        assert session.token.startswith("ap_cs_")
        assert "bluesky" in {p.name for p in await ap.list_providers()}
        created = await ap.create_connection("bluesky", tenant, user_id, identifier="sandbox.test", app_password="sand-boxa-ppps-swrd")
        assert created.user_id == user_id
        await ap.delete_connection(created.id)
        with pytest.raises(ConnectionNotFound):
            await ap.get_connection(created.id)
