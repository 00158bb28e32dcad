"""The dashboard's connections in a real browser, on `authpipe dev` (which signs this machine's
browser in by itself): the overview and the list show the sandbox connections; a connection's
page refreshes it (its timeline grows) and, after the grant is revoked at the emulator, Check now
turns it revoked; Delete asks first. Every page passes axe-core and fits a phone's width."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import Sandbox
from tests.browser.test_sandbox_simulate import connect, press

PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


def check_page(page: Page, screenshots: Path, name: str) -> None:
    """axe-core finds nothing serious; screenshots at desktop and phone width; at phone width
    nothing overflows the viewport sideways (wide tables scroll inside their own box)."""
    assert_accessible(page)
    page.screenshot(path=screenshots / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    try:
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{page.url} is {overflow}px wider than a phone"
        assert_accessible(page)
        page.screenshot(path=screenshots / f"{name}-phone.png", full_page=True)
    finally:
        page.set_viewport_size(DESKTOP)


def test_see_refresh_revoke_check_and_delete(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    spotify_id = connect(page, sandbox, "Spotify", "grace")
    buffer_id = connect(page, sandbox, "Buffer", "lin")

    # /dashboard signs the sandbox's browser in and lands on project default's overview.
    page.goto(sandbox.url + "/dashboard")
    page.wait_for_url(re.compile(r"/dashboard/projects/proj_[0-9A-Z]{26}$"))
    expect(page.locator(".who")).to_contain_text("sandbox@localhost")
    overview_url = page.url
    expect(page.locator(".ov-tiles")).to_contain_text("2 connections")
    expect(page.get_by_role("heading", name="By provider")).to_be_visible()
    expect(page.get_by_role("img", name="Spotify").first).to_be_visible()
    expect(page.get_by_text("Nothing needs attention")).to_be_visible()
    check_page(page, screenshots, "20-dashboard-overview")

    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Connections").click()
    page.wait_for_url(re.compile(r"/connections$"))
    rows = page.locator("table.conn-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("lin")  # newest first
    expect(rows.nth(1)).to_contain_text("grace")
    expect(rows.nth(1)).to_contain_text("org_acme")
    expect(rows.nth(1)).to_contain_text("user_123")
    check_page(page, screenshots, "21-dashboard-connections")

    page.get_by_label("Provider").select_option("buffer")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"provider=buffer"))
    expect(rows).to_have_count(1)
    expect(page.locator("#conn-count")).to_have_text("1 connection matches these filters")
    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(2)

    # Open the Spotify connection; Refresh now (by keyboard) adds to its timeline.
    page.get_by_role("link", name="grace").click()
    page.wait_for_url(re.compile(rf"/connections/{spotify_id}$"))
    expect(page.locator("#conn-status")).to_have_text("active")
    expect(page.locator("#conn-last-refreshed")).to_have_text("not yet")
    events = page.locator("#conn-events > li")
    before = events.count()
    check_page(page, screenshots, "22-dashboard-connection")
    press(page, "Refresh now")
    page.wait_for_url(re.compile(r"\?outcome=refreshed$"))
    expect(page.get_by_role("status")).to_contain_text("Refreshed")
    expect(events).to_have_count(before + 1)
    expect(events.first).to_contain_text("Token refreshed")
    expect(page.locator("#conn-last-refreshed")).not_to_have_text("not yet")

    # The user revokes the grant at the provider (the sandbox's Simulate control); Authpipe does
    # not know until it checks.
    page.goto(f"{sandbox.url}/sandbox/connections/{spotify_id}")
    press(page, "Revoke at provider")
    expect(page.get_by_role("status").first).to_contain_text("Revoked at the provider")
    page.goto(f"{overview_url}/connections/{spotify_id}")
    expect(page.locator("#conn-status")).to_have_text("active")
    press(page, "Check now")
    page.wait_for_url(re.compile(r"\?outcome=check_revoked$"))
    expect(page.locator("#conn-status")).to_have_text("revoked")
    expect(page.get_by_role("heading", name="Why it is revoked")).to_be_visible()
    expect(page.get_by_role("button", name="Refresh now")).to_have_count(0)  # nothing left to refresh
    expect(events.first).to_contain_text("Revoked")
    assert sandbox.api.get(f"/v1/connections/{spotify_id}").json()["status"] == "revoked"
    check_page(page, screenshots, "23-dashboard-connection-revoked")

    # The overview now puts it first, with its reason, and lists the failure.
    page.goto(overview_url)
    attention = page.locator(".ov-attention.ov-revoked")
    expect(attention).to_contain_text("grace")
    expect(page.locator(".ov-failures")).to_contain_text("Revoked")
    check_page(page, screenshots, "24-dashboard-overview-attention")

    # Delete asks first: without the box ticked the browser does not send the form.
    page.goto(f"{overview_url}/connections/{buffer_id}")
    page.get_by_role("link", name="Delete…").click()
    page.wait_for_url(re.compile(rf"/connections/{buffer_id}/delete$"))
    check_page(page, screenshots, "25-dashboard-delete-confirm")
    page.get_by_role("button", name="Delete connection").click()
    expect(page).to_have_url(re.compile(rf"/connections/{buffer_id}/delete$"))
    page.get_by_label(re.compile("I understand")).check()
    page.get_by_role("button", name="Delete connection").click()
    page.wait_for_url(re.compile(r"/connections\?outcome=deleted$"))
    expect(page.get_by_role("status")).to_contain_text("Deleted")
    expect(rows).to_have_count(1)
    assert sandbox.api.get(f"/v1/connections/{buffer_id}").status_code == 404


def test_a_bad_address_is_a_400_page(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    page = context.new_page()
    page.goto(sandbox.url + "/dashboard")
    page.wait_for_url(re.compile(r"/dashboard/projects/proj_[0-9A-Z]{26}$"))
    response = page.goto(page.url + "/connections?status=sideways")
    assert response is not None and response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Bad address")
    expect(page.get_by_role("alert")).to_contain_text("active, error or revoked")
    check_page(page, screenshots, "26-dashboard-bad-address")
