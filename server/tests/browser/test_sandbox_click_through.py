"""The sandbox as a person meets it: `make run PORT=N`, open the landing page, click "Connect
Spotify (sandbox)", approve on the emulator's consent page, land on the connection's page; every
URL the browser visits stays on that port."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.conftest import Sandbox

PROVIDERS = ["spotify", "facebook", "instagram", "buffer", "bluesky"]


def test_landing_to_connected_spotify(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url))
    page.goto(sandbox.url + "/")
    expect(page).to_have_title("Authpipe sandbox")
    expect(page.locator("p.lead")).to_contain_text(sandbox.url)
    page.screenshot(path=screenshots / "01-landing.png", full_page=True)

    page.get_by_role("link", name="Connect Spotify (sandbox)").click()
    page.wait_for_url(re.compile(r"/_sandbox/spotify/accounts/authorize\?"))
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    expect(page.get_by_role("button", name="Deny")).to_be_visible()
    page.get_by_label("Sign in as").fill("ada")
    page.screenshot(path=screenshots / "03-emulator-consent.png", full_page=True)

    page.get_by_role("button", name="Approve").click()
    # /oauth/callback answers the result page; without an opener it goes on to the return_url,
    # which leads on to the connection's own page.
    page.wait_for_url(re.compile(r"/sandbox/connections/conn_[0-9A-Z]{26}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Spotify: ada")
    expect(page.locator("#status")).to_have_text("active")
    page.screenshot(path=screenshots / "04-connection.png", full_page=True)

    connection_id = page.url.rsplit("/", 1)[1]
    connections = sandbox.connections(tenant_id="org_acme", user_id="user_123")
    assert [(c["id"], c["provider"], c["status"]) for c in connections] == [(connection_id, "spotify", "active")], connections
    assert connections[0]["account"]["name"] == "ada", connections[0]

    port = urlsplit(sandbox.url).port
    elsewhere = [url for url in visited if not url.startswith("data:") and urlsplit(url).netloc != f"127.0.0.1:{port}"]
    assert not elsewhere, f"the browser left port {port}: {elsewhere}"
    assert any("/oauth/callback?" in url for url in visited), visited


def test_denying_consent_shows_access_denied(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    page.goto(sandbox.url + "/")
    page.get_by_role("link", name="Connect Buffer (sandbox)").click()
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url(re.compile(r"/sandbox/connected\?error=access_denied$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Not connected: access_denied")
    expect(page.locator("main")).to_contain_text("You declined on the provider's consent page. Nothing was stored.")
    page.screenshot(path=screenshots / "06-declined.png", full_page=True)
    assert sandbox.connections(tenant_id="org_acme", user_id="user_123", provider="buffer") == []


def test_instagram_consent_explains_facebook(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    page.goto(sandbox.url + "/sandbox/try/instagram")
    page.wait_for_url(re.compile(r"/_sandbox/facebook/www/"))
    expect(page.locator("p.note")).to_contain_text("Instagram accounts connect through Facebook Login")
    page.screenshot(path=screenshots / "07-instagram-consent.png", full_page=True)


def test_hosted_connect_page_lists_every_allowed_provider(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    created = sandbox.connect_session(tenant_id="org_acme", user_id="user_1", allowed_providers=PROVIDERS)
    assert created["connect_url"].startswith(sandbox.url + "/connect?session=ap_cs_"), created
    page = context.new_page()
    page.goto(created["connect_url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Connect an account")
    for name in ("Spotify", "Facebook", "Instagram", "Buffer", "Bluesky"):
        link = page.get_by_role("link", name=f"Connect {name}", exact=True)
        expect(link).to_be_visible()
        assert f"?session={created['token']}" in (link.get_attribute("href") or "")
    page.screenshot(path=screenshots / "02-hosted-connect.png", full_page=True)


def test_result_page_without_script_offers_to_continue(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    """The page /oauth/callback answers, held still (its script blocked) to be seen and checked:
    a person without JavaScript still learns the outcome and can go on to the return_url."""
    created = sandbox.connect_session(
        tenant_id="org_noscript", user_id="user_1", allowed_providers=["spotify"], origin=sandbox.url, return_url=sandbox.url + "/sandbox/connected"
    )
    context.route("**/static/connect-result.js", lambda route: route.abort())
    page = context.new_page()
    page.goto(f"{sandbox.url}/connect/spotify?session={created['token']}")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/oauth/callback\?"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Connected")
    expect(page.get_by_role("status")).to_contain_text("Your Spotify account")
    page.screenshot(path=screenshots / "05-result-no-script.png", full_page=True)
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url(re.compile(r"/sandbox/connections/conn_[0-9A-Z]{26}$"))
    expect(page.locator("#status")).to_have_text("active")
