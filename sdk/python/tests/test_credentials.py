"""`Authpipe.get_credential` and its cache, against the real sandbox."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from support import Gateway, Sandbox, make_client, wait_for

from authpipe import AuthpipeError, ConnectionNotFound, ConnectionRevoked, Credential, ServerUnreachable

BLUESKY = {"provider": "bluesky", "tenant_id": "org_acme"}


def held(sandbox: Sandbox) -> int:
    """Refresh calls the Bluesky emulator is holding."""
    return int(sandbox.control("bluesky", "GET", "hold")["waiting"])


def test_a_hit_makes_no_request(sandbox: Sandbox, user_id: str) -> None:
    connection = sandbox.connect_bluesky(user_id)
    ap, transport = make_client(sandbox)

    first = ap.get_credential(**BLUESKY, user_id=user_id)
    assert isinstance(first, Credential)
    assert first.credential and first.token_type == "bearer" and first.connection_id == connection["id"]
    assert first.provider == "bluesky" and first.scopes == ("com.atproto.appPass",)
    assert first.expires_at is not None and first.expires_at.tzinfo is not None and first.expires_at > datetime.now(UTC)
    assert transport.count == 1

    for _ in range(1000):
        assert ap.get_credential(**BLUESKY, user_id=user_id) is first
    assert ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=3600) is first
    assert transport.count == 1


def test_refresh_ahead_serves_the_cached_token_and_fetches_once_in_the_background(sandbox: Sandbox, user_id: str) -> None:
    # 90-second tokens: with min_ttl 60 and refresh_ahead 60 (the defaults), one is inside the
    # refresh-ahead window (60 < 90 <= 120) as soon as it is cached.
    sandbox.connect_bluesky(user_id, access_ttl=90)
    ap, transport = make_client(sandbox)
    first = ap.get_credential(**BLUESKY, user_id=user_id)
    assert transport.count == 1

    sandbox.control("bluesky", "POST", "hold", {"kinds": ["refresh"]})
    try:
        assert ap.get_credential(**BLUESKY, user_id=user_id) is first
        # The background request asked the server for min_ttl=120, so the server is refreshing at
        # the provider, which holds it: meanwhile every call is served the cached token.
        wait_for(lambda: held(sandbox) >= 1)
        for _ in range(200):
            assert ap.get_credential(**BLUESKY, user_id=user_id) is first
        assert transport.count == 2
        assert transport.paths[1] == "/v1/credentials"
    finally:
        sandbox.control("bluesky", "POST", "release")

    wait_for(lambda: ap.get_credential(**BLUESKY, user_id=user_id) is not first)
    second = ap.get_credential(**BLUESKY, user_id=user_id)
    assert second.expires_at is not None and first.expires_at is not None and second.expires_at >= first.expires_at
    assert transport.count == 2  # and no new background request right after one finished


def test_concurrent_misses_from_100_threads_make_one_request(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    ap, transport = make_client(sandbox)
    results: list[Credential] = []
    start = threading.Barrier(101)

    def call() -> None:
        start.wait()
        # More than the token's whole lifetime: a miss for the SDK, and a refresh at the provider
        # for the server, held there until every thread is waiting. A straggler would miss again.
        results.append(ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300))

    sandbox.control("bluesky", "POST", "hold", {"kinds": ["refresh"]})
    threads = [threading.Thread(target=call) for _ in range(100)]
    try:
        for thread in threads:
            thread.start()
        start.wait()
        wait_for(lambda: held(sandbox) >= 1)
        time.sleep(1.0)
    finally:
        sandbox.control("bluesky", "POST", "release")
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 100
    assert len({id(c) for c in results}) == 1
    assert transport.count == 1


def test_revocation_raises_connection_revoked_and_evicts(sandbox: Sandbox, user_id: str) -> None:
    handle = sandbox.new_bluesky_account()
    sandbox.connect_bluesky(user_id, handle=handle)
    ap, transport = make_client(sandbox)
    ap.get_credential(**BLUESKY, user_id=user_id)
    sandbox.revoke_bluesky_app_password(handle)

    with pytest.raises(ConnectionRevoked) as caught:
        ap.get_credential(**BLUESKY, user_id=user_id, force_refresh=True)
    assert caught.value.status == 410 and caught.value.code == "connection_revoked" and caught.value.message
    assert transport.count == 2

    # Evicted: what was a hit (the token itself is valid for two hours) now asks the server.
    with pytest.raises(ConnectionRevoked):
        ap.get_credential(**BLUESKY, user_id=user_id)
    assert transport.count == 3


def test_a_background_refresh_that_sees_410_evicts(sandbox: Sandbox, user_id: str) -> None:
    handle = sandbox.new_bluesky_account()
    sandbox.connect_bluesky(user_id, handle=handle, access_ttl=90)
    ap, transport = make_client(sandbox)
    first = ap.get_credential(**BLUESKY, user_id=user_id)
    sandbox.revoke_bluesky_app_password(handle)

    assert ap.get_credential(**BLUESKY, user_id=user_id) is first  # in the window: served, refreshed behind

    def revoked() -> bool:
        # Served from the cache until the background request's 410 evicts the entry; then asked.
        try:
            ap.get_credential(**BLUESKY, user_id=user_id)
        except ConnectionRevoked:
            return True
        return False

    wait_for(revoked)
    assert transport.count == 3


def test_unknown_connection_raises_connection_not_found_with_the_servers_code_and_message(sandbox: Sandbox) -> None:
    ap, transport = make_client(sandbox)
    with pytest.raises(ConnectionNotFound) as caught:
        ap.get_credential(**BLUESKY, user_id="nobody")
    raw = sandbox.api.get("/v1/credentials", params={**BLUESKY, "user_id": "nobody"}).json()["error"]
    error = caught.value
    assert isinstance(error, AuthpipeError)
    assert (error.status, error.code, error.message) == (404, raw["code"], raw["message"]) == (404, "connection_not_found", raw["message"])
    assert str(error) == raw["message"]
    assert transport.count == 1  # a 4xx is never retried

    with pytest.raises(ConnectionNotFound):
        ap.get_credential(**BLUESKY, user_id="nobody")
    assert transport.count == 2  # and never cached


def test_a_bad_request_carries_the_servers_code_and_message(sandbox: Sandbox) -> None:
    ap, transport = make_client(sandbox)
    with pytest.raises(AuthpipeError) as caught:
        ap.get_credential(provider="bluesky", tenant_id="bad tenant!", user_id="u1")
    raw = sandbox.api.get("/v1/credentials", params={"provider": "bluesky", "tenant_id": "bad tenant!", "user_id": "u1"}).json()["error"]
    assert type(caught.value) is AuthpipeError
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, "invalid_request", raw["message"])
    assert transport.count == 1


def test_the_cache_is_a_bounded_lru(sandbox: Sandbox, user_id: str) -> None:
    users = [f"{user_id}_{i}" for i in range(3)]
    for user in users:
        sandbox.connect_bluesky(user)
    ap, transport = make_client(sandbox, cache_size=2)

    def get(user: str) -> int:
        ap.get_credential(**BLUESKY, user_id=user)
        return transport.count

    assert [get(u) for u in users] == [1, 2, 3]  # u0 evicted by u2
    assert get(users[2]) == 3 and get(users[1]) == 3  # hits; u2 is now the least recently used
    assert get(users[0]) == 4  # miss: evicts u2, not u1
    assert get(users[1]) == 4
    assert get(users[2]) == 5  # miss: evicts u0
    assert get(users[1]) == 5
    assert get(users[0]) == 6


def test_a_5xx_is_retried_and_carries_the_servers_code_and_message(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id, access_ttl=2)
    ap, transport = make_client(sandbox, retries=2, retry_delay=0.01)
    sandbox.control("bluesky", "POST", "faults", {"mode": "500", "count": 50, "kind": "refresh"})
    try:
        time.sleep(2.5)  # the token has expired, and every refresh fails at the provider: the server answers 502
        with pytest.raises(AuthpipeError) as caught:
            ap.get_credential(**BLUESKY, user_id=user_id)
    finally:
        sandbox.control("bluesky", "DELETE", "faults")
    assert caught.value.status == 502 and caught.value.code == "provider_error"
    assert caught.value.message.startswith("the token expired and the provider failed to refresh it")
    assert transport.count == 3  # retried twice


def test_5xx_and_429_from_a_gateway_fall_back_to_the_valid_cached_token(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    with Gateway(sandbox.url) as gateway:
        ap, transport = make_client(sandbox, base_url=gateway.url, retries=2, retry_delay=0.01)
        first = ap.get_credential(**BLUESKY, user_id=user_id)

        gateway.status = 503
        # More than the cached token has left, so a miss; the still-valid token is served.
        assert ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300) is first
        assert transport.count == 1 + 3  # retried twice

        gateway.status = 429
        assert ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300) is first
        assert transport.count == 5  # a 4xx, 429 included, is never retried

        with pytest.raises(AuthpipeError) as caught:
            ap.get_credential(**BLUESKY, user_id=user_id, force_refresh=True)
        assert (caught.value.status, caught.value.code) == (429, "gateway_unavailable")

        gateway.status = 503
        with pytest.raises(AuthpipeError) as caught:  # nothing cached for this key
            ap.get_credential(**BLUESKY, user_id=f"{user_id}_cold")
        assert (caught.value.status, caught.value.code, caught.value.message) == (503, "gateway_unavailable", "the gateway answered 503")

        gateway.status = None
        assert ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300) is not first


def test_a_timeout_falls_back_to_the_valid_cached_token(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    ap, transport = make_client(sandbox, timeout=0.5, retries=0)
    first = ap.get_credential(**BLUESKY, user_id=user_id)
    sandbox.control("bluesky", "POST", "faults", {"mode": "timeout", "count": 1, "delay": 3, "kind": "refresh"})
    try:
        assert ap.get_credential(**BLUESKY, user_id=user_id, min_ttl=7300) is first
        assert transport.count == 2
    finally:
        sandbox.control("bluesky", "DELETE", "faults")

    cold = f"{user_id}_cold"
    sandbox.connect_bluesky(cold)
    sandbox.control("bluesky", "POST", "faults", {"mode": "timeout", "count": 1, "delay": 3, "kind": "refresh"})
    try:
        with pytest.raises(ServerUnreachable) as caught:  # nothing cached to fall back to
            ap.get_credential(**BLUESKY, user_id=cold, min_ttl=7300)
        assert caught.value.code == "timeout" and caught.value.status is None
    finally:
        sandbox.control("bluesky", "DELETE", "faults")


def test_force_refresh_skips_the_cache_and_replaces_the_entry(sandbox: Sandbox, user_id: str) -> None:
    sandbox.connect_bluesky(user_id)
    ap, transport = make_client(sandbox)
    first = ap.get_credential(**BLUESKY, user_id=user_id)
    forced = ap.get_credential(**BLUESKY, user_id=user_id, force_refresh=True)
    assert forced is not first and transport.count == 2
    assert ap.get_credential(**BLUESKY, user_id=user_id) is forced
    assert transport.count == 2
