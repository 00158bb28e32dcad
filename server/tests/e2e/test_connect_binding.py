"""Connect links (RFC 9700 §4.7.1): a flow finishes only in the browser that started it, a connect
session completes once, and a reconnect with another provider account is recorded and announced,
or refused when the session asks. Real servers on loopback; each httpx.Client is one browser."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.responses import Response

from authpipe_server.connect.browser import Browser, remember
from tests.e2e.conftest import Authpipe, FormParser, connect, consent, control, emulator, new_browser, result_of
from tests.test_webhooks_delivery import Receiver

BUFFER_FIRST, BUFFER_SECOND = "64b7f0c2a1b2c3d4e5f60001", "64b7f0c2a1b2c3d4e5f60002"
BLUESKY_FIRST = {"identifier": "sandbox.test", "app_password": "sand-boxa-ppps-swrd"}
BLUESKY_SECOND = {"identifier": "second.test", "app_password": "seco-ndap-ppas-swrd"}


def refused(response: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    outcome = result_of(response.text)["message"]
    assert outcome["ok"] is False and outcome["code"] == code, outcome
    return dict(outcome)


def succeeded(response: httpx.Response) -> dict[str, Any]:
    outcome = result_of(response.text)["message"]
    assert response.status_code == 200 and outcome["ok"] is True, outcome
    return dict(outcome["connection"])


def start(authpipe: Authpipe, browser: httpx.Client, token: str, provider: str = "spotify") -> httpx.Response:
    response = browser.get(f"{authpipe.url}/connect/{provider}", params={"session": token})
    assert response.status_code == 302, response.text
    return response


def counts(authpipe: Authpipe, provider: str) -> dict[str, int]:
    return dict(control(authpipe, provider, "counts", method="GET"))


def connections(authpipe: Authpipe) -> list[dict[str, Any]]:
    return list(authpipe.api.get("/v1/connections").json()["connections"])


def events(authpipe: Authpipe, connection_id: str) -> list[dict[str, Any]]:
    """The connection's events, oldest first."""
    listed = authpipe.api.get("/v1/events", params={"connection_id": connection_id})
    assert listed.status_code == 200, listed.text
    return list(reversed(listed.json()["events"]))


def credential(authpipe: Authpipe, provider: str) -> str:
    response = authpipe.api.get("/v1/credentials", params={"provider": provider, "tenant_id": "org_acme", "user_id": "user_123"})
    assert response.status_code == 200, response.text
    return str(response.json()["credential"])


def bluesky_form(authpipe: Authpipe, browser: httpx.Client, token: str) -> dict[str, str]:
    """Open the app-password form (Bluesky pointed at its emulator); its fields."""
    authpipe.configure("bluesky")
    page = browser.get(f"{authpipe.url}/connect/bluesky", params={"session": token})
    assert page.status_code == 200, page.text
    form = FormParser()
    form.feed(page.text)
    return form.fields


# -- one browser --------------------------------------------------------------------------------


def test_callback_in_another_browser_is_refused_before_the_exchange(authpipe: Authpipe, browser: httpx.Client) -> None:
    authpipe.configure("spotify")
    created = authpipe.session()
    started = start(authpipe, browser, created["token"])
    cookie = started.headers["set-cookie"].lower()
    assert cookie.startswith("authpipe_browser=") and "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # the public URL is http here
    callback = consent(browser, started.headers["location"])

    refused(httpx.get(callback), "browser_mismatch", 403)  # a browser without the cookie
    with new_browser() as other:
        assert other.get(created["connect_url"]).status_code == 200  # it gets a cookie of its own
        outcome = refused(other.get(callback), "browser_mismatch", 403)
    assert outcome["message"] == "finish connecting in the browser where you started"
    assert counts(authpipe, "spotify")["token"] == 0 and connections(authpipe) == []

    # The refusals did not spend the state: the browser that started the flow finishes it.
    assert succeeded(browser.get(callback))["provider"] == "spotify"
    assert "set-cookie" not in start(authpipe, browser, authpipe.session()["token"]).headers  # it keeps its cookie


def test_https_public_url_makes_the_cookie_secure_and_host_only() -> None:
    response = remember(Response(), Browser("b" * 43, new=True), "https://auth.example.com")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-authpipe_browser=" + "b" * 43 + ";")
    assert {part.strip().lower() for part in cookie.split(";")[1:]} == {"httponly", "path=/", "samesite=lax", "secure"}
    assert "set-cookie" not in remember(Response(), Browser("b" * 43, new=False), "https://auth.example.com").headers


def test_app_password_form_is_accepted_only_from_the_browser_it_was_given_to(authpipe: Authpipe, browser: httpx.Client) -> None:
    created = authpipe.session()
    fields = bluesky_form(authpipe, browser, created["token"])
    url = f"{authpipe.url}/connect/bluesky"
    refused(httpx.post(url, data=fields | BLUESKY_FIRST), "browser_mismatch", 403)
    with new_browser() as other:
        bluesky_form(authpipe, other, created["token"])  # it opened the form too: its own cookie
        refused(other.post(url, data=fields | BLUESKY_FIRST), "browser_mismatch", 403)
    refused(browser.post(url, data=fields | {"browser": "0" * 64} | BLUESKY_FIRST), "browser_mismatch", 403)
    assert counts(authpipe, "bluesky")["token"] == 0 and connections(authpipe) == []
    assert succeeded(browser.post(url, data=fields | BLUESKY_FIRST))["account"]["name"] == "sandbox.test"


# -- a session completes once -------------------------------------------------------------------


def test_a_session_completes_once(authpipe: Authpipe, browser: httpx.Client) -> None:
    authpipe.configure("spotify")
    created = authpipe.session()
    first = consent(browser, start(authpipe, browser, created["token"]).headers["location"])
    second = consent(browser, start(authpipe, browser, created["token"]).headers["location"], user="second_user")
    connection = succeeded(browser.get(first))

    outcome = refused(browser.get(second), "session_completed", 410)
    assert outcome["message"] == "this connect link was already used; start again from the app"
    assert counts(authpipe, "spotify")["token"] == 1  # refused before the exchange
    refused(browser.get(created["connect_url"]), "session_completed", 410)
    refused(browser.get(f"{authpipe.url}/connect/spotify", params={"session": created["token"]}), "session_completed", 410)
    assert [c["account"]["name"] for c in connections(authpipe)] == ["Sandbox User"]
    assert [e["type"] for e in events(authpipe, connection["id"])] == ["connection.created"]


def test_concurrent_completions_store_one_connection(authpipe: Authpipe, browser: httpx.Client) -> None:
    """Two flows of one session reach the provider at the same time; the first to store its
    grant completes the session, the other stores nothing and its grant is revoked."""
    authpipe.configure("buffer")
    created = authpipe.session()
    callbacks = [
        consent(browser, start(authpipe, browser, created["token"], "buffer").headers["location"], user=user)
        for user in (BUFFER_FIRST, BUFFER_SECOND)
    ]
    control(authpipe, "buffer", "hold", kinds=["token"])
    answers: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda url=url: answers.append(browser.get(url))) for url in callbacks]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 15
    while control(authpipe, "buffer", "hold", method="GET")["waiting"] < 2:  # both past every check
        assert time.monotonic() < deadline, "the exchanges never reached the provider"
        time.sleep(0.02)
    control(authpipe, "buffer", "release")
    for thread in threads:
        thread.join(15)

    outcomes = sorted((result_of(a.text)["message"] for a in answers), key=lambda o: o["ok"])
    assert [o["ok"] for o in outcomes] == [False, True] and outcomes[0]["code"] == "session_completed", outcomes
    [stored] = connections(authpipe)
    assert stored["id"] == outcomes[1]["connection"]["id"]
    assert counts(authpipe, "buffer")["revoke"] == 1  # the losing grant, revoked at the provider
    assert [e["type"] for e in events(authpipe, stored["id"])] == ["connection.created"]


def test_app_password_session_completes_once(authpipe: Authpipe, browser: httpx.Client) -> None:
    created = authpipe.session()
    fields = bluesky_form(authpipe, browser, created["token"])
    url = f"{authpipe.url}/connect/bluesky"
    succeeded(browser.post(url, data=fields | BLUESKY_FIRST))
    refused(browser.post(url, data=fields | BLUESKY_SECOND), "session_completed", 410)
    refused(browser.get(url, params={"session": created["token"]}), "session_completed", 410)
    assert counts(authpipe, "bluesky")["token"] == 1
    assert [c["account"]["name"] for c in connections(authpipe)] == ["sandbox.test"]


# -- account changes ----------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().serve() as running:
        yield running


@pytest.mark.parametrize("authpipe_env", [{"AUTHPIPE_WORKERS": "on"}])
def test_reconnect_with_another_account_is_recorded_and_announced(authpipe: Authpipe, receiver: Receiver) -> None:
    authpipe.configure("spotify")
    first = connect(authpipe, "spotify", user="sandbox_user")
    answer = authpipe.api.put("/v1/webhook", json={"url": receiver.url})
    assert answer.status_code == 200, answer.text
    secret = answer.json()["secret"]

    assert connect(authpipe, "spotify", user="sandbox_user")["account"] == first["account"]  # the same account
    assert [e["type"] for e in events(authpipe, first["id"])] == ["connection.created"]

    second = connect(authpipe, "spotify", user="second_user")
    assert second["id"] == first["id"] and second["account"]["name"] == "Second User"
    logged = events(authpipe, first["id"])
    assert [e["type"] for e in logged] == ["connection.created", "connection.updated", "connection.account_changed"]
    updated = logged[1]["data"]
    assert updated["previous_account"] == first["account"]
    assert updated["connection"]["account"] == second["account"] != first["account"]

    receiver.wait(lambda r: len(r.delivered()) >= 1)
    time.sleep(0.3)  # anything else (there should be nothing) would have arrived by now
    [message] = [Receiver.verify(secret, request) for request in receiver.delivered()]  # signature checked
    assert message["type"] == "connection.account_changed"
    assert message["data"] == {"connection": second, "previous_account": first["account"]}


def test_account_change_through_the_api_is_recorded(authpipe: Authpipe) -> None:
    authpipe.configure("bluesky")
    body = {"provider": "bluesky", "tenant_id": "org_acme", "user_id": "user_123"}
    first = authpipe.api.post("/v1/connections", json=body | BLUESKY_FIRST).json()
    second = authpipe.api.post("/v1/connections", json=body | BLUESKY_SECOND)
    assert second.status_code == 200 and second.json()["id"] == first["id"], second.text
    logged = events(authpipe, first["id"])
    assert [e["type"] for e in logged] == ["connection.created", "connection.updated", "connection.account_changed"]
    assert logged[2]["data"]["previous_account"] == {"id": "did:plc:sandboxuseraaaaaaaaaaaaa", "name": "sandbox.test"}
    assert logged[2]["data"]["connection"]["account"] == {"id": "did:plc:seconduseraaaaaaaaaaaaaa", "name": "second.test"}


def test_a_session_may_refuse_an_account_change(authpipe: Authpipe, browser: httpx.Client) -> None:
    authpipe.configure("buffer")
    original = connect(authpipe, "buffer", user=BUFFER_FIRST)
    token_before = credential(authpipe, "buffer")
    bad = authpipe.api.post("/v1/connect-sessions", json={"tenant_id": "org_acme", "user_id": "user_123", "account_change": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"

    created = authpipe.session(account_change="refuse")
    callback = consent(browser, start(authpipe, browser, created["token"], "buffer").headers["location"], user=BUFFER_SECOND)
    outcome = refused(browser.get(callback), "account_changed", 409)
    assert outcome["message"] == "this app is connected to another Buffer account; sign in with that account"
    assert authpipe.api.get(f"/v1/connections/{original['id']}").json() == original  # untouched
    assert credential(authpipe, "buffer") == token_before
    assert counts(authpipe, "buffer")["revoke"] == 1  # the refused grant, revoked at the provider
    assert [e["type"] for e in events(authpipe, original["id"])] == ["connection.created"]

    # Nothing completed the session: the same account is still welcome through it.
    callback = consent(browser, start(authpipe, browser, created["token"], "buffer").headers["location"], user=BUFFER_FIRST)
    assert succeeded(browser.get(callback))["account"] == original["account"]
