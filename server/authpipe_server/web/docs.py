"""`/docs`: Swagger UI for `/openapi.json`, served from this origin under the pages' CSP.

FastAPI's own docs page loads Swagger UI from a CDN and starts it with an inline script. Here the
assets come from the `fastapi-offline` package (Swagger UI 5: `/openapi.json` is OpenAPI 3.1,
which Swagger UI 4 cannot render), mounted at `/docs/assets`, and the start-up code is
`/static/docs.js`, so the policy keeps `script-src 'self'`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from authpipe_server.web.render import render

ASSETS_PATH = "/docs/assets"

router = APIRouter(include_in_schema=False)
assets = StaticFiles(directory=Path(str(files("fastapi_offline") / "static")))


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request) -> HTMLResponse:
    return render(
        request,
        "docs.html",
        openapi_url=request.app.openapi_url,
        assets=ASSETS_PATH,
    )
