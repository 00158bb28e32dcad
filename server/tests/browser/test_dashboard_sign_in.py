"""Signing in to the dashboard in Chromium: `authpipe serve` refuses a wrong password, lets the
right one in (back to the page asked for), signs out, and refuses an address after 5 failures;
`authpipe dev` signs this machine's browser in by itself. Checked with axe-core, at desktop and
phone width."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import Sandbox, free_port
from tests.conftest import new_master_key
from tests.processes import CLI, running_server

PASSWORD = "correct horse battery staple"
PHONE = {"width": 375, "height": 800}


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPIPE_")} | env
    done = subprocess.run([*CLI, *args], env=full_env, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`authpipe serve` (no sandbox) with project acme and operator ops@example.com: (url, project id)."""
    directory = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {
        "AUTHPIPE_DATABASE_URL": f"sqlite:///{directory / 'authpipe.db'}",
        "AUTHPIPE_MASTER_KEY": new_master_key(),
        "AUTHPIPE_PORT": str(port),
        "AUTHPIPE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "AUTHPIPE_WORKERS": "off",
    }
    project_id = re.search(r"project: (\S+)", cli(env, "projects", "create", "acme")).group(1)  # type: ignore[union-attr]
    cli(env, "admins", "create", "ops@example.com", stdin=PASSWORD + "\n")
    with running_server(["serve"], env) as server:
        yield server.url, project_id


def fits_the_width(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def submit(page: Page, email: str, password: str) -> Any:
    """Fill the form and press Enter in the password field, as a keyboard user does; the answer."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.url.endswith("/dashboard/sign-in") and r.request.method == "POST") as answer:
        page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()
    return answer.value


def test_sign_in_sign_out_and_throttling(served: tuple[str, str], context: Any, screenshots: Path) -> None:
    url, project_id = served
    page = context.new_page()

    page.goto(url + "/dashboard/audit")
    expect(page).to_have_url(url + "/dashboard/sign-in?next=/dashboard/audit")
    expect(page.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
    assert_accessible(page)
    page.screenshot(path=screenshots / "dashboard-01-sign-in.png", full_page=True)

    wrong = submit(page, "ops@example.com", "not the password at all")
    assert wrong.status == 200
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value("ops@example.com")
    expect(page.get_by_label("Password")).to_have_value("")
    assert_accessible(page)

    right = submit(page, "ops@example.com", PASSWORD)
    assert right.status == 303
    expect(page).to_have_url(url + "/dashboard/audit")  # back to the page asked for
    expect(page.locator('.dash-nav a[aria-current="page"]')).to_have_text("Audit log")
    expect(page.locator(".who-email")).to_contain_text("ops@example.com")
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text("sign_in")
    expect(rows.nth(1)).to_contain_text("sign_in.failed")
    assert_accessible(page)
    page.screenshot(path=screenshots / "dashboard-02-audit.png", full_page=True)

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    page.set_viewport_size(PHONE)
    assert fits_the_width(page), "the audit page scrolls sideways at 375 px"
    page.screenshot(path=screenshots / "dashboard-03-audit-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # /dashboard opens the first project's overview.
    page.goto(url + "/dashboard")
    expect(page).to_have_url(f"{url}/dashboard/projects/{project_id}")

    page.goto(url + "/dashboard/audit")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(url + "/dashboard/sign-in?signed_out=1")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(url + "/dashboard/audit")
    expect(page).to_have_url(url + "/dashboard/sign-in?next=/dashboard/audit")

    # One failure so far from this address; four more make five, and then even the right
    # password is refused, with Retry-After.
    for _ in range(4):
        assert submit(page, "ops@example.com", "still not the password").status == 200
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    refused = submit(page, "ops@example.com", PASSWORD)
    assert refused.status == 429 and 0 < int(refused.headers["retry-after"]) <= 900
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(url + "/dashboard/sign-in")
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    assert fits_the_width(page), "the sign-in page scrolls sideways at 375 px"
    page.screenshot(path=screenshots / "dashboard-04-throttled-phone.png", full_page=True)


def test_the_sandbox_signs_in_by_itself(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    assert f"Dashboard:   {sandbox.url}/dashboard (signed in automatically)" in sandbox.output()
    page = context.new_page()
    page.goto(sandbox.url + "/dashboard/audit")
    expect(page).to_have_url(sandbox.url + "/dashboard/audit")
    expect(page.get_by_text("Signed in automatically (sandbox)")).to_be_visible()
    expect(page.locator(".who-email")).to_contain_text("sandbox@localhost")
    expect(page.locator("tbody tr").first).to_contain_text("(automatic)")
    expect(page.get_by_label("Project")).to_have_text(re.compile("default"))
    assert_accessible(page)
    page.screenshot(path=screenshots / "dashboard-05-sandbox-audit.png", full_page=True)

    # The same sandbox by another name than its public URL's (what DNS rebinding looks like):
    # no automatic sign-in.
    other = context.new_page()
    other.goto(sandbox.url.replace("127.0.0.1", "localhost") + "/dashboard/audit")
    expect(other.get_by_role("heading", name="Sign in to the dashboard")).to_be_visible()
