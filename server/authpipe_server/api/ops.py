"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.api.errors import error_response, responses
from authpipe_server.store.models import Connection

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable", responses=responses(503))
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    try:
        async with runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return error_response(503, "unavailable", "the database is unreachable")
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, responses=responses(503))
async def metrics(runtime: RuntimeDep) -> Response:
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
