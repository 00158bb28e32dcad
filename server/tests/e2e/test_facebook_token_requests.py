"""Facebook's token requests (the code exchange, the long-lived exchange, the renewal with
`fb_exchange_token`) carry the app secret and the user token in a POST form body, never in a URL,
so no URL that reaches a log (httpx's own request log included) holds a secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from authpipe_server.emulators import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, serve_in_thread
from authpipe_server.sandbox.providers import FACTORIES, overrides
from tests.e2e.conftest import Authpipe, connect


class RecordingGraph:
    """The Facebook emulator, remembering the method and query string of every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["method"], scope["path"], scope["query_string"].decode()))
        await self.app(scope, receive, send)


@pytest.fixture
def graph() -> Iterator[tuple[str, RecordingGraph]]:
    recording = RecordingGraph(FACTORIES["facebook"]())
    with serve_in_thread(recording) as url:
        yield url, recording


def test_token_and_secret_never_travel_in_a_url(authpipe: Authpipe, graph: tuple[str, RecordingGraph], caplog: pytest.LogCaptureFixture) -> None:
    url, recording = graph
    body: dict[str, Any] = {"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET, "overrides": overrides("facebook", url)}
    assert authpipe.api.put("/v1/providers/facebook", json=body).status_code == 200
    with caplog.at_level(logging.DEBUG):
        connect(authpipe, "facebook", user="100000000000001")
        who = {"provider": "facebook", "tenant_id": "org_acme", "user_id": "user_123"}
        before = authpipe.api.get("/v1/credentials", params=who).json()["credential"]
        after = authpipe.api.get("/v1/credentials", params=who | {"force_refresh": "true"}).json()["credential"]
    assert before != after

    token_requests = [(method, query) for method, path, query in recording.requests if path.endswith("/oauth/access_token")]
    # The code exchange, the long-lived exchange right after it, the forced renewal.
    assert token_requests == [("POST", "")] * 3
    for secret in (SANDBOX_CLIENT_SECRET, before):
        assert all(secret not in query for _, _, query in recording.requests)
        assert secret not in caplog.text
