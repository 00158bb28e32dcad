"""The landing page at `/` and the stylesheet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from authpipe_server.web.render import HERE, render

router = APIRouter(include_in_schema=False)
static = StaticFiles(directory=HERE / "static")


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request) -> HTMLResponse:
    return render(request, "landing.html", sandbox=request.app.state.sandbox, public_url=request.app.state.runtime.settings.public_url)
