"""The project's webhook: its URL, rotating its signing secret, a test event, and the delivery
log (every delivery and each of its attempts) with Redeliver.

Setting the URL and rotating go through `webhooks.endpoints.set_endpoint_url`, the path of
`PUT /v1/webhook`, so each gives a new signing secret (the previous one keeps signing for a
day). The new secret is in that one answer only (never stored readable, never shown again).
A test event and a redelivery go through the outbox and the delivery worker (webhooks.deliveries).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.dashboard import audit
from authpipe_server.dashboard.auth import CsrfDep, Operator, OperatorDep, project_for
from authpipe_server.dashboard.render import dashboard_page
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Project
from authpipe_server.webhooks.deliveries import TEST_EVENT, TEST_MESSAGE, DeliveryRefused, delivery_log, redeliver, send_test_event
from authpipe_server.webhooks.endpoints import MAX_URL, InvalidWebhookUrl, get_endpoint, set_endpoint_url

router = APIRouter()

URL_SET = "webhook.url_set"
SECRET_ROTATED = "webhook.secret_rotated"
TEST_SENT = "webhook.test_sent"
REDELIVERED = "delivery.redelivered"
DELIVERY_ID = re.compile(r"^msg_[0-9A-Z]{26}$")
NOTICES = {
    "test_sent": "Test event queued. It shows in the delivery log below once the worker has sent it, usually within a second: reload to see it.",
    "redelivered": "Delivery queued again, with the same webhook-id. Reload to see the new attempt.",
}
ERRORS = {
    "no_endpoint": "This project has no webhook endpoint: set its URL first.",
    "endpoint_disabled": "The endpoint is disabled (its receiver answered 410 Gone): save its URL again to enable it.",
    "delivery_not_found": "There is no such delivery in this project.",
    "already_pending": "That delivery is still queued: the worker sends it when it is due.",
    "event_gone": "That event is past its retention and no longer kept, so it cannot be sent again.",
}
NO_STORE = {"Cache-Control": "no-store"}
TEST_BODY = json.dumps(
    {"type": TEST_EVENT, "timestamp": "2026-01-01T12:00:00Z", "data": {"project": {"id": "proj_…", "name": "…"}, "message": TEST_MESSAGE}},
    indent=2,
    ensure_ascii=False,
)
"""What a test delivery's body looks like, for the page."""


def webhook_url(project: Project) -> str:
    return f"/dashboard/projects/{project.id}/webhook"


async def webhook_page(
    request: Request,
    runtime: Runtime,
    operator: Operator,
    project: Project,
    status: int = 200,
    *,
    before: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    endpoint = await get_endpoint(runtime, project.id)
    log = await delivery_log(runtime, project.id, before=before)
    context.setdefault("typed_url", endpoint.url if endpoint is not None else "")
    return dashboard_page(
        request, "webhook.html", operator, status, headers, project=project, endpoint=endpoint, log=log, before=before,
        base=webhook_url(project), when=audit.when, test_body=TEST_BODY, max_url=MAX_URL, **context,
    )


@router.get("/projects/{project_id}/webhook", response_class=HTMLResponse)
async def webhook(
    request: Request,
    project_id: str,
    operator: OperatorDep,
    runtime: RuntimeDep,
    notice: str | None = None,
    error: str | None = None,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    project = await project_for(runtime, operator, project_id)
    before = before if before and DELIVERY_ID.match(before) else None
    return await webhook_page(
        request, runtime, operator, project, before=before, notice=NOTICES.get(notice or ""), problem=ERRORS.get(error or ""),
    )


async def new_secret_page(request: Request, runtime: Runtime, operator: Operator, project: Project, url: str, action: str) -> Response:
    """Set the URL (a new secret with it); the page showing the secret once, or the form again."""
    try:
        endpoint, secret = await set_endpoint_url(runtime, project.id, url)
    except InvalidWebhookUrl as exc:
        return await webhook_page(request, runtime, operator, project, 400, typed_url=url, url_error=str(exc))
    await audit.record(runtime, operator, action, urlsplit(endpoint.url).hostname, request)
    # The page carries the secret. Every page is no-store already; said again here so that a
    # change to the defaults can never let this one be cached.
    return await webhook_page(
        request, runtime, operator, project, headers=NO_STORE, new_secret=secret, rotated=action == SECRET_ROTATED
    )


@router.post("/projects/{project_id}/webhook/url", response_model=None)
async def set_url(request: Request, project_id: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    project = await project_for(runtime, operator, project_id)
    url = (await request.form()).get("url")
    typed = url.strip()[: MAX_URL + 1] if isinstance(url, str) else ""
    return await new_secret_page(request, runtime, operator, project, typed, URL_SET)


@router.post("/projects/{project_id}/webhook/rotate", response_model=None)
async def rotate(request: Request, project_id: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    project = await project_for(runtime, operator, project_id)
    endpoint = await get_endpoint(runtime, project.id)
    if endpoint is None:
        return RedirectResponse(f"{webhook_url(project)}?error=no_endpoint", status_code=303)
    return await new_secret_page(request, runtime, operator, project, endpoint.url, SECRET_ROTATED)


@router.post("/projects/{project_id}/webhook/test", response_model=None)
async def send_test(request: Request, project_id: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    project = await project_for(runtime, operator, project_id)
    try:
        delivery = await send_test_event(runtime, project.id)
    except DeliveryRefused as exc:
        return RedirectResponse(f"{webhook_url(project)}?error={exc.code}", status_code=303)
    await audit.record(runtime, operator, TEST_SENT, delivery.id, request)
    return RedirectResponse(f"{webhook_url(project)}?notice=test_sent", status_code=303)


@router.post("/projects/{project_id}/webhook/deliveries/{delivery_id}/redeliver", response_model=None)
async def redeliver_one(request: Request, project_id: str, delivery_id: str, operator: CsrfDep, runtime: RuntimeDep) -> Response:
    project = await project_for(runtime, operator, project_id)
    if not DELIVERY_ID.match(delivery_id):
        return RedirectResponse(f"{webhook_url(project)}?error=delivery_not_found", status_code=303)
    try:
        await redeliver(runtime, project.id, delivery_id)
    except DeliveryRefused as exc:
        return RedirectResponse(f"{webhook_url(project)}?error={exc.code}", status_code=303)
    await audit.record(runtime, operator, REDELIVERED, delivery_id, request)
    return RedirectResponse(f"{webhook_url(project)}?notice=redelivered", status_code=303)
