"""`/docs` in a real browser: Swagger UI renders the API from Authpipe's own origin, under the
pages' strict CSP, without a single console error, CSP violation or request elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Sandbox

# Recorded before any page script runs (Playwright injects it outside the page's CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def test_docs_render_from_this_origin_under_the_csp(sandbox: Sandbox, context: Any, screenshots: Path) -> None:
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))

    response = page.goto(f"{sandbox.url}/docs")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")

    credentials = page.locator(".opblock-summary-path", has_text="/v1/credentials").first
    expect(credentials).to_be_visible()
    expect(page.locator(".information-container .title")).to_contain_text("Authpipe")
    credentials.click()  # expand one operation: its parameters and responses render too
    expect(page.locator(".opblock.is-open .parameters-container")).to_contain_text("tenant_id")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshots / "docs.png"), full_page=False)

    assert errors == []
    assert page.evaluate("window.__cspViolations") == []
    elsewhere = [url for url in requests if not url.startswith(f"{sandbox.url}/") and not url.startswith("data:")]
    assert elsewhere == []
    assert f"{sandbox.url}/openapi.json" in requests
