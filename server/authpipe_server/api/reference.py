"""The API reference's prose and security declaration: the description `/docs` opens with, the
tag groups, and the bearer scheme that makes Swagger UI's "Authorize" and "Try it out" work."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import fastapi.routing
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

SECURITY_SCHEME = "secretKey"

DESCRIPTION = """\
Authpipe brokers your users' third-party credentials: it runs the OAuth (or app-password) connect flow,
keeps the tokens in an encrypted vault, refreshes them before they expire, checks they still work and tells
you by webhook when they stop.

**Authentication.** Every `/v1/*` call carries a project secret key: `Authorization: Bearer ap_sk_…`
(`authpipe dev` prints one; `authpipe keys create --project NAME` makes more). A `/v1/*` request without a
valid key is answered 401 `unauthorized` before anything else, unknown paths included. Click **Authorize**
and paste the key to use **Try it out** here.

**Errors** are JSON, `{"error": {"code": "snake_case_code", "message": "a human sentence"}}`:

| status | code |
| --- | --- |
| 400 | `invalid_request`; `provider_rejected_credentials` (the provider refused an app password or imported token) |
| 401 | `unauthorized` (only about Authpipe's own secret key) |
| 404 | `connection_not_found`, `provider_not_found`, `resource_not_found`, `webhook_not_found` |
| 409 | `provider_not_configured` |
| 410 | `connection_revoked` (the user must connect again), `tenant_shredded`, `credential_unreadable` |
| 413 | `request_too_large` (bodies are limited to 64 KiB) |
| 429 | `rate_limited` (see `Retry-After`) |
| 502 | `provider_error` |
| 503 | `unavailable` (Authpipe's own database is unreachable; see `Retry-After`) |

Ids: `tenant_id` and `user_id` are 1–256 characters of `A-Za-z0-9._:@-`; provider names are `[a-z0-9-]{2,64}`.
Times are ISO-8601 UTC strings (`2026-11-30T12:00:00Z`) or null.

This page works offline: it is served by Authpipe itself, and the schema is at `/openapi.json`.
"""

TAGS: list[dict[str, Any]] = [
    {"name": "connect sessions", "description": "Your backend creates a session; your frontend opens its connect page."},
    {"name": "connections", "description": "One user's grant at one provider (`conn_…`): list, read, refresh, check, delete, or create from the server side."},
    {"name": "credentials", "description": "The token to call the provider with, refreshed before it expires."},
    {"name": "providers", "description": "The catalog, your provider apps, and custom OAuth 2.0 providers."},
    {"name": "webhooks", "description": "One endpoint per project, signed per the Standard Webhooks spec."},
    {"name": "events", "description": "The event log behind the webhooks, newest first."},
    {"name": "operations", "description": "Liveness, readiness and metrics for your infrastructure (no secret key)."},
]


def declare_security(schema: dict[str, Any]) -> None:
    """Declare the secret key as an HTTP bearer scheme and require it on every /v1 operation.
    (The check itself is middleware, so FastAPI cannot see it on the routes.)"""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "ap_sk_…",
        "description": "A project secret key, `ap_sk_…`, sent as `Authorization: Bearer ap_sk_…`.",
    }
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                operation["security"] = [{SECURITY_SCHEME: []}]


def restore_examples(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Put the routes' request and response examples back as declared.

    FastAPI's get_openapi() serializes the whole document with `exclude_none=True`, which also
    strips every null inside an example (a connection's `"last_error": null` would vanish, and
    the example would no longer show the real shape)."""
    for path, route in _api_routes(routes):
        for method in route.methods:
            operation = schema.get("paths", {}).get(path, {}).get(method.lower())
            if operation is None:  # not in the schema (include_in_schema=False)
                continue
            for status, declared in route.responses.items():
                for media, content in declared.get("content", {}).items():
                    documented = operation["responses"][str(status)]["content"][media]
                    documented.update({key: jsonable_encoder(content[key]) for key in ("example", "examples") if key in content})
            body_examples = getattr(route.body_field.field_info, "openapi_examples", None) if route.body_field else None
            if body_examples:
                for documented in operation["requestBody"]["content"].values():
                    documented["examples"] = jsonable_encoder(body_examples)



def promote_parameter_examples(schema: dict[str, Any]) -> None:
    """A query parameter read from a model (GET /v1/credentials) carries its pydantic
    `Field(examples=…)` inside its JSON Schema only; Swagger UI fills "Try it out" from the
    parameter's own `example`, so the first one is copied there."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                examples = parameter.get("schema", {}).get("examples")
                if examples and "example" not in parameter and "examples" not in parameter:
                    parameter["example"] = examples[0]

def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, APIRoute]]:
    """Each API route with the path the schema lists it under. Recent FastAPI releases keep
    included routers as such (`iter_route_contexts` resolves them); older ones list every
    route flat."""
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_route_contexts is None:
        yield from ((route.path_format, route) for route in routes if isinstance(route, APIRoute))
        return
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, APIRoute) and context.path_format is not None:
            yield context.path_format, context.original_route
