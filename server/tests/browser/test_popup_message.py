"""The popup contract (CONTRACT "Connect flow (browser)", SECURITY rule 7) in a real browser.

An application page on its own origin (http://localhost:PORT, not Authpipe's http://127.0.0.1:PORT2)
opens the connect flow in a popup and records every `message` event it receives. The result page
posts `{"type": "authpipe:connect", ...}` to `window.opener` with the session's exact `origin` as
target and closes itself; the browser drops a message whose target origin is not the opener's.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Sandbox

SETTLE_MS = 500  # after the popup closed: time for any (wrongly) delivered message to arrive

APP_PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Example app</title></head>
<body>
<h1>Example app</h1>
<button id="connect" type="button">Connect an account</button>
<script>
  window.__messages = [];
  window.addEventListener("message", function (event) {
    window.__messages.push({ origin: event.origin, data: event.data, fromPopup: event.source === window.__popup });
  });
  document.getElementById("connect").addEventListener("click", function () {
    var url = new URLSearchParams(window.location.search).get("connect");
    window.__popup = window.open(url, "authpipe-connect", "popup,width=520,height=700");
  });
</script>
</body>
</html>
"""


class AppHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.split("?")[0] != "/app":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(APP_PAGE)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(APP_PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class App:
    def __init__(self, port: int) -> None:
        self.origin = f"http://localhost:{port}"

    def page_url(self, connect_url: str) -> str:
        return f"{self.origin}/app?connect={quote(connect_url, safe='')}"


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    """The application's page, served from a second loopback server: another origin than Authpipe's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield App(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def open_popup(context: Any, app: App, connect_url: str) -> tuple[Any, Any]:
    page = context.new_page()
    page.goto(app.page_url(connect_url))
    with page.expect_popup() as popup_info:
        page.get_by_role("button", name="Connect an account").click()
    popup = popup_info.value
    popup.wait_for_load_state()
    return page, popup


def decide(popup: Any, decision: str) -> list[str]:
    """Click Approve or Deny on the emulator's consent page; wait for the popup to close itself.
    Returns what the popup logged to its console."""
    console: list[str] = []
    popup.on("console", lambda message: console.append(message.text))
    button = popup.get_by_role("button", name=decision)
    expect(button).to_be_visible()
    with popup.expect_event("close", timeout=10_000):
        button.click()
    return console


def messages_after_close(page: Any) -> list[dict[str, Any]]:
    page.wait_for_timeout(SETTLE_MS)
    return list(page.evaluate("window.__messages"))


def test_approve_posts_one_message_to_the_sessions_origin(sandbox: Sandbox, app: App, context: Any) -> None:
    created = sandbox.connect_session(tenant_id="org_popup", user_id="user_ok", allowed_providers=["spotify"], origin=app.origin)
    page, popup = open_popup(context, app, created["connect_url"])
    popup.get_by_role("link", name="Connect Spotify").click()  # the hosted page, then the emulator
    decide(popup, "Approve")
    assert popup.is_closed()

    page.wait_for_function("window.__messages.length > 0", timeout=5_000)
    messages = messages_after_close(page)
    assert len(messages) == 1, f"expected exactly one message, got {messages}"
    message = messages[0]
    assert message["origin"] == sandbox.url, message
    assert message["fromPopup"] is True, message
    data = message["data"]
    assert data["type"] == "authpipe:connect" and data["ok"] is True, data
    connection = data["connection"]
    assert connection["id"].startswith("conn_"), data
    assert (connection["provider"], connection["tenant_id"], connection["user_id"]) == ("spotify", "org_popup", "user_ok"), data

    stored = sandbox.connections(tenant_id="org_popup", user_id="user_ok")
    assert [(c["id"], c["status"]) for c in stored] == [(connection["id"], "active")], stored
    # The message carries the connection's public JSON (the API's view of it), never a secret.
    assert set(connection) == set(stored[0]), (sorted(connection), sorted(stored[0]))
    for name in ("id", "provider", "tenant_id", "user_id", "account", "scopes"):
        assert connection[name] == stored[0][name], (name, connection, stored[0])


def test_message_to_another_origin_is_dropped(sandbox: Sandbox, app: App, context: Any) -> None:
    created = sandbox.connect_session(
        tenant_id="org_popup", user_id="user_evil", allowed_providers=["spotify"], origin="https://evil.example"
    )
    page, popup = open_popup(context, app, f"{sandbox.url}/connect/spotify?session={created['token']}")
    decide(popup, "Approve")
    assert popup.is_closed(), "the result page closes the popup even when its message goes nowhere"

    assert messages_after_close(page) == [], "a message addressed to https://evil.example reached the app page"
    # The flow itself succeeded: only the message was not delivered.
    assert [c["status"] for c in sandbox.connections(tenant_id="org_popup", user_id="user_evil")] == ["active"]


def test_denied_consent_posts_access_denied(sandbox: Sandbox, app: App, context: Any) -> None:
    created = sandbox.connect_session(tenant_id="org_popup", user_id="user_no", allowed_providers=["spotify"], origin=app.origin)
    page, popup = open_popup(context, app, f"{sandbox.url}/connect/spotify?session={created['token']}")
    decide(popup, "Deny")

    page.wait_for_function("window.__messages.length > 0", timeout=5_000)
    messages = messages_after_close(page)
    assert len(messages) == 1, f"expected exactly one message, got {messages}"
    assert messages[0]["origin"] == sandbox.url, messages
    data = messages[0]["data"]
    assert data["type"] == "authpipe:connect" and data["ok"] is False and data["code"] == "access_denied", data
    assert "connection" not in data, data
    assert sandbox.connections(tenant_id="org_popup", user_id="user_no") == []
