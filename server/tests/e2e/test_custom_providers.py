"""Custom OAuth 2.0 providers against a stand-in authorization server over real HTTP: declared
from the issuer alone (RFC 8414 / OpenID Connect discovery), `iss` at the callback (RFC 9207),
public clients and PKCE (RFC 9700 §2.1.1), and revocation (RFC 7009).

The stand-in is compliant by default and hostile where a test says so: a wrong issuer in its
metadata, no `iss` at the callback, a revocation endpoint that answers 401."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from authpipe_server.connections.secrets import TokenSet
from authpipe_server.egress import Egress, EgressPolicy
from authpipe_server.emulators import serve_in_thread
from authpipe_server.providers.base import AppCredentials
from authpipe_server.providers.catalog import custom_entry
from authpipe_server.providers.errors import ProviderFailure
from authpipe_server.providers.oauth2 import OAuth2Provider
from authpipe_server.providers.spec import ProviderSpec
from tests.e2e.conftest import Authpipe, result_of

CLIENT, SECRET = "stand-in-client", "stand-in-secret"
BASIC = "Basic " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
CANARY = "canary-f00d-must-never-be-echoed"
"""A value in every metadata document: an error message that repeats the answer would show it."""


@dataclass
class Server:
    """One authorization server of the stand-in, whose issuer is `{base}/{name}`."""

    issuer: str
    metadata: str = "rfc8414"
    """Where its metadata is served: "rfc8414", "openid" (RFC 8414's URL answers 404) or "none"."""
    metadata_changes: dict[str, Any] = field(default_factory=dict)
    """Fields replaced in (None: removed from) the compliant metadata document."""
    send_iss: bool = True
    revocation_statuses: list[int] = field(default_factory=list)
    """Statuses the revocation endpoint answers with, in turn; 200 once they run out."""
    codes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    token_requests: list[str] = field(default_factory=list)
    """The client authentication of every token request: "basic", "post" or "none"."""
    revocations: list[dict[str, str]] = field(default_factory=list)
    """Every revocation request: its Authorization header (or "") and its form."""

    def document(self) -> dict[str, Any]:
        compliant: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "revocation_endpoint": f"{self.issuer}/revoke",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "authorization_response_iss_parameter_supported": True,
            "op_policy_uri": f"https://policy.example/{CANARY}",
        }
        changed = compliant | self.metadata_changes
        return {key: value for key, value in changed.items() if value is not None}


class StandIn:
    """Authorization servers at `{base}/{name}`, each a `Server` a test configures."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.servers: dict[str, Server] = {}
        self.app = Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server/{name}", self.rfc8414_metadata),
                Route("/{name}/.well-known/openid-configuration", self.openid_metadata),
                Route("/{name}/authorize", self.authorize),
                Route("/{name}/token", self.token, methods=["POST"]),
                Route("/{name}/userinfo", self.userinfo),
                Route("/{name}/revoke", self.revoke, methods=["POST"]),
            ]
        )

    def add(self, name: str, **config: Any) -> Server:
        self.servers[name] = Server(issuer=f"{self.base_url}/{name}", **config)
        return self.servers[name]

    def server(self, request: Request) -> Server:
        return self.servers[request.path_params["name"]]

    async def rfc8414_metadata(self, request: Request) -> Response:
        server = self.server(request)
        return JSONResponse(server.document()) if server.metadata == "rfc8414" else Response(status_code=404)

    async def openid_metadata(self, request: Request) -> Response:
        server = self.server(request)
        return JSONResponse(server.document()) if server.metadata == "openid" else Response(status_code=404)

    async def authorize(self, request: Request) -> Response:
        """The user consents at once: back to the redirect URI with a code (and `iss`)."""
        server, params = self.server(request), request.query_params
        code = secrets.token_urlsafe(16)
        server.codes[code] = (params["redirect_uri"], params.get("code_challenge"))
        back = {"code": code, "state": params["state"]} | ({"iss": server.issuer} if server.send_iss else {})
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(back)}", status_code=302)

    async def token(self, request: Request) -> Response:
        server, form = self.server(request), dict(await request.form())
        header = request.headers.get("authorization")
        if header is not None:
            server.token_requests.append("basic")
            authenticated = header == BASIC and "client_secret" not in form
        elif "client_secret" in form:
            server.token_requests.append("post")
            authenticated = form.get("client_id") == CLIENT and form["client_secret"] == SECRET
        else:
            server.token_requests.append("none")
            authenticated = form.get("client_id") == CLIENT
        if not authenticated:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        redirect_uri, challenge = server.codes.pop(str(form.get("code")), ("", None))
        verifier = str(form.get("code_verifier", ""))
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if redirect_uri != form.get("redirect_uri") or (challenge is not None and challenge != expected):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access = secrets.token_urlsafe(16)
        server.tokens.add(access)
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": secrets.token_urlsafe(16)})

    async def userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.server(request).tokens:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"sub": "user-42", "name": "Stand-in User"})

    async def revoke(self, request: Request) -> Response:
        server = self.server(request)
        server.revocations.append({"authorization": request.headers.get("authorization", "")} | {k: str(v) for k, v in (await request.form()).items()})
        status = server.revocation_statuses.pop(0) if server.revocation_statuses else 200
        if status == 200:
            return Response(status_code=200)
        headers = {"Retry-After": "0"} if status == 503 else {}
        return JSONResponse({"error": "invalid_client" if status == 401 else "temporarily_unavailable"}, status_code=status, headers=headers)


@pytest.fixture(scope="module")
def stand_in_server() -> Iterator[StandIn]:
    holder: list[StandIn] = []

    def factory(url: str) -> Starlette:
        holder.append(StandIn(url))
        return holder[0].app

    with serve_in_thread(app_factory=factory):
        yield holder[0]


@pytest.fixture
def stand_in(stand_in_server: StandIn) -> StandIn:
    stand_in_server.servers.clear()
    return stand_in_server


def declare(authpipe: Authpipe, name: str, **body: Any) -> httpx.Response:
    payload = {"auth_mode": "oauth2", "client_id": CLIENT, "client_secret": SECRET, "scopes": ["read"]} | body
    return authpipe.api.put(f"/v1/providers/{name}", json={k: v for k, v in payload.items() if v is not None})


def explicit_endpoints(server: Server) -> dict[str, str]:
    """A declaration that names the endpoints itself (no discovery)."""
    return {"authorization_url": f"{server.issuer}/authorize", "token_url": f"{server.issuer}/token", "userinfo_url": f"{server.issuer}/userinfo"}


def sign_in(authpipe: Authpipe, provider: str) -> tuple[str, httpx.Response]:
    """Play the browser: open the connect page, start, consent at the stand-in, come back.
    Returns the authorization URL and the callback's answer."""
    with httpx.Client() as browser:
        created = authpipe.session()
        assert browser.get(created["connect_url"]).status_code == 200
        start = browser.get(f"{authpipe.url}/connect/{provider}", params={"session": created["token"]})
        assert start.status_code == 302, start.text
        authorization_url = start.headers["location"]
        back = browser.get(authorization_url)
        assert back.status_code == 302 and back.headers["location"].startswith(f"{authpipe.url}/oauth/callback?")
        return authorization_url, browser.get(back.headers["location"])


def test_declared_from_its_issuer_alone_connects_end_to_end(authpipe: Authpipe, stand_in: StandIn) -> None:
    server = stand_in.add("compliant")
    declared = declare(authpipe, "acme-crm", issuer=server.issuer, display_name="Acme CRM")
    assert declared.status_code == 200, declared.text
    assert declared.json()["configured"] is True

    authorization_url, callback = sign_in(authpipe, "acme-crm")
    assert "Your Acme CRM account" in callback.text  # its display name, not "Acme-crm"
    assert authorization_url.startswith(f"{server.issuer}/authorize?") and "code_challenge_method=S256" in authorization_url
    outcome = result_of(callback.text)["message"]
    assert outcome["ok"] is True, outcome
    assert outcome["connection"]["account"] == {"id": "user-42", "name": "Stand-in User"}
    # client_secret_basic: the first method the metadata lists that a client with a secret can use.
    assert server.token_requests == ["basic"]

    deleted = authpipe.api.delete(f"/v1/connections/{outcome['connection']['id']}")
    assert deleted.status_code == 204
    assert len(server.revocations) == 1
    revocation = server.revocations[0]
    assert revocation["authorization"] == BASIC and "client_secret" not in revocation
    assert revocation["token_type_hint"] == "refresh_token"


def test_openid_configuration_when_there_is_no_rfc8414_metadata(authpipe: Authpipe, stand_in: StandIn) -> None:
    server = stand_in.add("oidc", metadata="openid")
    declared = declare(authpipe, "acme-oidc", issuer=server.issuer)
    assert declared.status_code == 200, declared.text
    authorization_url, callback = sign_in(authpipe, "acme-oidc")
    assert authorization_url.startswith(f"{server.issuer}/authorize?")
    assert result_of(callback.text)["message"]["ok"] is True


@pytest.mark.parametrize(
    ("config", "explained"),
    [
        ({"metadata_changes": {"issuer": "https://other.example"}}, "names the issuer 'https://other.example', not"),
        ({"metadata": "none"}, "found no authorization server metadata at"),
        ({"metadata_changes": {"token_endpoint": None}}, "has no token_endpoint"),
        ({"metadata_changes": {"authorization_endpoint": "javascript:alert(1)"}}, "has an unusable authorization_endpoint"),
        ({"metadata_changes": {"code_challenge_methods_supported": ["plain"]}}, "does not list S256"),
        ({"metadata_changes": {"token_endpoint_auth_methods_supported": ["private_key_jwt"]}}, "neither client_secret_basic nor client_secret_post"),
        ({"metadata_changes": {"token_endpoint": "http://169.254.169.254/token"}}, "discovered token_url is refused"),
    ],
)
def test_unusable_metadata_is_refused(authpipe: Authpipe, stand_in: StandIn, config: dict[str, Any], explained: str) -> None:
    server = stand_in.add("hostile", **config)
    refused = declare(authpipe, "acme-hostile", issuer=server.issuer)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_request" and explained in error["message"], error
    assert CANARY not in refused.text
    assert all(p["name"] != "acme-hostile" for p in authpipe.api.get("/v1/providers").json()["providers"])


def test_a_declared_issuer_makes_iss_required_before_the_exchange(authpipe: Authpipe, stand_in: StandIn) -> None:
    server = stand_in.add("silent", send_iss=False)
    assert declare(authpipe, "acme-silent", issuer=server.issuer, **explicit_endpoints(server)).status_code == 200
    _, callback = sign_in(authpipe, "acme-silent")
    outcome = result_of(callback.text)["message"]
    assert callback.status_code == 400 and outcome["ok"] is False and outcome["code"] == "issuer_missing", outcome
    assert server.token_requests == []

    # RFC 9207 leaves it to the client's configuration: a declaration can turn the rule off.
    assert declare(authpipe, "acme-silent", issuer=server.issuer, require_iss=False, **explicit_endpoints(server)).status_code == 200
    _, callback = sign_in(authpipe, "acme-silent")
    assert result_of(callback.text)["message"]["ok"] is True
    assert server.token_requests == ["basic"]


def test_iss_from_a_provider_without_a_declared_issuer_says_what_to_declare(
    authpipe: Authpipe, stand_in: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    server = stand_in.add("talkative")
    assert declare(authpipe, "acme-talkative", **explicit_endpoints(server)).status_code == 200
    with caplog.at_level(logging.WARNING, logger="authpipe_server.connect.flow"):
        _, callback = sign_in(authpipe, "acme-talkative")
    outcome = result_of(callback.text)["message"]
    assert callback.status_code == 400 and outcome["ok"] is False and outcome["code"] == "issuer_not_declared", outcome
    assert f'declare "issuer": "{server.issuer}" on this provider' in outcome["message"]
    assert server.token_requests == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "authpipe_server.connect.flow"]
    assert len(warnings) == 1 and f'declare "issuer": "{server.issuer}"' in warnings[0] and "acme-talkative" in warnings[0]


@pytest.mark.parametrize("discovered", [False, True])
def test_a_public_client_without_pkce_is_refused(authpipe: Authpipe, stand_in: StandIn, discovered: bool) -> None:
    server = stand_in.add("public")
    endpoints = {} if discovered else explicit_endpoints(server)
    body = {"issuer": server.issuer, "client_secret": None, "pkce": False} | endpoints | ({} if discovered else {"token_auth": "none"})
    refused = declare(authpipe, "acme-public", **body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_request" and "must use PKCE" in refused.json()["error"]["message"]
    # With PKCE the same public client is fine.
    assert declare(authpipe, "acme-public", **(body | {"pkce": True})).status_code == 200


def revoking_provider(server: Server, egress: Egress, token_auth: str, secret: str | None = SECRET) -> OAuth2Provider:
    entry = custom_entry(
        {"name": "acme", "token_auth": token_auth, "revocation_url": f"{server.issuer}/revoke"} | explicit_endpoints(server)
    )
    return OAuth2Provider(ProviderSpec.from_entry(entry, custom=True), AppCredentials(CLIENT, secret), egress)


@pytest.fixture
async def egress() -> AsyncIterator[Egress]:
    """Authpipe's way out, as the tests run it (loopback allowed), for calling a provider directly."""
    client = Egress(EgressPolicy.build("loopback"))
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    ("token_auth", "secret", "authorization", "form"),
    [
        ("client_secret_basic", SECRET, BASIC, {}),
        ("client_secret_post", SECRET, "", {"client_id": CLIENT, "client_secret": SECRET}),
        ("none", None, "", {"client_id": CLIENT}),
    ],
)
async def test_revocation_authenticates_like_the_token_endpoint(
    stand_in: StandIn, egress: Egress, token_auth: str, secret: str | None, authorization: str, form: dict[str, str]
) -> None:
    server = stand_in.add("revoking")
    await revoking_provider(server, egress, token_auth, secret).revoke(TokenSet(access_token="at-1", refresh_token="rt-1"))
    assert server.revocations == [{"authorization": authorization, "token": "rt-1", "token_type_hint": "refresh_token"} | form]


@pytest.mark.parametrize("status", [401, 400])
async def test_a_refused_revocation_is_a_failure(stand_in: StandIn, egress: Egress, status: int) -> None:
    server = stand_in.add("refusing", revocation_statuses=[status])
    with pytest.raises(ProviderFailure) as raised:
        await revoking_provider(server, egress, "client_secret_basic").revoke(TokenSet(access_token="at-1", refresh_token="rt-1"))
    assert raised.value.code == "revocation_failed"
    assert f"HTTP {status}" in raised.value.message
    assert SECRET not in raised.value.message and "rt-1" not in raised.value.message
    assert len(server.revocations) == 1


async def test_revocation_retries_a_503_and_takes_200_for_success(stand_in: StandIn, egress: Egress) -> None:
    server = stand_in.add("busy", revocation_statuses=[503])
    await revoking_provider(server, egress, "client_secret_basic").revoke(TokenSet(access_token="not-a-live-token"))
    assert [r["token_type_hint"] for r in server.revocations] == ["access_token", "access_token"]
