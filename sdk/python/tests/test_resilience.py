"""While the server is down, a cached credential that is still valid is served. This module stops
its own sandbox, so the shared one is left alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from support import Sandbox, make_async_client, make_client

from authpipe import AuthpipeError, ServerUnreachable

BLUESKY = {"provider": "bluesky", "tenant_id": "org_acme"}


@pytest.fixture
def doomed() -> Iterator[Sandbox]:
    server = Sandbox()
    try:
        server.start()
        yield server
    finally:
        server.close()


async def test_server_down_serves_the_valid_cached_token_and_a_cold_key_raises(doomed: Sandbox) -> None:
    doomed.connect_bluesky("u_warm")
    ap, transport = make_client(doomed, retries=1, retry_delay=0.01)
    aap, async_transport = make_async_client(doomed, retries=1, retry_delay=0.01)
    first = ap.get_credential(**BLUESKY, user_id="u_warm")
    async_first = await aap.get_credential(**BLUESKY, user_id="u_warm")

    await asyncio.to_thread(doomed.stop)

    assert ap.get_credential(**BLUESKY, user_id="u_warm") is first  # a hit: no I/O at all
    assert transport.count == 1
    # A miss (more than the token's lifetime asked for) the server cannot answer: the cached token,
    # still valid for two hours, is served after one attempt and one retry.
    assert ap.get_credential(**BLUESKY, user_id="u_warm", min_ttl=7300) is first
    assert transport.count == 3
    assert await aap.get_credential(**BLUESKY, user_id="u_warm", min_ttl=7300) is async_first
    assert async_transport.count == 3

    with pytest.raises(ServerUnreachable) as caught:
        ap.get_credential(**BLUESKY, user_id="u_cold")
    error = caught.value
    assert isinstance(error, AuthpipeError)
    assert error.status is None and error.code == "network_error" and doomed.url in error.message
    assert doomed.secret not in str(error) and doomed.secret not in repr(error)
    with pytest.raises(ServerUnreachable):
        await aap.get_credential(**BLUESKY, user_id="u_cold")
    with pytest.raises(ServerUnreachable):  # a forced refresh never falls back
        ap.get_credential(**BLUESKY, user_id="u_warm", force_refresh=True)
    await aap.aclose()
