"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from authpipe_server.api.deps import RuntimeDep
from authpipe_server.api.errors import error_response, responses

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
