"""The ASGI application: routes, error shape, middleware, and the process's lifespan."""

from __future__ import annotations

from fastapi import FastAPI

from authpipe_server import __version__
from authpipe_server.api import connections, errors, ops
from authpipe_server.api.middleware import AccessLog, BodyLimit, SecretKeyAuth
from authpipe_server.runtime import Runtime
from authpipe_server.web import pages

MAX_BODY_BYTES = 64 * 1024


def create_app(runtime: Runtime, *, sandbox: bool = False, auth_cache_ttl: float = 5.0) -> FastAPI:
    app = FastAPI(
        title="Authpipe",
        version=__version__,
        description="Credential broker: OAuth orchestration, an encrypted vault, silent refresh.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.sandbox = sandbox
    errors.install(app)
    app.include_router(ops.router)
    app.include_router(pages.router)
    app.mount("/static", pages.static, name="static")
    app.include_router(connections.router)
    app.add_middleware(SecretKeyAuth, db=runtime.db, ttl=auth_cache_ttl)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(AccessLog)
    return app
