"""The API reference (`/openapi.json`, rendered by `/docs`) documents every /v1 call completely,
its examples are valid against the schemas they illustrate, and the main examples have the shape
the running app really answers; docs/http-api.md covers every /v1 call too."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from jsonschema import Draft202012Validator

from authpipe_server.api import examples
from authpipe_server.connections.secrets import TokenSet
from authpipe_server.connections.service import Owner, save_grant
from authpipe_server.providers.base import Account, Described, Grant
from authpipe_server.runtime import Runtime

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
KEY_ERRORS = {"401", "429", "503"}
"""Declared on every /v1 call by the secret-key check itself; the reference's introduction
explains them once, so an operation's own description need not."""
HTTP_API_MD = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"

Operation = tuple[str, str, dict[str, Any]]


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def operations(spec: dict[str, Any], prefix: str = "") -> Iterator[Operation]:
    for path, item in spec["paths"].items():
        if path.startswith(prefix):
            for method, operation in item.items():
                if method in METHODS:
                    yield method.upper(), path, operation


def success_status(operation: dict[str, Any]) -> str:
    return min(status for status in operation["responses"] if status.startswith("2"))


def declared_examples(container: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of an `example` and of each entry of an `examples` map."""
    found = [("example", container["example"])] if "example" in container else []
    return found + [(name, entry["value"]) for name, entry in container.get("examples", {}).items()]


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for one schema of the document,
    whose `#/components/...` references resolve inside the document."""
    return Draft202012Validator({**schema, "components": spec["components"]})


def errors_of(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator(spec, schema).iter_errors(value)]


def response_schema(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    schema: dict[str, Any] = spec["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]["schema"]
    return schema


def response_example(spec: dict[str, Any], method: str, path: str, status: int) -> Any:
    return spec["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]["example"]


def key_differences(real: Any, documented: Any, where: str = "") -> list[str]:
    """Where the keys of `real` and `documented` differ, objects compared key by key and arrays
    by their first items (an empty array, or a null against an object, says nothing)."""
    if isinstance(real, dict) and isinstance(documented, dict):
        if set(real) != set(documented):
            return [f"{where or '(root)'}: real {sorted(real)} != documented {sorted(documented)}"]
        return [d for key in real for d in key_differences(real[key], documented[key], f"{where}.{key}")]
    if isinstance(real, list) and isinstance(documented, list) and real and documented:
        return key_differences(real[0], documented[0], f"{where}[0]")
    return []


@pytest.fixture
async def spec(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


# -- every /v1 operation is documented ---------------------------------------------------------


@SQLITE_ONLY
async def test_every_v1_operation_has_a_summary_description_and_examples(spec: dict[str, Any]) -> None:
    missing: list[str] = []
    v1 = list(operations(spec, "/v1/"))
    assert len(v1) >= 14
    for method, path, operation in v1:
        name = f"{method} {path}"
        if not operation.get("summary"):
            missing.append(f"{name}: no summary")
        description = operation.get("description") or ""
        if len(description) < 80 or "Errors" not in description:
            missing.append(f"{name}: no description of what it does and its errors")
        for status in sorted(set(operation["responses"]) - KEY_ERRORS):
            if not status.startswith("2") and status not in description:
                missing.append(f"{name}: the description does not mention its {status}")

        status = success_status(operation)
        if status == "204":
            if "content" in operation["responses"][status]:
                missing.append(f"{name}: a 204 with a body")
        elif not declared_examples(operation["responses"][status].get("content", {}).get("application/json", {})):
            missing.append(f"{name}: no example of its {status} answer")

        if "requestBody" in operation and not declared_examples(operation["requestBody"]["content"]["application/json"]):
            missing.append(f"{name}: no request body example")
        parameters = operation.get("parameters", [])
        query = [p for p in parameters if p["in"] == "query"]
        if query and not any("example" in p or "examples" in p for p in query):
            missing.append(f"{name}: no query parameter example")
        for parameter in parameters:
            if parameter["in"] == "path" and "example" not in parameter and "examples" not in parameter:
                missing.append(f"{name}: no example for the path parameter {parameter['name']}")
    assert missing == []


@SQLITE_ONLY
async def test_the_secret_key_is_the_bearer_scheme_of_v1_only(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert list(schemes) == ["secretKey"]
    assert schemes["secretKey"]["type"] == "http" and schemes["secretKey"]["scheme"] == "bearer"
    assert schemes["secretKey"]["bearerFormat"].startswith("ap_sk_")
    assert "security" not in spec  # no global requirement: the ops endpoints and pages need no key
    for method, path, operation in operations(spec):
        expected = [{"secretKey": []}] if path.startswith("/v1/") else None
        assert operation.get("security") == expected, f"{method} {path}"
    assert {"/healthz", "/readyz", "/metrics"} <= set(spec["paths"])


@SQLITE_ONLY
async def test_the_reference_explains_authentication_errors_and_its_tags(spec: dict[str, Any]) -> None:
    description = spec["info"]["description"]
    for needed in ("Authorization: Bearer ap_sk_", '{"error": {"code"', "invalid_request", "connection_revoked", "/openapi.json"):
        assert needed in description
    tagged = {tag for _, _, operation in operations(spec) for tag in operation.get("tags", [])}
    assert tagged == {tag["name"] for tag in spec["tags"]} and all(tag["description"] for tag in spec["tags"])


# -- examples are valid against their schemas --------------------------------------------------


@SQLITE_ONLY
async def test_every_example_is_valid_against_its_schema(spec: dict[str, Any]) -> None:
    checked, invalid = 0, []
    for method, path, operation in operations(spec):
        where = f"{method} {path}"
        for parameter in operation.get("parameters", []):
            for name, value in declared_examples(parameter):
                checked += 1
                invalid += [f"{where} parameter {parameter['name']} ({name}): {e}" for e in errors_of(spec, parameter["schema"], value)]
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            for name, value in declared_examples(content):
                checked += 1
                invalid += [f"{where} request {media} ({name}): {e}" for e in errors_of(spec, content["schema"], value)]
        for status, response in operation["responses"].items():
            for media, content in response.get("content", {}).items():
                if "schema" not in content:
                    continue  # /metrics' text/plain
                for name, value in declared_examples(content):
                    checked += 1
                    invalid += [f"{where} {status} {media} ({name}): {e}" for e in errors_of(spec, content["schema"], value)]
    assert checked > 60
    assert invalid == []


@SQLITE_ONLY
async def test_a_drifted_example_is_caught(spec: dict[str, Any]) -> None:
    """The check above can fail: an example with a key the shape does not have, or without one
    it always has, is invalid."""
    schema = response_schema(spec, "GET", "/v1/connections/{connection_id}", 200)
    assert errors_of(spec, schema, examples.CONNECTION) == []
    assert errors_of(spec, schema, examples.CONNECTION | {"metadata": {}}) != []
    assert errors_of(spec, schema, {k: v for k, v in examples.CONNECTION.items() if k != "last_error"}) != []


@SQLITE_ONLY
async def test_examples_keep_their_nulls(spec: dict[str, Any]) -> None:
    """FastAPI's generator drops nulls, examples' included; the app puts them back."""
    documented = response_example(spec, "GET", "/v1/connections/{connection_id}", 200)
    assert documented == examples.CONNECTION and documented["last_error"] is None
    assert response_example(spec, "GET", "/v1/webhook", 200) == {"url": examples.WEBHOOK["url"], "disabled_at": None}


@SQLITE_ONLY
async def test_examples_use_only_fake_secrets(spec: dict[str, Any]) -> None:
    text = str(spec)
    for prefix, pattern in (("ap_sk_", r"ap_sk_[A-Za-z0-9_-]+"), ("ap_cs_", r"ap_cs_[A-Za-z0-9_-]+"), ("whsec_", r"whsec_[A-Za-z0-9+/=]+")):
        for found in re.findall(pattern, text):
            assert "EXAMPLE" in found, f"{found} looks like a real {prefix} secret"


# -- the main examples have the real answers' shape --------------------------------------------


async def test_main_examples_have_the_keys_of_real_answers(
    api: httpx.AsyncClient, runtime: Runtime, project: tuple[str, str], spec: dict[str, Any]
) -> None:
    project_id, key = project
    real: dict[tuple[str, str, int], Any] = {}

    async def call(method: str, path: str, status: int, documented_path: str | None = None, **kwargs: Any) -> Any:
        response = await api.request(method, path, headers=auth(key), **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        body = response.json()
        real[(method, documented_path or path, status)] = body
        return body

    # The documented request bodies work as they are (those that need no outside host).
    await call("PUT", "/v1/providers/spotify", 200, "/v1/providers/{name}", json=examples.PROVIDER_BODIES["catalog"]["value"])
    for body in examples.CONNECT_SESSION_BODIES.values():
        await call("POST", "/v1/connect-sessions", 201, json=body["value"])
    await call("PUT", "/v1/webhook", 200, json={"url": "https://127.0.0.1:8443/webhooks/authpipe"})
    await call("GET", "/v1/webhook", 200)

    grant = Grant(
        TokenSet(access_token="EXAMPLE-test-access-token", refresh_token="EXAMPLE-test-refresh-token"),
        datetime.now(timezone.utc) + timedelta(hours=1),
        ["user-read-email", "playlist-read-private"],
    )
    owner = Owner(project_id, examples.TENANT_ID, examples.USER_ID, examples.PROVIDER)
    connection, _ = await save_grant(runtime, owner, grant, Described(Account("31l7zqexample", "Ada Lovelace")), ["user-read-email"])

    listed = await call("GET", "/v1/connections", 200, params={"tenant_id": examples.TENANT_ID, "user_id": examples.USER_ID})
    assert [c["id"] for c in listed["connections"]] == [connection.id]
    await call("GET", f"/v1/connections/{connection.id}", 200, "/v1/connections/{connection_id}")
    query = {"provider": examples.PROVIDER, "tenant_id": examples.TENANT_ID, "user_id": examples.USER_ID}
    credential = await call("GET", "/v1/credentials", 200, params=query)
    assert credential["credential"] == "EXAMPLE-test-access-token"
    await call("GET", "/v1/providers", 200)
    await call("GET", "/v1/events", 200)

    problems = []
    for (method, path, status), body in real.items():
        where = f"{method} {path}"
        problems += [f"{where}: {d}" for d in key_differences(body, response_example(spec, method, path, status))]
        problems += [f"{where} against its schema: {e}" for e in errors_of(spec, response_schema(spec, method, path, status), body)]
    assert problems == []
    assert {path for _, path, _ in real} >= {
        "/v1/connect-sessions", "/v1/connections", "/v1/connections/{connection_id}", "/v1/credentials", "/v1/webhook",
    }


def test_key_differences_finds_nested_drift() -> None:
    documented = {"connections": [{"id": "conn_x", "account": {"id": "a", "name": "n"}}], "next_cursor": None}
    assert key_differences({"connections": [{"id": "conn_y", "account": {"id": "b", "name": "m"}}], "next_cursor": "c"}, documented) == []
    drifted = {"connections": [{"id": "conn_y", "account": {"id": "b"}}], "next_cursor": None}
    assert key_differences(drifted, documented) == [".connections[0].account: real ['id'] != documented ['id', 'name']"]


# -- the prose reference ------------------------------------------------------------------------


@SQLITE_ONLY
async def test_http_api_md_covers_every_v1_call(spec: dict[str, Any]) -> None:
    text = HTTP_API_MD.read_text(encoding="utf-8")
    missing = [f"{method} {path}" for method, path, _ in operations(spec, "/v1/") if f"{method} {path}" not in text]
    assert missing == []
    for needed in ("/docs", "/openapi.json", "org_acme", "user_123", "standardwebhooks", "curl"):
        assert needed in text
    assert ".." + "/shared" not in text and "/wo" + "rk/" not in text  # spelled apart: the link test reads this file
