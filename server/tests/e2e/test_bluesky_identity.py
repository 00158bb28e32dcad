"""Bluesky identity over real HTTP (issue 10, items 1 and 5): who may name the PDS Authpipe sends an
app password and bearer tokens to, and which name a connection may show.

did:web documents are served over TLS by a stand-in on loopback with a certificate from a test CA
(trustme) that Authpipe is made to trust (SSL_CERT_FILE, read when its runtime opens); the
stand-in also plays hostile PDSes and counts every request it gets. The Bluesky emulator is the
entryway (resolveHandle) and, for honest accounts, the PDS.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from authpipe_server.config import load_settings
from authpipe_server.connections.secrets import seal, unseal
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import Connection
from tests.conftest import new_master_key
from tests.e2e.conftest import Authpipe, FormParser, control, emulator, result_of

APP_PASSWORD = "alic-eapp-pass-word"
WHO = {"tenant_id": "org_acme", "user_id": "user_123"}
WELL_KNOWN = "/.well-known/did.json"


class Standin:
    """A tiny HTTPS server on 127.0.0.1 (certificate for `localhost` from the test CA): JSON
    answers by method and exact request target, 404 for anything else, every request recorded."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.seen: list[str] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                standin.answer(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://localhost:{self.port}"
        self.did = f"did:web:localhost%3A{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        request.rfile.read(int(request.headers.get("content-length") or 0))
        key = f"{request.command} {request.path}"
        self.seen.append(key)
        status, body = self.answers.get(key, (404, {"error": "NotFound", "message": "no such thing here"}))
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def serve(self, target: str, body: Any, status: int = 200) -> None:
        self.answers[target] = (status, body)

    def document(self, did: str, pds: str, handle: str | None = None, path: str = WELL_KNOWN, **fields: Any) -> None:
        """Serve a realistic atproto DID document for `did` at `path`."""
        self.serve(
            f"GET {path}",
            {
                "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
                "id": did,
                "alsoKnownAs": [f"at://{handle}"] if handle else [],
                "verificationMethod": [
                    {"id": f"{did}#atproto", "type": "Multikey", "controller": did, "publicKeyMultibase": "zQ3shXjHeiBuRCKmM"}
                ],
                "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
            }
            | fields,
        )

    def xrpc(self, method: str, nsid: str, body: Any, status: int = 200) -> None:
        self.serve(f"{method} /xrpc/{nsid}", body, status)

    def calls(self) -> list[str]:
        """What it was asked, DID documents left out."""
        return [seen for seen in self.seen if not seen.endswith("did.json")]

    def __enter__(self) -> "Standin":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Ca:
    ca_file: Path
    server_context: ssl.SSLContext


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> Ca:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return Ca(ca_file, context)


@pytest.fixture(scope="module")
def _standins(test_ca: Ca) -> Iterator[tuple[Standin, Standin]]:
    with Standin(test_ca.server_context) as first, Standin(test_ca.server_context) as second:
        yield first, second


@pytest.fixture
def standin(_standins: tuple[Standin, Standin]) -> Standin:
    """Serves the DID documents; plays the PDS where a test says so."""
    _standins[0].answers.clear()
    _standins[0].seen.clear()
    return _standins[0]


@pytest.fixture
def elsewhere(_standins: tuple[Standin, Standin]) -> Standin:
    """Another server, which no call may reach."""
    _standins[1].answers.clear()
    _standins[1].seen.clear()
    return _standins[1]


@pytest.fixture
def authpipe_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, test_ca: Ca) -> dict[str, str]:
    """The shared server fixture's settings, trusting the test CA (set before the server starts)
    and with a master key the test knows; `AUTHPIPE_EGRESS` by indirect parametrisation."""
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_file))
    return {"AUTHPIPE_WORKERS": "off", "AUTHPIPE_MASTER_KEY": new_master_key(), "AUTHPIPE_EGRESS": getattr(request, "param", "loopback")}


def add_account(authpipe: Authpipe, handle: str, did: str) -> None:
    """An account on the emulator (the entryway resolves its handle; it is an honest PDS)."""
    control(authpipe, "bluesky", "users", handle=handle, did=did, app_passwords=[{"name": "authpipe", "password": APP_PASSWORD}])


def submit(authpipe: Authpipe, identifier: str, app_password: str = APP_PASSWORD) -> httpx.Response:
    """Open the connect page as a browser and send the app-password form."""
    created = authpipe.session()
    with httpx.Client(timeout=30) as browser:
        page = browser.get(f"{authpipe.url}/connect/bluesky", params={"session": created["token"]})
        assert page.status_code == 200, page.text
        form = FormParser()
        form.feed(page.text)
        return browser.post(f"{authpipe.url}/connect/bluesky", data=form.fields | {"identifier": identifier, "app_password": app_password})


def connected(authpipe: Authpipe, response: httpx.Response) -> dict[str, Any]:
    outcome = result_of(response.text)
    assert outcome["message"]["ok"] is True, outcome
    return dict(authpipe.api.get(f"/v1/connections/{outcome['message']['connection']['id']}").json())


def assert_form_error(response: httpx.Response, identifier: str, *words: str) -> None:
    assert response.status_code == 400, response.text
    assert 'role="alert"' in response.text and f'value="{identifier}"' in response.text
    assert APP_PASSWORD not in response.text
    for word in words:
        assert word in response.text


def no_connections(authpipe: Authpipe) -> bool:
    return authpipe.api.get("/v1/connections").json()["connections"] == []


def play_pds(standin: Standin, did: str, *, session_did: str | None = None, did_doc: Any = None, refresh_did: str | None = None) -> None:
    """The stand-in as the account's PDS (a bare origin, so allowed): createSession,
    refreshSession, getSession and deleteSession answers."""
    standin.document(did, standin.url)
    session = {"accessJwt": "access-1", "refreshJwt": "refresh-1", "handle": "bsky.app", "did": session_did or did, "active": True}
    if did_doc is not None:
        session["didDoc"] = did_doc
    standin.xrpc("POST", "com.atproto.server.createSession", session)
    standin.xrpc("POST", "com.atproto.server.refreshSession", session | {"accessJwt": "access-2", "refreshJwt": "refresh-2", "did": refresh_did or did})
    standin.xrpc("GET", "com.atproto.server.getSession", {"handle": "bsky.app", "did": did})
    standin.xrpc("POST", "com.atproto.server.deleteSession", {})


# -- item 1: the PDS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "{url}/evil",  # a path: /evil/xrpc/...
        "{url}?",  # `?`: /xrpc/... becomes a query string
        "{url}/#x",  # a fragment
        "https://user:secret@localhost:{port}",  # userinfo
        "http://192.0.2.10:{port}",  # plain http off loopback
        "https://169.254.169.254",  # cloud metadata
        "ftp://localhost:{port}",
    ],
)
def test_a_hostile_pds_endpoint_is_a_form_error_and_gets_no_request(authpipe: Authpipe, standin: Standin, endpoint: str) -> None:
    authpipe.configure("bluesky")
    standin.document(standin.did, endpoint.format(url=standin.url, port=standin.port))
    refused = submit(authpipe, standin.did)
    assert standin.seen == [f"GET {WELL_KNOWN}"]  # the document, and nothing else
    assert_form_error(refused, standin.did, "personal data server")
    assert "secret" not in refused.text
    assert no_connections(authpipe)


def test_a_did_document_about_another_did_is_refused(authpipe: Authpipe, standin: Standin) -> None:
    authpipe.configure("bluesky")
    add_account(authpipe, "alice.test", standin.did)
    standin.document("did:web:elsewhere.test", emulator(authpipe, "bluesky"), "alice.test")
    assert_form_error(submit(authpipe, standin.did), standin.did, "about another DID")
    assert control(authpipe, "bluesky", "counts", "GET")["token"] == 0  # no createSession anywhere
    assert no_connections(authpipe)


def test_a_session_for_another_account_is_refused(authpipe: Authpipe, standin: Standin) -> None:
    """A PDS answering createSession for someone else (here the sandbox account) saves nothing."""
    authpipe.configure("bluesky")
    play_pds(standin, standin.did, session_did="did:plc:sandboxuseraaaaaaaaaaaaa")
    assert_form_error(submit(authpipe, standin.did), standin.did, "signed in another account")
    assert no_connections(authpipe)


def test_a_session_did_doc_cannot_move_later_calls(authpipe: Authpipe, standin: Standin, elsewhere: Standin) -> None:
    """The createSession answer's didDoc names another PDS: refresh, check and delete still go
    to the PDS resolved from the DID document, and the other server hears nothing."""
    authpipe.configure("bluesky")
    moved = {"id": standin.did, "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": elsewhere.url}]}
    play_pds(standin, standin.did, did_doc=moved)
    created = authpipe.api.post("/v1/connections", json={"provider": "bluesky", **WHO, "identifier": standin.did, "app_password": APP_PASSWORD})
    assert created.status_code == 201, created.text
    conn = created.json()
    assert authpipe.api.post(f"/v1/connections/{conn['id']}/refresh").status_code == 200
    assert authpipe.api.post(f"/v1/connections/{conn['id']}/check").json()["status"] == "active"
    assert authpipe.api.delete(f"/v1/connections/{conn['id']}").status_code == 204
    assert elsewhere.seen == []
    assert standin.calls() == [
        "POST /xrpc/com.atproto.server.createSession",
        "POST /xrpc/com.atproto.server.refreshSession",  # the forced refresh
        "POST /xrpc/com.atproto.server.refreshSession",  # a Bluesky check refreshes first...
        "GET /xrpc/com.atproto.server.getSession",  # ...then asks who this is
        "POST /xrpc/com.atproto.server.deleteSession",
    ]


def test_a_refresh_for_another_account_is_not_stored(authpipe: Authpipe, standin: Standin) -> None:
    authpipe.configure("bluesky")
    play_pds(standin, standin.did, refresh_did="did:plc:sandboxuseraaaaaaaaaaaaa")
    conn = authpipe.api.post("/v1/connections", json={"provider": "bluesky", **WHO, "identifier": standin.did, "app_password": APP_PASSWORD}).json()
    refreshed = authpipe.api.post(f"/v1/connections/{conn['id']}/refresh")
    assert refreshed.status_code == 502 and "another account" in refreshed.json()["error"]["message"]
    credential = authpipe.api.get("/v1/credentials", params={"provider": "bluesky", **WHO}).json()
    assert credential["credential"] == "access-1"  # the refused answer's tokens were not kept


@pytest.mark.parametrize("stored_pds", ["{url}/evil", "{url}?", "https://169.254.169.254"])
def test_a_stored_connection_naming_a_bad_pds_is_never_called(
    authpipe: Authpipe, authpipe_env: dict[str, str], sqlite_url: str, standin: Standin, stored_pds: str
) -> None:
    """A connection saved before these checks (its sealed PDS unchecked): refresh, check and
    delete call nothing, and say why."""
    authpipe.configure("bluesky")
    play_pds(standin, standin.did)
    conn = authpipe.api.post("/v1/connections", json={"provider": "bluesky", **WHO, "identifier": standin.did, "app_password": APP_PASSWORD}).json()
    env = {"AUTHPIPE_DATABASE_URL": sqlite_url, **authpipe_env}
    asyncio.run(move_pds(env, conn["id"], stored_pds.format(url=standin.url)))
    standin.seen.clear()

    refreshed = authpipe.api.post(f"/v1/connections/{conn['id']}/refresh")
    assert refreshed.status_code == 502 and "personal data server" in refreshed.json()["error"]["message"]
    checked = authpipe.api.post(f"/v1/connections/{conn['id']}/check").json()
    assert checked["status"] != "revoked" and checked["last_error"]["code"] == "address_not_allowed"
    assert authpipe.api.delete(f"/v1/connections/{conn['id']}").status_code == 204
    assert standin.seen == []


async def move_pds(env: dict[str, str], connection_id: str, pds: str) -> None:
    """Rewrite a connection's sealed PDS, as old code could have stored it."""
    runtime = await Runtime.open(load_settings(env))
    try:
        async with runtime.db.writing() as session:
            row = await session.get(Connection, connection_id)
            assert row is not None
            tokens = await unseal(runtime.vault, row)
            await seal(runtime.vault, row, replace(tokens, extra=tokens.extra | {"pds": pds}))
    finally:
        await runtime.close()


@pytest.mark.parametrize("authpipe_env", ["public"], indirect=True)
def test_public_egress_refuses_a_loopback_did_web_before_any_request(authpipe: Authpipe, standin: Standin) -> None:
    """Under AUTHPIPE_EGRESS=public (Bluesky as every project has it, at bsky.social)."""
    standin.document(standin.did, standin.url)
    assert_form_error(submit(authpipe, standin.did), standin.did, "not at an address this server can call")
    assert standin.seen == []


# -- item 5: the name -----------------------------------------------------------------------------


@pytest.mark.parametrize("path_based", [False, True], ids=["did:web:host", "did:web:host:path"])
def test_a_handle_verified_both_ways_is_the_name(authpipe: Authpipe, standin: Standin, path_based: bool) -> None:
    authpipe.configure("bluesky")
    did, path = (f"{standin.did}:users:alice", "/users/alice/did.json") if path_based else (standin.did, WELL_KNOWN)
    add_account(authpipe, "alice.test", did)
    standin.document(did, emulator(authpipe, "bluesky"), "alice.test", path=path)
    for typed in ("alice.test", did):
        conn = connected(authpipe, submit(authpipe, typed))
        assert conn["account"] == {"id": did, "name": "alice.test"}
    assert standin.seen == [f"GET {path}"] * 2


@pytest.mark.parametrize(
    "typed, aliases",
    [
        ("alice.test", []),  # the document names no handle
        ("alice.test", ["at://other.test", "at://alice.test"]),  # only the first at:// alias counts
        ("did", ["at://sandbox.test"]),  # claims a handle that belongs to another DID
    ],
)
def test_a_handle_that_does_not_verify_is_handle_invalid(authpipe: Authpipe, standin: Standin, typed: str, aliases: list[str]) -> None:
    """The PDS says `alice.test` in its session answers; Authpipe shows `handle.invalid`."""
    authpipe.configure("bluesky")
    add_account(authpipe, "alice.test", standin.did)
    standin.document(standin.did, emulator(authpipe, "bluesky"), alsoKnownAs=aliases)
    conn = connected(authpipe, submit(authpipe, standin.did if typed == "did" else typed))
    assert conn["account"] == {"id": standin.did, "name": "handle.invalid"}
    checked = authpipe.api.post(f"/v1/connections/{conn['id']}/check").json()  # a check keeps it so
    assert checked["status"] == "active" and checked["account"] == {"id": standin.did, "name": "handle.invalid"}
