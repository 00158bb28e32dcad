"""Accessibility checks with axe-core, injected into the page under test.

axe-core comes from npm (tests/browser/package.json; `make test` runs `npm ci` there). Its source
is evaluated through the DevTools protocol (`page.evaluate`), which the pages' strict CSP does not
govern, so the pages are checked exactly as served: no CSP bypass, no inline script tag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    if not AXE.exists():
        raise AssertionError(f"axe-core is missing at {AXE}: run `npm ci` in server/tests/browser (make test does)")
    page.evaluate(AXE.read_text())
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"]
        if v["impact"] in FAILING_IMPACTS
    ]


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], f"axe-core found serious or critical problems on {page.url}: {violations}"
