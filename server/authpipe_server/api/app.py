"""The ASGI application: routes, error shape, middleware, and the process's lifespan."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from authpipe_server import __version__
from authpipe_server.api import connect_sessions, connections, credentials, errors, ops, providers
from authpipe_server.api import events, reference, webhooks
from authpipe_server.api.input_guard import InputGuard
from authpipe_server.api.middleware import AccessLog, BodyLimit, SecretKeyAuth
from authpipe_server.api.security_headers import StrictTransportSecurity, wants_hsts
from authpipe_server.config import Settings
from authpipe_server.connect import routes as connect_routes
from authpipe_server.dashboard import routes as dashboard_routes
from authpipe_server.runtime import Runtime
from authpipe_server.web import docs, pages
from authpipe_server.background.workers import background

MAX_BODY_BYTES = 64 * 1024


def create_app(
    runtime: Runtime | Settings, *, sandbox: bool = False, sandbox_data: Path | None = None, auth_cache_ttl: float = 5.0
) -> FastAPI:
    """Given a Runtime, the app uses it (its owner closes it). Given Settings, the app opens its
    own Runtime at startup, inside the server's event loop, and closes it at shutdown.
    `sandbox_data`: where the sandbox keeps its emulators' state across restarts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = isinstance(runtime, Settings)
        app.state.runtime = opened = await Runtime.open(runtime) if isinstance(runtime, Settings) else runtime
        try:
            async with AsyncExitStack() as running:
                if opened.settings.workers:
                    await running.enter_async_context(background(opened))
                if sandbox and sandbox_data is not None:
                    from authpipe_server.sandbox.persistence import kept

                    await running.enter_async_context(kept(app.state.sandbox_emulators, sandbox_data))
                yield
        finally:
            if owned:
                await opened.close()

    app = FastAPI(
        title="Authpipe",
        version=__version__,
        description=reference.DESCRIPTION,
        openapi_tags=reference.TAGS,
        lifespan=lifespan,
        docs_url=None,  # web.docs serves /docs from this origin (FastAPI's loads a CDN)
        redoc_url=None,
    )
    settings = runtime.settings if isinstance(runtime, Runtime) else runtime
    if isinstance(runtime, Runtime):
        app.state.runtime = runtime
    app.state.sandbox = sandbox
    errors.install(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.include_router(ops.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.include_router(credentials.router)
    app.include_router(connections.router)
    app.include_router(providers.router)
    app.include_router(connect_sessions.router)
    app.include_router(webhooks.router)
    app.include_router(events.router)
    app.include_router(connect_routes.router)
    dashboard_routes.install(app)  # its router, and its refusals answered as pages
    app.mount("/static", pages.static, name="static")
    app.mount(docs.ASSETS_PATH, docs.assets, name="docs-assets")
    if sandbox:
        _add_sandbox(app, settings.public_url)
    app.add_middleware(InputGuard)  # inside auth (401 first) and the body limit
    app.add_middleware(SecretKeyAuth, ttl=auth_cache_ttl)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if settings.access_log:
        app.add_middleware(AccessLog)
    app.add_middleware(errors.LastResort)  # outside the rest, so their failures get the JSON 500 too
    if wants_hsts(settings.public_url):
        app.add_middleware(StrictTransportSecurity)  # outermost: every answer carries it
    return app


def _add_sandbox(app: FastAPI, public_url: str) -> None:
    """`authpipe dev`: the provider emulators inside this server, the one-click pages, the
    Simulate controls (which reach the emulators' state directly) and the webhook inbox."""
    from authpipe_server.sandbox.inbox import Inbox
    from authpipe_server.sandbox.providers import emulator_path, mounted_emulators
    from authpipe_server.web import sandbox as sandbox_pages

    app.include_router(sandbox_pages.router)
    app.state.sandbox_emulators = {}
    app.state.sandbox_inbox = Inbox()
    for name, emulator in mounted_emulators(public_url).items():
        app.mount(emulator_path(name), emulator)
        app.state.sandbox_emulators[name] = emulator.state.emulator


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, without the 422 it declares on every route (Authpipe answers invalid
    input with 400 `invalid_request`, declared per route, never 422), with the secret key
    declared as the bearer scheme of every /v1 operation, and with the examples as declared
    (get_openapi drops the nulls inside them) and where Swagger UI's "Try it out" reads them."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        reference.declare_security(schema)
        reference.restore_examples(schema, app.routes)
        reference.promote_parameter_examples(schema)
        app.openapi_schema = schema
    return app.openapi_schema
