"""Template rendering shared by every page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]

# connect-src 'self': pages fetch only from their own origin (Swagger UI reads /openapi.json and
# sends "Try it out" requests; the sandbox's pages re-read themselves to stay current).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render(request: Request, name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, context, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})}
    )
