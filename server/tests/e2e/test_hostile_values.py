"""Values a provider controls, over real HTTP, against a hostile stand-in authorization server:
absurd `expires_in`, unparseable or enormous `Retry-After`, a revocation endpoint that refuses,
rate limits or never answers. None of them may end in a 500, a silent popup or a token left
readable after DELETE. And the last resort: an unexpected error through a real uvicorn server is
the contract's JSON 500 with a request id (the connect pages: their error page), logged once."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from authpipe_server.api.app import create_app
from authpipe_server.config import load_settings
from authpipe_server.emulators import serve_in_thread
from authpipe_server.providers.oauth2 import OAuth2Provider
from tests.conftest import make_project, new_master_key
from tests.e2e.conftest import Authpipe, result_of

EGRESS_TIMEOUT = 3.0
HOSTILE_RETRY_AFTER = ["soon", "99999999999999", "-5", "1e9", "Wed, 21 Oct 99999 07:28:00 GMT", "\xb2"]
"""Unparseable, enormous, negative, not an integer, a date past the calendar, and a Latin-1
superscript two ("²" is a digit to str.isdigit(), not to float())."""


@dataclass
class Behaviour:
    """How the stand-in answers; a test changes it between calls."""

    expires_in: str = "3600"
    """Raw JSON text of the token answer's expires_in (Python's json reads Infinity and NaN)."""
    token_status: int = 200
    token_headers: dict[str, str] = field(default_factory=dict)
    revoke_status: int = 200
    revoke_headers: dict[str, str] = field(default_factory=dict)
    revoke_delay: float = 0.0
    issued: list[str] = field(default_factory=list)
    """Every token handed out (so a test can look for it where it must not be)."""
    revocations: int = 0


class HostileProvider:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.app = Starlette(
            routes=[
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
                Route("/revoke", self.revoke, methods=["POST"]),
            ]
        )

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        back = urlencode({"code": secrets.token_urlsafe(8), "state": params["state"]})
        return RedirectResponse(f"{params['redirect_uri']}?{back}", status_code=302)

    async def token(self, _: Request) -> Response:
        b = self.behaviour
        if b.token_status != 200:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=b.token_status, headers=b.token_headers)
        access, refresh = f"at-{secrets.token_hex(8)}", f"rt-{secrets.token_hex(8)}"
        b.issued += [access, refresh]
        body = f'{{"access_token": "{access}", "refresh_token": "{refresh}", "token_type": "Bearer", "expires_in": {b.expires_in}}}'
        return Response(body, media_type="application/json")

    async def userinfo(self, _: Request) -> Response:
        return JSONResponse({"sub": "user-1", "name": "Hostile User"})

    async def revoke(self, _: Request) -> Response:
        b = self.behaviour
        b.revocations += 1
        await asyncio.sleep(b.revoke_delay)
        return JSONResponse({"error": "slow_down"} if b.revoke_status != 200 else {}, status_code=b.revoke_status, headers=b.revoke_headers)


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[tuple[HostileProvider, str]]:
    provider = HostileProvider()
    with serve_in_thread(provider.app) as url:
        yield provider, url


@pytest.fixture
def hostile(hostile_server: tuple[HostileProvider, str]) -> tuple[HostileProvider, str]:
    hostile_server[0].behaviour = Behaviour()
    return hostile_server


@pytest.fixture
def authpipe_env() -> dict[str, str]:
    return {"AUTHPIPE_WORKERS": "off", "AUTHPIPE_EGRESS_TIMEOUT": str(EGRESS_TIMEOUT)}


def declare(authpipe: Authpipe, url: str) -> None:
    body = {
        "auth_mode": "oauth2",
        "display_name": "Hostile",
        "authorization_url": f"{url}/authorize",
        "token_url": f"{url}/token",
        "userinfo_url": f"{url}/userinfo",
        "revocation_url": f"{url}/revoke",
        "client_id": "hostile-client",
        "client_secret": "hostile-secret",
        "scopes": ["read"],
        "account_id_field": "sub",
    }
    response = authpipe.api.put("/v1/providers/hostile", json=body)
    assert response.status_code == 200, response.text


def sign_in(authpipe: Authpipe) -> httpx.Response:
    """Play the browser through the whole flow; returns the callback's page."""
    with httpx.Client() as browser:
        created = authpipe.session()
        assert browser.get(created["connect_url"]).status_code == 200
        start = browser.get(f"{authpipe.url}/connect/hostile", params={"session": created["token"]})
        assert start.status_code == 302, start.text
        back = browser.get(start.headers["location"])
        assert back.status_code == 302, back.text
        return browser.get(back.headers["location"])


def connected(authpipe: Authpipe) -> dict[str, Any]:
    page = sign_in(authpipe)
    outcome = result_of(page.text)["message"]
    assert page.status_code == 200 and outcome["ok"] is True, page.text
    return dict(outcome["connection"])


def read_credential(authpipe: Authpipe, **extra: Any) -> httpx.Response:
    return authpipe.api.get("/v1/credentials", params={"provider": "hostile", "tenant_id": "org_acme", "user_id": "user_123"} | extra)


def sane_retry_after(response: httpx.Response) -> bool:
    value = response.headers.get("retry-after")
    return value is None or (value.isdigit() and 1 <= int(value) <= 3600)


# -- expires_in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("expires_in", ["Infinity", "-Infinity", "NaN", "1e300", "1e400", "1" + "0" * 30, '"soon"', "[]"])
def test_absurd_expires_in_means_no_known_expiry(authpipe: Authpipe, hostile: tuple[HostileProvider, str], expires_in: str) -> None:
    provider, url = hostile
    declare(authpipe, url)
    provider.behaviour.expires_in = expires_in
    connection = connected(authpipe)
    assert connection["expires_at"] is None
    read = read_credential(authpipe)
    assert read.status_code == 200, read.text
    assert read.json()["credential"] == provider.behaviour.issued[0] and read.json()["expires_at"] is None


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("retry_after", HOSTILE_RETRY_AFTER)
def test_rate_limited_token_exchange_is_a_clear_error_page(
    authpipe: Authpipe, hostile: tuple[HostileProvider, str], status: int, retry_after: str
) -> None:
    provider, url = hostile
    declare(authpipe, url)
    provider.behaviour.token_status, provider.behaviour.token_headers = status, {"Retry-After": retry_after}
    page = sign_in(authpipe)
    outcome = result_of(page.text)
    assert page.status_code == 502 and outcome["message"] == {
        "type": "authpipe:connect",
        "ok": False,
        "code": "provider_unavailable",
        "message": "the provider is not answering right now; try again in a minute",
    }
    assert outcome["origin"] == "https://app.example.com"  # the popup's opener hears it
    assert authpipe.api.get("/v1/connections").json()["connections"] == []


@pytest.mark.parametrize("status, code", [(429, "rate_limited"), (503, "provider_error")])
@pytest.mark.parametrize("retry_after", ["soon", "99999999999999", "\xb2"])
def test_refresh_answering_hostile_retry_after_gives_a_sane_one(
    authpipe: Authpipe, hostile: tuple[HostileProvider, str], status: int, code: str, retry_after: str
) -> None:
    provider, url = hostile
    declare(authpipe, url)
    provider.behaviour.expires_in = "1"
    connection = connected(authpipe)
    provider.behaviour.token_status, provider.behaviour.token_headers = status, {"Retry-After": retry_after}
    time.sleep(1.1)  # the token has expired: a read must refresh, and the refresh fails

    for read in (read_credential(authpipe), read_credential(authpipe, force_refresh="true")):
        assert read.status_code == (429 if code == "rate_limited" else 502), read.text
        assert read.json()["error"]["code"] == ("rate_limited" if code == "rate_limited" else "provider_error")
        assert sane_retry_after(read), read.headers
    forced = authpipe.api.post(f"/v1/connections/{connection['id']}/refresh")
    assert forced.status_code == 502 and forced.json()["error"]["code"] == "provider_error"
    assert sane_retry_after(forced)
    view = authpipe.api.get(f"/v1/connections/{connection['id']}").json()
    assert view["status"] == "error" and view["last_error"]["code"] == code


# -- DELETE when the revocation fails ------------------------------------------------------------


def revocation_recorded(authpipe: Authpipe, connection_id: str) -> dict[str, Any]:
    events = authpipe.api.get("/v1/events", params={"connection_id": connection_id, "type": "connection.deleted"}).json()["events"]
    assert len(events) == 1, events
    return dict(events[0]["data"]["revocation"])


@pytest.mark.parametrize(
    "status, headers, delay, codes",
    [
        (429, {"Retry-After": "soon"}, 0.0, {"rate_limited", "provider_timeout"}),
        (429, {"Retry-After": "99999999999999"}, 0.0, {"rate_limited", "provider_timeout"}),
        (503, {"Retry-After": "\xb2"}, 0.0, {"provider_error", "provider_timeout"}),
        (401, {}, 0.0, {"revocation_failed"}),
        (200, {}, EGRESS_TIMEOUT + 2, {"provider_timeout"}),
    ],
)
def test_delete_erases_the_secrets_when_revocation_fails(
    authpipe: Authpipe,
    hostile: tuple[HostileProvider, str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    headers: dict[str, str],
    delay: float,
    codes: set[str],
) -> None:
    provider, url = hostile
    declare(authpipe, url)
    connection = connected(authpipe)
    b = provider.behaviour
    b.revoke_status, b.revoke_headers, b.revoke_delay = status, headers, delay

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="authpipe_server.api.connections"):
        deleted = authpipe.api.delete(f"/v1/connections/{connection['id']}")
    assert deleted.status_code == 204, deleted.text
    assert time.monotonic() - started < EGRESS_TIMEOUT + 1.5  # one outbound call's deadline, not three
    assert b.revocations >= 1
    assert read_credential(authpipe).status_code == 404
    assert authpipe.api.get(f"/v1/connections/{connection['id']}").status_code == 404
    revocation = revocation_recorded(authpipe, connection["id"])
    assert revocation["ok"] is False and revocation["code"] in codes, revocation
    logged = [r.getMessage() for r in caplog.records if connection["id"] in r.getMessage()]
    assert logged and revocation["code"] in logged[0]
    assert not any(token in caplog.text for token in b.issued)


def test_delete_erases_the_secrets_when_revocation_raises_anything(
    authpipe: Authpipe, hostile: tuple[HostileProvider, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = hostile
    declare(authpipe, url)
    connection = connected(authpipe)

    async def broken(self: OAuth2Provider, tokens: Any) -> None:
        raise RuntimeError("a bug in revocation")

    monkeypatch.setattr(OAuth2Provider, "revoke", broken)  # the server runs in this process
    assert authpipe.api.delete(f"/v1/connections/{connection['id']}").status_code == 204
    assert read_credential(authpipe).status_code == 404
    assert revocation_recorded(authpipe, connection["id"]) == {"ok": False, "code": "internal_error"}


def test_delete_records_a_successful_revocation(authpipe: Authpipe, hostile: tuple[HostileProvider, str]) -> None:
    provider, url = hostile
    declare(authpipe, url)
    connection = connected(authpipe)
    assert authpipe.api.delete(f"/v1/connections/{connection['id']}").status_code == 204
    assert provider.behaviour.revocations == 1
    assert revocation_recorded(authpipe, connection["id"]) == {"ok": True, "code": None}


# -- the last resort ------------------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_unexpected_error_is_the_json_500_with_a_request_id_logged_once(sqlite_url: str) -> None:
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_WORKERS": "off"}
    _, secret = make_project(env, "last-resort")
    app: FastAPI = create_app(load_settings(env))

    async def boom() -> None:
        raise RuntimeError("an unforeseen bug")

    app.add_api_route("/v1/test-only/boom", boom)  # this test's app instance only
    ours, servers = Records(), Records()
    with serve_in_thread(app) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as client:
        logging.getLogger("authpipe_server.api.errors").addHandler(ours)
        logging.getLogger("uvicorn.error").addHandler(servers)  # after uvicorn configured its logging
        try:
            response = client.get("/v1/test-only/boom?token=must-not-be-logged")
            after = client.get("/v1/connections")
        finally:
            logging.getLogger("authpipe_server.api.errors").removeHandler(ours)
            logging.getLogger("uvicorn.error").removeHandler(servers)
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    request_id = response.headers["authpipe-request-id"]
    assert request_id.startswith("req_") and error["request_id"] == request_id
    assert error["code"] == "internal_error" and request_id in error["message"]
    assert "unforeseen" not in response.text
    assert after.status_code == 200  # the same keep-alive connection still serves
    assert len(ours.records) == 1 and ours.records[0].exc_info is not None
    assert request_id in ours.records[0].getMessage() and "must-not-be-logged" not in ours.records[0].getMessage()
    assert not any(r.exc_info for r in servers.records), [r.getMessage() for r in servers.records]


def test_unexpected_error_at_the_callback_still_tells_the_popup(
    authpipe: Authpipe, hostile: tuple[HostileProvider, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = hostile
    declare(authpipe, url)

    async def broken(*_: Any) -> None:
        raise RuntimeError("an unforeseen bug")

    monkeypatch.setattr("authpipe_server.connect.routes.complete_authorization", broken)
    page = sign_in(authpipe)
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    outcome = result_of(page.text)
    assert outcome["origin"] == "https://app.example.com"
    message = outcome["message"]
    assert message["ok"] is False and message["code"] == "internal_error"
    assert page.headers["authpipe-request-id"] in message["message"]
