"""The sandbox's Simulate controls in a real browser: revoke the grant at the provider, press
Check now, see the status turn revoked, and find the `connection.revoked` webhook in the inbox,
its signature checked here with the `standardwebhooks` package. Then an expired token refreshed
in the background, and an outage that changes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect
from standardwebhooks import Webhook

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import Sandbox


def connect(page: Page, sandbox: Sandbox, provider: str, user: str) -> str:
    """One-click connect from the landing page; returns the connection id."""
    page.goto(sandbox.url + "/")
    page.get_by_role("link", name=f"Connect {provider} (sandbox)").click()
    page.get_by_label("Sign in as").fill(user)
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/sandbox/connections/conn_[0-9A-Z]{26}$"))
    return page.url.rsplit("/", 1)[1]


def press(page: Page, button: str) -> None:
    """Keyboard, as a person without a mouse would: focus the button, press Enter."""
    page.get_by_role("button", name=button).focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()


def test_revoke_then_check_shows_revoked_and_a_verified_webhook(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    # The sandbox points project default's webhook at its inbox. Setting it again here hands the
    # test the signing secret, so the test checks the signature itself, not only the inbox's word.
    inbox_url = sandbox.url + "/sandbox/webhooks/receive"
    secret = sandbox.api.put("/v1/webhook", json={"url": inbox_url}).json()["secret"]

    page = context.new_page()
    connection_id = connect(page, sandbox, "Spotify", "grace")
    expect(page.locator("#status")).to_have_text("active")

    press(page, "Revoke at provider")
    expect(page.get_by_role("status").first).to_contain_text("Revoked at the provider")
    expect(page.locator("#status")).to_have_text("active")  # Authpipe can't know yet
    page.screenshot(path=screenshots / "10-simulate-revoked-at-provider.png", full_page=True)

    press(page, "Check now")
    expect(page.locator("#status")).to_have_text("revoked")
    expect(page.locator("#last-checked")).not_to_have_text("not yet")
    expect(page.locator("#events")).to_contain_text("connection.revoked")
    page.screenshot(path=screenshots / "11-simulate-check-revoked.png", full_page=True)

    api_view = sandbox.api.get(f"/v1/connections/{connection_id}").json()
    assert api_view["status"] == "revoked" and api_view["last_checked_at"], api_view

    # The live region picks up the delivery within a few seconds; then open the inbox.
    expect(page.get_by_role("link", name=re.compile(r"[1-9]\d* webhooks? received for this connection"))).to_be_visible(timeout=20_000)
    page.get_by_role("link", name=re.compile(r"webhooks? received for this connection")).click()
    page.wait_for_url(re.compile(rf"/sandbox/webhooks\?connection_id={connection_id}$"))
    revoked = page.locator("section.delivery", has=page.locator("h2 code", has_text="connection.revoked"))
    expect(revoked).to_have_count(1, timeout=20_000)
    expect(revoked.locator(".pill")).to_have_text("signature verified")
    revoked.locator("summary").click()
    page.screenshot(path=screenshots / "12-webhook-inbox.png", full_page=True)

    headers = {
        dt.inner_text().strip(): dd.inner_text().strip()
        for dt, dd in zip(revoked.locator("dl.headers dt").all(), revoked.locator("dl.headers dd").all())
    }
    raw = revoked.locator("code.raw").inner_text()
    payload = Webhook(secret).verify(raw, headers)  # raises unless the signature is right
    assert payload["type"] == "connection.revoked", payload
    assert payload["data"]["connection"]["id"] == connection_id, payload
    assert json.loads(raw)["data"]["connection"]["status"] == "revoked"


def test_expired_token_is_refreshed_in_the_background(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    connection_id = connect(page, sandbox, "Spotify", "linus")
    before = sandbox.api.get(f"/v1/connections/{connection_id}").json()
    assert before["last_refreshed_at"] is None, before

    press(page, "Expire token now")
    expect(page.get_by_role("status").first).to_contain_text("The access token expired")
    # No reload: the page's live region shows the background refresh when it lands.
    expect(page.locator("#events")).to_contain_text("connection.refreshed", timeout=20_000)
    expect(page.locator("#last-refreshed")).not_to_have_text("not yet")
    page.screenshot(path=screenshots / "13-simulate-expired-refreshed.png", full_page=True)
    after = sandbox.api.get(f"/v1/connections/{connection_id}").json()
    assert after["status"] == "active" and after["last_refreshed_at"], after


def test_outage_keeps_the_connection_and_can_be_ended(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    connect(page, sandbox, "Buffer", "ada")
    press(page, "Provider outage (5 min)")
    expect(page.locator("#provider-state")).to_contain_text("outage (500s) until")
    press(page, "Check now")
    expect(page.locator("#status")).to_have_text("active")  # a 5xx never changes a status
    page.screenshot(path=screenshots / "14-simulate-outage.png", full_page=True)
    press(page, "End outage / rate limit")
    expect(page.locator("#provider-state")).to_have_text("answering normally")


def test_buttons_refuse_a_post_from_another_origin(sandbox: Sandbox, context: Any) -> None:
    page = context.new_page()
    connection_id = connect(page, sandbox, "Spotify", "mallory")
    response = context.request.post(
        f"{sandbox.url}/sandbox/connections/{connection_id}",
        form={"action": "revoke"},
        headers={"Origin": "http://evil.example"},
        max_redirects=0,
    )
    assert response.status == 403, response.status
    assert sandbox.api.get(f"/v1/connections/{connection_id}").json()["status"] == "active"
    unknown = context.request.post(
        f"{sandbox.url}/sandbox/connections/{connection_id}", form={"action": "explode"}, headers={"Origin": sandbox.url}, max_redirects=0
    )
    assert unknown.status == 400, unknown.status
    missing = context.request.get(f"{sandbox.url}/sandbox/connections/conn_NOPE")
    assert missing.status == 404, missing.status


def test_sandbox_pages_have_no_serious_accessibility_problems(sandbox: Sandbox, context: Any) -> None:
    page = context.new_page()
    connection_id = connect(page, sandbox, "Spotify", "axe")
    for path in ("/", f"/sandbox/connections/{connection_id}", "/sandbox/webhooks", "/sandbox/connected?error=access_denied"):
        page.goto(sandbox.url + path)
        assert_accessible(page)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{sandbox.url}/sandbox/connections/{connection_id}")
    assert_accessible(page)
