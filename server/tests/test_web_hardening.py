"""The HTTP surface's hardening (issue 10, items 11 and 14), over real HTTP to a real server on
loopback, except where a caller's address must be one loopback cannot give (in-process there):

- `/metrics`: a Bearer AUTHPIPE_METRICS_TOKEN when one is set, loopback callers only when not;
- `/docs`: Swagger UI from this origin, no inline script, the pages' CSP;
- `Cache-Control: no-store` on the answers that carry a secret;
- HSTS when the public URL is https;
- webhook URLs: no user:password@, and inside the egress policy at configuration time.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from authpipe_server.api.app import create_app
from authpipe_server.config import load_settings
from authpipe_server.connections.secrets import TokenSet
from authpipe_server.connections.service import Owner, save_grant
from authpipe_server.emulators import serve_in_thread
from authpipe_server.providers.base import Account, Described, Grant
from authpipe_server.runtime import Runtime
from tests.conftest import make_project, new_master_key

HSTS = "max-age=63072000; includeSubDomains"
WHO = {"provider": "spotify", "tenant_id": "org_acme", "user_id": "user_123"}


@pytest.fixture
def env(sqlite_url: str) -> dict[str, str]:
    return {
        "AUTHPIPE_DATABASE_URL": sqlite_url,
        "AUTHPIPE_MASTER_KEY": new_master_key(),
        "AUTHPIPE_EGRESS": "loopback",
        "AUTHPIPE_WORKERS": "off",
    }


@contextmanager
def running(env: dict[str, str], **extra: str) -> Iterator[str]:
    """A real Authpipe server on a free loopback port with `env` plus `extra`; yields its URL."""
    with serve_in_thread(create_app(load_settings(env | extra), auth_cache_ttl=0.0001)) as url:
        yield url


@asynccontextmanager
async def in_process(env: dict[str, str], client: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, seen as called from `client` (an address loopback cannot give)."""
    runtime = await Runtime.open(load_settings(env))
    try:
        transport = httpx.ASGITransport(app=create_app(runtime, auth_cache_ttl=0.0001), client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://authpipe.test") as api:
            yield api
    finally:
        await runtime.close()


def api_client(url: str, secret: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=15)


def seed_connection(env: dict[str, str], project_id: str, access_token: str) -> None:
    """A Spotify connection whose token has an hour left (read back without a refresh)."""

    async def seed() -> None:
        runtime = await Runtime.open(load_settings(env))
        try:
            grant = Grant(TokenSet(access_token=access_token), datetime.now(timezone.utc) + timedelta(hours=1))
            owner = Owner(project_id, WHO["tenant_id"], WHO["user_id"], WHO["provider"])
            await save_grant(runtime, owner, grant, Described(Account("acct-1", "Ada")), [])
        finally:
            await runtime.close()

    asyncio.run(seed())


@contextmanager
def webhook_receiver() -> Iterator[str]:
    """A real webhook receiver on loopback (plain http); yields its endpoint URL."""
    app = Starlette(routes=[Route("/hook", lambda _: Response(status_code=204), methods=["POST"])])
    with serve_in_thread(app) as url:
        yield f"{url}/hook"


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


# -- /metrics ----------------------------------------------------------------------------------


def test_metrics_with_a_token_configured_need_it(env: dict[str, str]) -> None:
    token = secrets.token_urlsafe(24)
    with running(env, AUTHPIPE_METRICS_TOKEN=token) as url:
        for headers in (
            {},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer wrong-{token}"},
            {"Authorization": f"Bearer {token[:-4]}"},
            {"Authorization": f"Basic {token}"},
        ):
            refused = httpx.get(f"{url}/metrics", headers=headers)
            assert error(refused)[:2] == (401, "unauthorized"), headers  # loopback alone is not enough
            assert refused.headers["www-authenticate"] == "Bearer"
            assert token not in refused.text
        allowed = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200 and "authpipe_credential_read_seconds" in allowed.text
        declared = httpx.get(f"{url}/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]
        assert {"200", "401", "403", "503"} <= set(declared)


async def test_metrics_without_a_token_answer_only_loopback_callers(env: dict[str, str]) -> None:
    expected = {
        ("127.0.0.1", 40000): 200,
        ("127.8.9.10", 40000): 200,
        ("::1", 40000): 200,
        ("::ffff:127.0.0.1", 40000): 200,  # a dual-stack socket's view of an IPv4 loopback caller
        ("203.0.113.5", 1234): 403,
        ("10.0.0.7", 1234): 403,
        ("::ffff:203.0.113.5", 1234): 403,
        ("2001:db8::1", 1234): 403,
    }
    answered: dict[tuple[str, int], int] = {}
    for client in expected:
        async with in_process(env, client) as api:
            response = await api.get("/metrics")
        answered[client] = response.status_code
        if response.status_code == 403:
            status, code, message = error(response)
            assert code == "forbidden" and "AUTHPIPE_METRICS_TOKEN" in message
            assert "authpipe_connections" not in response.text
    assert answered == expected


async def test_metrics_token_opens_metrics_to_other_hosts(env: dict[str, str]) -> None:
    token = secrets.token_urlsafe(24)
    async with in_process(env | {"AUTHPIPE_METRICS_TOKEN": token}, ("203.0.113.5", 1234)) as api:
        assert (await api.get("/metrics")).status_code == 401
        assert (await api.get("/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 200


# -- /docs -------------------------------------------------------------------------------------


class References(HTMLParser):
    """Every src/href of a page, and the bodies of its script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_docs_are_served_from_this_origin_under_the_pages_csp(env: dict[str, str]) -> None:
    with running(env) as url:
        page = httpx.get(f"{url}/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert not re.search(r"(?i)(https?:)?//", page.text), "the page names another origin"
        found = References()
        found.feed(page.text)
        assert found.scripts and all(script.get("src") for script in found.scripts)
        assert found.inline == []

        policy = directives(page.headers["content-security-policy"])
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
        pages = directives(httpx.get(f"{url}/").headers["content-security-policy"])
        assert policy == pages and policy["connect-src"] == "'self'"  # fetch() of /openapi.json; pages re-read themselves too

        for ref in (u for u in found.urls if not u.startswith("data:")):
            asset = httpx.get(f"{url}{ref}")
            assert asset.status_code == 200, ref
            assert asset.headers["content-type"].split(";")[0] in ("text/css", "text/javascript", "application/javascript", "image/svg+xml"), ref
        spec = httpx.get(f"{url}/openapi.json")
        assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.1")


# -- Cache-Control and HSTS --------------------------------------------------------------------


def test_answers_carrying_secrets_are_not_stored(env: dict[str, str]) -> None:
    project_id, secret = make_project(env, "no-store")
    access_token = f"tok-{secrets.token_hex(8)}"
    seed_connection(env, project_id, access_token)
    with webhook_receiver() as hook, running(env) as url, api_client(url, secret) as api:
        credential = api.get("/v1/credentials", params=WHO)
        assert credential.status_code == 200 and credential.json()["credential"] == access_token
        assert credential.headers["cache-control"] == "no-store"
        webhook = api.put("/v1/webhook", json={"url": hook})
        assert webhook.status_code == 200 and webhook.json()["secret"].startswith("whsec_")
        assert webhook.headers["cache-control"] == "no-store"


def test_hsts_when_the_public_url_is_https(env: dict[str, str]) -> None:
    paths = ["/healthz", "/docs", "/static/docs.js", "/v1/connections", "/no-such-page"]  # 401 and 404 too
    with running(env, AUTHPIPE_PUBLIC_URL="https://auth.example.com") as url:
        for path in paths:
            assert httpx.get(f"{url}{path}").headers.get("strict-transport-security") == HSTS, path
    with running(env, AUTHPIPE_PUBLIC_URL="http://127.0.0.1:8080") as url:
        for path in paths:
            assert "strict-transport-security" not in httpx.get(f"{url}{path}").headers, path


# -- webhook URLs ------------------------------------------------------------------------------


def test_webhook_urls_with_credentials_are_refused(env: dict[str, str]) -> None:
    _, secret = make_project(env, "userinfo")
    with running(env) as url, api_client(url, secret) as api:
        for hook in ("https://ada:s3cr3t-pw@127.0.0.1/hook", "http://ada@127.0.0.1:9/hook", "https://:s3cr3t-pw@127.0.0.1/hook"):
            status, code, message = error(api.put("/v1/webhook", json={"url": hook}))
            assert (status, code) == (400, "invalid_request"), hook
            assert "credentials don't belong in the URL" in message and "s3cr3t-pw" not in message
        assert api.get("/v1/webhook").status_code == 404  # nothing was saved


def test_webhook_url_is_checked_against_the_egress_policy(env: dict[str, str]) -> None:
    _, secret = make_project(env, "egress")
    with webhook_receiver() as hook:
        outside = [
            hook,  # a live loopback receiver over http
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/hook",
            "https://192.168.1.20/hook",
            "https://localhost/hook",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
        ]
        with running(env, AUTHPIPE_EGRESS="public") as url, api_client(url, secret) as api:
            for refused in outside:
                status, code, message = error(api.put("/v1/webhook", json={"url": refused}))
                assert (status, code) == (400, "invalid_request"), refused
                assert "AUTHPIPE_EGRESS=public" in message, (refused, message)
            assert api.get("/v1/webhook").status_code == 404  # nothing was saved
        with running(env, AUTHPIPE_EGRESS="loopback") as url, api_client(url, secret) as api:
            accepted = api.put("/v1/webhook", json={"url": hook})
            assert accepted.status_code == 200 and accepted.json()["url"] == hook
