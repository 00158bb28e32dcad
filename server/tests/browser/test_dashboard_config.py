"""The dashboard's configuration pages in Chromium, against `authpipe dev` (which signs this
machine's browser in by itself): declare a custom OAuth provider through the form (pointed at
the sandbox's Spotify emulator) and connect with it; rotate the webhook secret, send a test
event to the sandbox's inbox and check its signature; create a key, use it, revoke it. Each page
is checked with axe-core and photographed at desktop and phone width."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from standardwebhooks import Webhook

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import Sandbox

PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 800}


def open_dashboard(page: Page, sandbox: Sandbox) -> str:
    """Sign in (automatically, in the sandbox) and land on project default; returns its id."""
    page.goto(sandbox.url + "/dashboard")
    page.wait_for_url(re.compile(r"/dashboard/projects/proj_[0-9A-Z]{26}$"))
    return page.url.rsplit("/", 1)[1]


def photograph(page: Page, screenshots: Path, name: str) -> None:
    """The page as it is, at desktop width and at a phone's; axe-core checks it at both."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        assert_accessible(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size["width"], f"{page.url} is {width}px wide at {label} width: it scrolls sideways"
        page.screenshot(path=screenshots / f"dashboard-{name}-{label}.png", full_page=True)
    page.set_viewport_size(DESKTOP)


def nav(page: Page, label: str) -> None:
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name=label, exact=True).click()
    page.wait_for_load_state()


def test_declare_a_custom_provider_in_the_form_and_connect_with_it(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    project_id = open_dashboard(page, sandbox)
    nav(page, "Providers")
    expect(page.get_by_role("heading", level=1)).to_have_text("Providers")
    expect(page.locator("#redirect-uri")).to_have_text(sandbox.url + "/oauth/callback")
    photograph(page, screenshots, "providers")

    page.get_by_role("link", name="Add a custom OAuth 2.0 provider").click()
    emulator = sandbox.url + "/_sandbox/spotify"
    page.get_by_label("Name", exact=True).fill("acme-music")
    page.get_by_label("Display name").fill("Acme Music")
    page.get_by_label("Client id").fill("sandbox-client")
    page.get_by_label("Client secret").fill("sandbox-secret")
    page.get_by_label("Scopes").fill("user-read-email user-read-private")
    page.get_by_label("Authorization URL").fill(emulator + "/accounts/authorize")
    page.get_by_label("Token URL").fill(emulator + "/accounts/api/token")
    page.get_by_label("Userinfo URL").fill(emulator + "/api/v1/me")
    page.get_by_text("Advanced: client authentication").click()
    page.get_by_label("Account id field").fill("id")
    photograph(page, screenshots, "custom-provider-new")
    page.get_by_role("button", name="Add provider").click()

    page.wait_for_url(re.compile(r"/providers/acme-music\?notice=saved$"))
    expect(page.get_by_role("status")).to_have_text("Provider saved.")
    expect(page.get_by_label("Client secret")).to_have_attribute("placeholder", "set — leave empty to keep")
    expect(page.get_by_label("Client secret")).to_have_value("")
    assert "sandbox-secret" not in page.content()
    photograph(page, screenshots, "custom-provider")

    # Connect with it: a connect session for it, the emulator's consent, the connection made.
    created = sandbox.connect_session(
        tenant_id="org_acme", user_id="user_custom", allowed_providers=["acme-music"], origin=sandbox.url,
        return_url=sandbox.url + "/sandbox/connected",
    )
    page.goto(f"{sandbox.url}/connect/acme-music?session={created['token']}")
    page.wait_for_url(re.compile(r"/_sandbox/spotify/accounts/authorize\?"))
    page.get_by_label("Sign in as").fill("grace")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/sandbox/connections/conn_[0-9A-Z]{26}$"))
    [connection] = sandbox.connections(provider="acme-music", tenant_id="org_acme", user_id="user_custom")
    assert connection["status"] == "active" and connection["account"]["id"], connection
    assert sorted(connection["scopes"]) == ["user-read-email", "user-read-private"], connection

    # The Spotify form: a scope ticked and saved stays ticked; the sandbox's secret is never shown.
    page.goto(f"{sandbox.url}/dashboard/projects/{project_id}/providers/spotify")
    page.get_by_label(re.compile(r"^user-top-read")).check()
    page.get_by_role("button", name="Save Spotify").click()
    expect(page.get_by_role("status")).to_have_text("Provider saved.")
    expect(page.get_by_label(re.compile(r"^user-top-read"))).to_be_checked()
    assert "sandbox-secret" not in page.content()
    photograph(page, screenshots, "provider-spotify")


def inbox_entries(page: Page, sandbox: Sandbox, event_type: str, count: int) -> Any:
    """The inbox's deliveries of `event_type`, once there are `count` of them."""
    deadline = time.monotonic() + 20
    while True:
        page.goto(sandbox.url + "/sandbox/webhooks")
        found = page.locator("section.delivery", has=page.locator("h2 code", has_text=event_type))
        if found.count() >= count or time.monotonic() > deadline:
            expect(found).to_have_count(count)
            return found
        time.sleep(0.3)


def headers_of(delivery: Any) -> dict[str, str]:
    return {
        dt.inner_text().strip(): dd.inner_text().strip()
        for dt, dd in zip(delivery.locator("dl.headers dt").all(), delivery.locator("dl.headers dd").all())
    }


def test_rotate_the_webhook_secret_and_send_a_test_event_to_the_inbox(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    open_dashboard(page, sandbox)
    nav(page, "Webhook")
    webhook_page = page.url
    expect(page.locator("#webhook-url")).to_have_text(sandbox.url + "/sandbox/webhooks/receive")
    photograph(page, screenshots, "webhook")

    page.get_by_role("button", name="Rotate signing secret").click()
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("whsec_"), secret
    photograph(page, screenshots, "webhook-new-secret")
    nav(page, "Webhook")  # the page again: the secret is not on it
    assert secret not in page.content()

    page.get_by_role("button", name="Send test event").click()
    expect(page.get_by_role("status")).to_contain_text("Test event queued")
    [test] = inbox_entries(page, sandbox, "webhook.test", 1).all()
    expect(test.locator(".pill")).to_have_text("signature verified")
    test.locator("summary").click()  # "Exactly as received": the signed bytes
    raw = test.locator("code.raw").inner_text()
    headers = headers_of(test)
    body = Webhook(secret).verify(raw, headers)  # the rotated secret signs it (raises otherwise)
    assert body["type"] == "webhook.test" and body["data"]["project"]["name"] == "default", body

    # The delivery log shows it delivered; Redeliver sends it again with the same webhook-id.
    page.goto(webhook_page)
    row = page.locator(f"#delivery-{headers['webhook-id']}")
    expect(row).to_contain_text("delivered")
    expect(row).to_contain_text("HTTP 204")
    row.get_by_text("1 attempt").click()
    photograph(page, screenshots, "webhook-log")
    row.get_by_role("button", name=re.compile(r"^Redeliver")).click()
    expect(page.get_by_role("status")).to_contain_text("same webhook-id")
    again = inbox_entries(page, sandbox, "webhook.test", 2).all()
    assert {headers_of(d)["webhook-id"] for d in again} == {headers["webhook-id"]}
    assert all(d.locator(".pill").inner_text() == "signature verified" for d in again)


def test_create_a_key_use_it_and_revoke_it(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    open_dashboard(page, sandbox)
    nav(page, "Keys")
    expect(page.get_by_role("heading", level=1)).to_have_text("Secret keys")
    page.get_by_role("button", name="Create a secret key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("ap_sk_"), key
    photograph(page, screenshots, "keys-new")
    assert httpx.get(sandbox.url + "/v1/providers", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    nav(page, "Keys")
    assert key not in page.content()
    prefix = key[:14]
    page.get_by_role("link", name=f"Revoke {prefix}…").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text(f"Revoke {prefix}…?")
    photograph(page, screenshots, "keys-revoke")
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status")).to_contain_text("Key revoked.")
    expect(page.locator("tr", has=page.locator("code", has_text=prefix))).to_contain_text("revoked")
    photograph(page, screenshots, "keys")

    # Refused within seconds (each process caches a good key briefly).
    deadline = time.monotonic() + 15
    while httpx.get(sandbox.url + "/v1/providers", headers={"Authorization": f"Bearer {key}"}).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key was still accepted"
        time.sleep(0.5)
    assert httpx.get(sandbox.url + "/v1/providers", headers={"Authorization": f"Bearer {sandbox.secret}"}).status_code == 200
