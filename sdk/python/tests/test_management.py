"""The management calls of `Authpipe`: each one HTTP call of the contract, with typed results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin

import httpx
import pytest
from support import Sandbox, make_client

from authpipe import AuthpipeError, ConnectionNotFound, Provider, ProviderScope


def test_connect_session_then_the_spotify_oauth_flow_then_a_credential(sandbox: Sandbox, user_id: str) -> None:
    ap, _ = make_client(sandbox)
    session = ap.create_connect_session("org_acme", user_id, allowed_providers=["spotify"], origin="https://app.example.com")
    assert session.token.startswith("ap_cs_")
    assert session.connect_url == f"{sandbox.url}/connect?session={session.token}"
    assert session.expires_at is not None and timedelta(minutes=29) < session.expires_at - datetime.now(UTC) <= timedelta(minutes=30)

    # What the browser does (one cookie jar: the flow is bound to the browser that started it):
    # start, consent at the (emulated) provider, come back to the callback.
    browser = httpx.Client()
    start = browser.get(f"{sandbox.url}/connect/spotify", params={"session": session.token})
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    consent = browser.post(authorize, data={"user": "sandbox_user", "decision": "approve"})
    assert consent.status_code in (302, 303), consent.text
    callback = browser.get(urljoin(authorize, consent.headers["location"]))
    assert callback.status_code == 200, callback.text

    cred = ap.get_credential(provider="spotify", tenant_id="org_acme", user_id=user_id)
    assert cred.provider == "spotify" and cred.credential and cred.scopes
    assert cred.expires_at is not None and cred.expires_at > datetime.now(UTC)
    connection = ap.get_connection(cred.connection_id)
    assert (connection.provider, connection.tenant_id, connection.user_id, connection.status) == ("spotify", "org_acme", user_id, "active")
    assert connection.account is not None and connection.account.id
    assert connection.created_at is not None and connection.last_error is None


def test_list_one_page_and_iterate_every_page(sandbox: Sandbox, user_id: str) -> None:
    tenant = f"t_{user_id}"
    ids = [sandbox.connect_bluesky(f"{user_id}_{i}", tenant_id=tenant)["id"] for i in range(5)]
    ap, transport = make_client(sandbox)

    page = ap.list_connections(tenant_id=tenant, limit=2)
    assert [c.id for c in page.connections] == sorted(ids, reverse=True)[:2]  # newest first
    assert page.next_cursor is not None
    assert [c.id for c in ap.iter_connections(tenant_id=tenant, limit=2)] == sorted(ids, reverse=True)
    assert transport.count == 1 + 3
    assert ap.list_connections(tenant_id=tenant, user_id=f"{user_id}_3").connections[0].id == ids[3]
    assert ap.list_connections(tenant_id=tenant, provider="spotify").connections == ()


def test_get_refresh_and_delete_a_connection(sandbox: Sandbox, user_id: str) -> None:
    made = sandbox.connect_bluesky(user_id)
    ap, transport = make_client(sandbox)
    ap.get_credential(provider="bluesky", tenant_id="org_acme", user_id=user_id)

    connection = ap.get_connection(made["id"])
    assert connection.id == made["id"] and connection.scopes == ("com.atproto.appPass",)
    assert connection.account is not None and connection.account.name == "sandbox.test"

    refreshed = ap.refresh_connection(made["id"])
    assert refreshed.last_refreshed_at is not None
    count = transport.count
    ap.get_credential(provider="bluesky", tenant_id="org_acme", user_id=user_id)
    assert transport.count == count + 1  # the refresh dropped the cached credential

    ap.delete_connection(made["id"])
    with pytest.raises(ConnectionNotFound):
        ap.get_connection(made["id"])
    with pytest.raises(ConnectionNotFound):  # nothing left in the cache either
        ap.get_credential(provider="bluesky", tenant_id="org_acme", user_id=user_id)


def test_create_connection_with_an_app_password(sandbox: Sandbox, user_id: str) -> None:
    ap, _ = make_client(sandbox)
    connection = ap.create_connection("bluesky", "org_acme", user_id, identifier="sandbox.test", app_password="sand-boxa-ppps-swrd")
    assert (connection.provider, connection.user_id, connection.status) == ("bluesky", user_id, "active")
    with pytest.raises(AuthpipeError) as caught:
        ap.create_connection("bluesky", "org_acme", user_id, identifier="sandbox.test", app_password="wrong-pass-word-xxxx")
    assert (caught.value.status, caught.value.code) == (400, "provider_rejected_credentials")


def test_providers(sandbox: Sandbox) -> None:
    ap, _ = make_client(sandbox)
    providers = {p.name: p for p in ap.list_providers()}
    assert isinstance(providers["bluesky"], Provider)
    assert providers["bluesky"].auth_mode == "app_password" and providers["bluesky"].configured
    assert all(isinstance(s, ProviderScope) and s.name for s in providers["spotify"].scopes)

    name = f"acme-{uuid.uuid4().hex[:8]}"
    custom = ap.configure_provider(
        name,
        auth_mode="oauth2",
        display_name="Acme CRM",
        # A loopback host: the server checks (and resolves) every URL it will call.
        authorization_url="https://127.0.0.1:9443/oauth/authorize",
        token_url="https://127.0.0.1:9443/oauth/token",
        client_id="acme-client",
        client_secret="acme-secret",
        scopes=["read"],
    )
    assert (custom.name, custom.display_name, custom.auth_mode, custom.configured) == (name, "Acme CRM", "oauth2", True)
    assert "acme-secret" not in repr(custom)
    assert name in {p.name for p in ap.list_providers()}

    with pytest.raises(AuthpipeError) as caught:
        ap.configure_provider("not-in-the-catalog", client_id="x")
    assert type(caught.value) is AuthpipeError
    assert (caught.value.status, caught.value.code) == (404, "provider_not_found")


def test_check_connection(sandbox: Sandbox, user_id: str) -> None:
    if not sandbox.has_route("post", "/v1/connections/{connection_id}/check"):
        pytest.skip("the server does not implement POST /v1/connections/{id}/check yet")
    made = sandbox.connect_bluesky(user_id)
    ap, _ = make_client(sandbox)
    checked = ap.check_connection(made["id"])
    assert checked.id == made["id"] and checked.status == "active" and checked.last_checked_at is not None


def test_set_webhook(sandbox: Sandbox) -> None:
    if not sandbox.has_route("put", "/v1/webhook"):
        pytest.skip("the server does not implement PUT /v1/webhook yet")
    ap, _ = make_client(sandbox)
    hook = ap.set_webhook("https://127.0.0.1:8443/hooks/authpipe")  # checked against the egress policy: loopback in `dev`
    assert hook.url == "https://127.0.0.1:8443/hooks/authpipe"
    assert hook.secret.startswith("whsec_") and hook.secret not in repr(hook)


def test_list_events(sandbox: Sandbox, user_id: str) -> None:
    if not sandbox.has_route("get", "/v1/events"):
        pytest.skip("the server does not implement GET /v1/events yet")
    made = sandbox.connect_bluesky(user_id)
    ap, _ = make_client(sandbox)
    page = ap.list_events(connection_id=made["id"])
    created = [e for e in page.events if e.type == "connection.created"]
    assert created and created[0].created_at is not None and created[0].connection_id == made["id"]
    assert created[0].data["connection"]["id"] == made["id"]
