"""The project's webhook endpoint: `PUT /v1/webhook` (returns the signing secret, only here),
`GET /v1/webhook` (never the secret), `DELETE /v1/webhook`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from authpipe_server.api.deps import ProjectDep, RuntimeDep
from authpipe_server.api.errors import ApiError, ErrorBody, responses
from authpipe_server.connections.views import iso
from authpipe_server.egress import EgressRefused
from authpipe_server.webhooks.endpoints import (
    MAX_URL,
    InvalidWebhookUrl,
    delete_endpoint,
    get_endpoint,
    put_endpoint,
    validate_url,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "webhook_not_found: this project has no webhook endpoint"}}


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL)]


class WebhookSecretView(BaseModel):
    url: str
    secret: str


class WebhookView(BaseModel):
    url: str
    disabled_at: str | None


def not_found() -> ApiError:
    return ApiError(404, "webhook_not_found", "this project has no webhook endpoint; set one with PUT /v1/webhook")


@router.put(
    "/webhook",
    summary="Set the webhook endpoint; answers a new signing secret (shown only here)",
    response_model=WebhookSecretView,
    responses=responses(400, 401),
)
async def put_webhook(body: WebhookBody, response: Response, runtime: RuntimeDep, project_id: ProjectDep) -> dict[str, Any]:
    try:
        url = validate_url(body.url)
        # Refused now, with a reason, rather than at every delivery (the check repeats there).
        await runtime.egress.check_resolved(url)
    except (InvalidWebhookUrl, EgressRefused) as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    endpoint, secret = await put_endpoint(runtime, project_id, url)
    response.headers["Cache-Control"] = "no-store"  # the answer carries the signing secret
    return {"url": endpoint.url, "secret": secret}


@router.get(
    "/webhook",
    summary="The webhook endpoint (never its secret); disabled_at is set when the receiver answered 410",
    response_model=WebhookView,
    responses={**responses(401), **NOT_FOUND},
)
async def get_webhook(runtime: RuntimeDep, project_id: ProjectDep) -> dict[str, Any]:
    endpoint = await get_endpoint(runtime, project_id)
    if endpoint is None:
        raise not_found()
    return {"url": endpoint.url, "disabled_at": iso(endpoint.disabled_at)}


@router.delete(
    "/webhook",
    status_code=204,
    summary="Remove the webhook endpoint and drop what is queued for it",
    responses={**responses(401), **NOT_FOUND},
)
async def delete_webhook(runtime: RuntimeDep, project_id: ProjectDep) -> Response:
    if not await delete_endpoint(runtime, project_id):
        raise not_found()
    return Response(status_code=204)
