"""The project's webhook endpoint: `PUT /v1/webhook` (returns the signing secret, only here),
`GET /v1/webhook` (never the secret), `DELETE /v1/webhook`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from authpipe_server.api import examples
from authpipe_server.api.deps import ProjectDep, RuntimeDep
from authpipe_server.api.errors import ApiError, ErrorBody, responses
from authpipe_server.connections.views import iso
from authpipe_server.webhooks.endpoints import (
    MAX_URL,
    InvalidWebhookUrl,
    delete_endpoint,
    get_endpoint,
    set_endpoint_url,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorBody,
        "description": "webhook_not_found: this project has no webhook endpoint",
        "content": {
            "application/json": {
                "example": {"error": {"code": "webhook_not_found", "message": "this project has no webhook endpoint; set one with PUT /v1/webhook"}}
            }
        },
    }
}


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL)] = Field(
        description="Your receiver: an absolute https:// URL (http:// only where the egress policy allows it), no user:password@, no #fragment"
    )


class WebhookSecretView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    secret: str = Field(description="`whsec_…`: the Standard Webhooks signing secret. Shown only in this answer")


class WebhookView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    disabled_at: str | None = Field(description="Set (ISO-8601 UTC) when the receiver answered 410 Gone; PUT again to enable it")


def not_found() -> ApiError:
    return ApiError(404, "webhook_not_found", "this project has no webhook endpoint; set one with PUT /v1/webhook")


@router.put(
    "/webhook",
    summary="Set the webhook endpoint",
    description="""Sets the project's one webhook endpoint (replacing any earlier URL) and answers a new signing
secret, `whsec_…`, shown only here: store it. The previous secret keeps signing too for 24 hours, so a receiver
can switch without dropping a message. A PUT also enables an endpoint disabled by a 410.

Deliveries follow the Standard Webhooks spec: `POST` with `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,…` (HMAC-SHA256), body `{"type", "timestamp", "data": {"connection": {…}}}`, retried with
backoff for about a day until a 2xx. Types: `connection.created`, `connection.refresh_failed`, `connection.revoked`,
`connection.recovered`, `connection.deleted`, `connection.account_changed`.

Errors: 400 `invalid_request` (not an absolute http(s) URL, user:password@ or a #fragment in it, an address
the egress policy refuses).""",
    response_model=WebhookSecretView,
    responses={200: examples.success("The endpoint and its new signing secret", examples.WEBHOOK_WITH_SECRET), **responses(400, 401)},
)
async def put_webhook(
    body: Annotated[WebhookBody, Body(openapi_examples=examples.WEBHOOK_BODIES)], response: Response, runtime: RuntimeDep, project_id: ProjectDep
) -> dict[str, Any]:
    try:
        endpoint, secret = await set_endpoint_url(runtime, project_id, body.url)
    except InvalidWebhookUrl as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    response.headers["Cache-Control"] = "no-store"  # the answer carries the signing secret
    return {"url": endpoint.url, "secret": secret}


@router.get(
    "/webhook",
    summary="Get the webhook endpoint",
    description="""The project's webhook endpoint, never its secret. `disabled_at` is set when the receiver answered
410 Gone (Authpipe then stops delivering; PUT /v1/webhook enables it again).

Errors: 404 `webhook_not_found` (no endpoint set).""",
    response_model=WebhookView,
    responses={200: examples.success("The endpoint", examples.WEBHOOK), **responses(401), **NOT_FOUND},
)
async def get_webhook(runtime: RuntimeDep, project_id: ProjectDep) -> dict[str, Any]:
    endpoint = await get_endpoint(runtime, project_id)
    if endpoint is None:
        raise not_found()
    return {"url": endpoint.url, "disabled_at": iso(endpoint.disabled_at)}


@router.delete(
    "/webhook",
    status_code=204,
    summary="Delete the webhook endpoint",
    description="""Removes the webhook endpoint and drops the deliveries queued for it. Events are still recorded
(GET /v1/events). Answers 204 with no body.

Errors: 404 `webhook_not_found` (no endpoint set).""",
    responses={204: {"description": "Deleted (no body)"}, **responses(401), **NOT_FOUND},
)
async def delete_webhook(runtime: RuntimeDep, project_id: ProjectDep) -> Response:
    if not await delete_endpoint(runtime, project_id):
        raise not_found()
    return Response(status_code=204)
