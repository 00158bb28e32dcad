"""Operations endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.api.errors import ErrorBody, error_response, responses
from authpipe_server.egress.policy import is_loopback, parse_address
from authpipe_server.store.models import Connection

router = APIRouter(tags=["operations"])

METRICS_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "unauthorized: AUTHPIPE_METRICS_TOKEN is set and the request does not carry it as a Bearer token"},
    403: {"model": ErrorBody, "description": "forbidden: AUTHPIPE_METRICS_TOKEN is not set, so only loopback callers are answered"},
}


@router.get(
    "/healthz",
    summary="Liveness",
    description="Answers 200 while the process is up; it touches nothing else (use /readyz for the database). No key needed.",
    responses={200: {"description": "The process is up", "content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    description="Answers 200 when the database answers a query, else 503 `unavailable`. No key needed.",
    responses={200: {"description": "The database is reachable", "content": {"application/json": {"example": {"status": "ready"}}}}, **responses(503)},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    try:
        async with runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return error_response(503, "unavailable", "the database is unreachable")
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="""Prometheus text format: credential-read latency, refresh and health-check outcomes, webhook
deliveries, connections by provider and status. Not the secret key: with `AUTHPIPE_METRICS_TOKEN` set, send it as
`Authorization: Bearer <token>`; without it, only loopback callers are answered.

Errors: 401 `unauthorized` (token set and not sent), 403 `forbidden` (no token set and the caller is not on
loopback), 503 `unavailable`.""",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"example": 'authpipe_connections{provider="spotify",status="active"} 42.0\n'}},
        },
        **METRICS_REFUSALS,
        **responses(503),
    },
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    refused = _metrics_refusal(request, runtime.settings.metrics_token)
    if refused is not None:
        return refused
    try:
        async with runtime.db.sessions() as session:
            counts = (
                await session.execute(
                    select(Connection.provider, Connection.status, func.count()).group_by(Connection.provider, Connection.status)
                )
            ).all()
    except (SQLAlchemyError, OSError):
        return error_response(503, "unavailable", "the database is unreachable")
    gauge = runtime.metrics.connections
    gauge.clear()
    for provider, status, count in counts:
        gauge.labels(provider=provider, status=status).set(count)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _metrics_refusal(request: Request, token: str | None) -> JSONResponse | None:
    """The metrics name every project's custom providers and their connection counts: with a
    token configured, only its holder sees them; without one, only callers on this machine."""
    if token is not None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return None
        return error_response(
            401,
            "unauthorized",
            "missing or wrong metrics token: send Authorization: Bearer <AUTHPIPE_METRICS_TOKEN>",
            {"WWW-Authenticate": "Bearer"},
        )
    if request.client is not None and _is_loopback(request.client.host):
        return None
    return error_response(
        403, "forbidden", "/metrics answers only loopback callers; set AUTHPIPE_METRICS_TOKEN to scrape it from elsewhere"
    )


def _is_loopback(host: str) -> bool:
    try:
        return is_loopback(parse_address(host))
    except ValueError:
        return False
