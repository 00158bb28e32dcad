"""The dashboard's configuration pages (providers, webhook, keys), on SQLite and PostgreSQL.

First the services they share with the API (the webhook URL check, the test event, redelivery,
revoking a project's key, saving a custom provider without its secret), then the pages over HTTP:
forms, CSRF refusals, project isolation (by URL too), secrets never rendered back."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from authpipe_server import projects
from authpipe_server.api.app import create_app
from authpipe_server.api.errors import ApiError
from authpipe_server.api.providers import ProviderBody, configure_provider
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import AuditEntry, Event, Project, ProviderApp, SecretKey, WebhookDelivery
from authpipe_server.webhooks.deliveries import DeliveryRefused, delivery_log, redeliver, send_test_event
from authpipe_server.webhooks.endpoints import InvalidWebhookUrl, get_endpoint, set_endpoint_url
from tests.test_dashboard_auth import CSRF, add_operator, client_of, sign_in
from tests.test_webhooks_delivery import Receiver, attempts, deliveries, fast, new_connection, until

CLIENT_SECRET = "custom-client-secret-value-9f2c"


async def other_project(runtime: Runtime) -> str:
    async with runtime.db.writing() as session:
        return (await projects.create_project(session, f"other-{uuid.uuid4().hex[:8]}")).id


async def failed(runtime: Runtime) -> bool:
    return [d.status for d in await deliveries(runtime)] == ["failed"]


# -- services ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/hook", "https://"),
        ("http://user:pw@127.0.0.1/hook", "user:password@"),
        ("http://127.0.0.1/hook#x", "#fragment"),
        ("https://10.1.2.3/hook", "10.1.2.3"),  # the egress policy (loopback mode) refuses private addresses
    ],
)
async def test_webhook_url_is_checked_before_it_is_set(runtime: Runtime, project: tuple[str, str], url: str, why: str) -> None:
    with pytest.raises(InvalidWebhookUrl) as refused:
        await set_endpoint_url(runtime, project[0], url)
    assert why in str(refused.value)
    endpoint, secret = await set_endpoint_url(runtime, project[0], "http://127.0.0.1:9/hook")
    assert endpoint.url == "http://127.0.0.1:9/hook" and secret.startswith("whsec_")


async def test_test_event_goes_through_the_outbox_signed(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id = project[0]
    with pytest.raises(DeliveryRefused) as refused:
        await send_test_event(runtime, project_id)
    assert refused.value.code == "no_endpoint"
    with Receiver().serve() as receiver:
        _, secret = await set_endpoint_url(runtime, project_id, receiver.url)
        delivery = await send_test_event(runtime, project_id)
        assert delivery.status == "pending" and delivery.connection_id is None
        await fast(runtime).run_once()
        receiver.wait(lambda r: len(r.delivered()) == 1)
    received = receiver.delivered()[0]
    body = Receiver.verify(secret, received)
    assert received.id == delivery.id
    assert body["type"] == "webhook.test"
    assert body["data"]["project"]["id"] == project_id and "message" in body["data"]
    log = await delivery_log(runtime, project_id)
    [logged] = log.deliveries
    assert logged.event_type == "webhook.test" and logged.delivery.status == "delivered" and log.older is None
    [attempt] = logged.attempts
    assert attempt.status_code == 204 and attempt.latency_ms >= 0


async def test_redeliver_sends_the_same_message_again(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id = project[0]
    with Receiver(status=500).serve() as receiver:
        _, secret = await set_endpoint_url(runtime, project_id, receiver.url)
        connection = await new_connection(runtime, project_id, "user_redeliver")
        worker = fast(runtime, schedule=(0.01,))  # one retry, then failed
        await until(lambda: failed(runtime), worker)
        [delivery] = await deliveries(runtime)
        with pytest.raises(DeliveryRefused) as refused:
            await redeliver(runtime, await other_project(runtime), delivery.id)  # not that project's
        assert refused.value.code == "delivery_not_found"

        receiver.status = 204
        again = await redeliver(runtime, project_id, delivery.id)
        assert again.id == delivery.id and again.status == "pending"
        with pytest.raises(DeliveryRefused) as refused:
            await redeliver(runtime, project_id, delivery.id)
        assert refused.value.code == "already_pending"
        await worker.run_once()
        receiver.wait(lambda r: len(r.delivered()) == 1)
    sent = receiver.snapshot()
    assert len({r.id for r in sent}) == 1 and sent[-1].id == delivery.id  # the same webhook-id every time
    body = Receiver.verify(secret, sent[-1])
    assert body["type"] == "connection.created" and body["data"]["connection"]["id"] == connection.id
    tries = await attempts(runtime, delivery.id)
    assert [a.status_code for a in tries] == [500, 500, 204]
    [logged] = (await delivery_log(runtime, project_id)).deliveries
    assert logged.delivery.status == "delivered" and logged.redeliverable and len(logged.attempts) == 3


async def test_redeliver_refuses_a_delivery_whose_event_is_gone(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id = project[0]
    with Receiver().serve() as receiver:
        await set_endpoint_url(runtime, project_id, receiver.url)
        delivery = await send_test_event(runtime, project_id)
        await fast(runtime).run_once()
        receiver.wait(lambda r: len(r.delivered()) == 1)
    async with runtime.db.writing() as session:
        event = await session.get(Event, delivery.event_id)
        assert event is not None
        await session.delete(event)  # as retention does, past AUTHPIPE_RETENTION_EVENTS_DAYS
    [logged] = (await delivery_log(runtime, project_id)).deliveries
    assert logged.event_type is None and not logged.redeliverable
    with pytest.raises(DeliveryRefused) as refused:
        await redeliver(runtime, project_id, delivery.id)
    assert refused.value.code == "event_gone"


async def test_delivery_log_pages_newest_first(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id = project[0]
    await set_endpoint_url(runtime, project_id, "http://127.0.0.1:9/hook")
    sent = [(await send_test_event(runtime, project_id)).id for _ in range(5)]
    first = await delivery_log(runtime, project_id, limit=3)
    assert [d.delivery.id for d in first.deliveries] == sent[::-1][:3] and first.older == sent[2]
    second = await delivery_log(runtime, project_id, before=first.older, limit=3)
    assert [d.delivery.id for d in second.deliveries] == sent[1::-1] and second.older is None
    assert (await delivery_log(runtime, await other_project(runtime))).deliveries == []


async def test_revoking_a_key_is_limited_to_its_project(runtime: Runtime, project: tuple[str, str]) -> None:
    project_id = project[0]
    async with runtime.db.writing() as session:
        other = await projects.create_project(session, f"other-{uuid.uuid4().hex[:8]}")
        theirs = await projects.create_key(session, other)
    async with runtime.db.writing() as session:
        with pytest.raises(projects.NotFound):
            await projects.revoke_project_key(session, project_id, theirs.id)
    async with runtime.db.writing() as session:
        revoked = await projects.revoke_project_key(session, other.id, theirs.id)
        first = revoked.revoked_at
    async with runtime.db.writing() as session:  # again: nothing changes
        assert (await projects.revoke_project_key(session, other.id, theirs.id)).revoked_at == first
    async with runtime.db.sessions() as session:
        assert await projects.project_for_key(session, theirs.secret) is None
        assert await projects.project_for_key(session, project[1]) == project_id


async def test_a_custom_provider_saved_again_without_its_secret_keeps_it(runtime: Runtime, project: tuple[str, str]) -> None:
    declaration: dict[str, Any] = {
        "auth_mode": "oauth2",
        "client_id": "client-1",
        "authorization_url": "https://auth.example.com/authorize",
        "token_url": "http://127.0.0.1:9/token",
        "scopes": ["read"],
    }
    with pytest.raises(ApiError) as refused:  # the first declaration needs its secret
        await configure_provider(runtime, project[0], "acme-crm", ProviderBody(**declaration))
    assert "client_secret" in refused.value.message
    await configure_provider(runtime, project[0], "acme-crm", ProviderBody(**declaration, client_secret=CLIENT_SECRET))
    async with runtime.db.sessions() as session:
        sealed = await session.scalar(select(ProviderApp.client_secret).where(ProviderApp.provider == "acme-crm"))
    app = await configure_provider(runtime, project[0], "acme-crm", ProviderBody(**(declaration | {"scopes": ["read", "write"]})))
    assert app.client_secret == sealed and app.definition is not None
    assert [s["name"] for s in app.definition["scopes"]] == ["read", "write"]
    assert CLIENT_SECRET not in json.dumps(app.definition)


# -- the pages over HTTP -----------------------------------------------------------------------


@pytest.fixture
async def signed_in(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as an operator of every project."""
    await add_operator(runtime, "ops@example.com")
    async with client_of(create_app(runtime, auth_cache_ttl=0.0001)) as client:
        assert (await sign_in(client, "ops@example.com")).status_code == 303
        yield client


async def csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


async def actions(runtime: Runtime) -> list[tuple[str, str | None, str | None]]:
    async with runtime.db.sessions() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action.not_like("sign%")).order_by(AuditEntry.id))
        return [(row.action, row.target, row.project_id) for row in rows]


async def stored_app(runtime: Runtime, project_id: str, name: str) -> ProviderApp | None:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(ProviderApp).where(ProviderApp.project_id == project_id, ProviderApp.provider == name))


async def test_providers_page_lists_the_catalog_and_the_redirect_uri(runtime: Runtime, signed_in: httpx.AsyncClient, project: tuple[str, str]) -> None:
    page = await signed_in.get(f"/dashboard/projects/{project[0]}/providers")
    assert page.status_code == 200
    for name in ("Bluesky", "Buffer", "Facebook", "Instagram", "Spotify"):
        assert name in page.text
    assert f"<code id=\"redirect-uri\">{runtime.settings.redirect_uri}</code>" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


async def test_a_catalog_provider_saved_through_its_form(runtime: Runtime, signed_in: httpx.AsyncClient, project: tuple[str, str]) -> None:
    project_id = project[0]
    url = f"/dashboard/projects/{project_id}/providers/spotify"
    form = await signed_in.get(url)
    assert "user-library-read" in form.text and "Read your saved tracks, albums and shows" in form.text  # scope + description
    assert "set — leave empty to keep" not in form.text
    data = {
        "csrf_token": CSRF.search(form.text).group(1),  # type: ignore[union-attr]
        "client_id": "spotify-client",
        "client_secret": CLIENT_SECRET,
        "scopes": ["user-read-email", "user-library-read"],
        "override_api_base_url": "http://127.0.0.1:9/api",
    }
    saved = await signed_in.post(url, data=data)
    assert saved.status_code == 303 and saved.headers["location"] == f"{url}?notice=saved"
    app = await stored_app(runtime, project_id, "spotify")
    assert app is not None and app.client_id == "spotify-client" and app.client_secret is not None
    assert app.scopes == ["user-read-email", "user-library-read"] and app.overrides == {"api_base_url": "http://127.0.0.1:9/api"}

    shown = await signed_in.get(f"{url}?notice=saved")
    assert "Provider saved." in shown.text and CLIENT_SECRET not in shown.text
    assert 'placeholder="set — leave empty to keep"' in shown.text
    assert re.search(r'value="user-library-read" checked', shown.text) and not re.search(r'value="streaming" checked', shown.text)

    # Saved again with the secret left empty and a scope less: the secret stays.
    again = await signed_in.post(url, data=data | {"client_secret": "", "scopes": ["user-read-email"]})
    assert again.status_code == 303
    kept = await stored_app(runtime, project_id, "spotify")
    assert kept is not None and kept.client_secret == app.client_secret and kept.scopes == ["user-read-email"]
    assert await actions(runtime) == [("provider.saved", "spotify", project_id)] * 2


async def test_a_refused_provider_form_keeps_what_was_typed_but_never_the_secret(runtime: Runtime, signed_in: httpx.AsyncClient, project: tuple[str, str]) -> None:
    url = f"/dashboard/projects/{project[0]}/providers/spotify"
    data = {
        "csrf_token": await csrf_of(signed_in, url),
        "client_id": "typed-client-id",
        "client_secret": CLIENT_SECRET,
        "scopes": ["streaming"],
        "override_token_url": "https://10.9.8.7/api/token",  # the egress policy refuses a private address
    }
    refused = await signed_in.post(url, data=data)
    assert refused.status_code == 400
    assert "overrides.token_url is refused" in refused.text
    assert 'value="typed-client-id"' in refused.text and 'value="https://10.9.8.7/api/token"' in refused.text
    assert re.search(r'value="streaming" checked', refused.text)
    assert CLIENT_SECRET not in refused.text
    assert await stored_app(runtime, project[0], "spotify") is None and await actions(runtime) == []

    no_client = await signed_in.post(url, data=data | {"client_id": "", "override_token_url": ""})
    assert no_client.status_code == 400 and "client_id is required" in no_client.text


async def test_a_custom_provider_declared_and_edited_through_the_form(runtime: Runtime, signed_in: httpx.AsyncClient, project: tuple[str, str]) -> None:
    project_id = project[0]
    new = f"/dashboard/projects/{project_id}/custom-providers"
    token = await csrf_of(signed_in, f"{new}/new")
    declaration = {
        "csrf_token": token,
        "name": "acme-crm",
        "display_name": "Acme CRM",
        "client_id": "acme-client",
        "client_secret": CLIENT_SECRET,
        "scopes": "contacts.read contacts.write",
        "authorization_url": "https://auth.acme.example/authorize",
        "token_url": "http://127.0.0.1:9/token",
        "userinfo_url": "http://127.0.0.1:9/userinfo",
        "token_auth": "client_secret_post",
        "require_iss": "",
        "pkce": "on",
        "scope_separator": " ",
        "account_id_field": "id",
    }
    for name, why in [("spotify", "spotify is a catalog provider"), ("Bad_Name", "name: use 2–64 lowercase")]:
        refused = await signed_in.post(new, data=declaration | {"name": name})
        assert refused.status_code == 400 and why in refused.text and CLIENT_SECRET not in refused.text
    bad_url = await signed_in.post(new, data=declaration | {"authorization_url": "javascript:alert(1)"})
    assert bad_url.status_code == 400 and "authorization_url" in bad_url.text and 'value="Acme CRM"' in bad_url.text

    created = await signed_in.post(new, data=declaration)
    assert created.status_code == 303 and created.headers["location"] == f"/dashboard/projects/{project_id}/providers/acme-crm?notice=saved"
    app = await stored_app(runtime, project_id, "acme-crm")
    assert app is not None and app.definition is not None
    assert app.definition["token_auth"] == "client_secret_post" and app.definition["account"]["id"] == ["id"]
    again = await signed_in.post(new, data=declaration)  # the name is taken now
    assert again.status_code == 400 and "already exists" in again.text

    edit = await signed_in.get(f"/dashboard/projects/{project_id}/providers/acme-crm")
    assert edit.status_code == 200 and CLIENT_SECRET not in edit.text
    assert 'value="contacts.read contacts.write"' in edit.text and 'value="http://127.0.0.1:9/userinfo"' in edit.text
    assert 'placeholder="set — leave empty to keep"' in edit.text and '<option value="client_secret_post" selected>' in edit.text
    listed = await signed_in.get(f"/dashboard/projects/{project_id}/providers")
    assert "Acme CRM" in listed.text and "/static/providers/generic.svg" in listed.text

    edited = {k: v for k, v in declaration.items() if k != "name"} | {"client_secret": "", "scopes": "contacts.read"}
    saved = await signed_in.post(f"/dashboard/projects/{project_id}/providers/acme-crm", data=edited)
    assert saved.status_code == 303
    kept = await stored_app(runtime, project_id, "acme-crm")
    assert kept is not None and kept.client_secret == app.client_secret
    assert kept.definition is not None and [s["name"] for s in kept.definition["scopes"]] == ["contacts.read"]
    assert (await signed_in.get(f"/dashboard/projects/{project_id}/providers/no-such-provider")).status_code == 404


async def test_webhook_url_secret_test_event_and_redelivery(runtime: Runtime, signed_in: httpx.AsyncClient, project: tuple[str, str]) -> None:
    project_id = project[0]
    base = f"/dashboard/projects/{project_id}/webhook"
    token = await csrf_of(signed_in, base)
    assert "No deliveries yet." in (await signed_in.get(base)).text
    no_endpoint = await signed_in.post(f"{base}/test", data={"csrf_token": token})
    assert no_endpoint.headers["location"] == f"{base}?error=no_endpoint"
    assert "set its URL first" in (await signed_in.get(no_endpoint.headers["location"])).text

    refused = await signed_in.post(f"{base}/url", data={"csrf_token": token, "url": "https://10.9.8.7/hook"})
    assert refused.status_code == 400 and "Not saved:" in refused.text and 'value="https://10.9.8.7/hook"' in refused.text

    with Receiver().serve() as receiver:
        set_url = await signed_in.post(f"{base}/url", data={"csrf_token": token, "url": receiver.url})
        assert set_url.status_code == 200 and set_url.headers["cache-control"] == "no-store"
        first = re.search(r'<code id="new-secret">(whsec_[^<]+)</code>', set_url.text)
        assert first is not None
        page = await signed_in.get(base)
        assert first.group(1) not in page.text and receiver.url in page.text  # shown once, never again

        rotated = await signed_in.post(f"{base}/rotate", data={"csrf_token": token})
        second = re.search(r'<code id="new-secret">(whsec_[^<]+)</code>', rotated.text)
        assert rotated.headers["cache-control"] == "no-store" and second is not None and second.group(1) != first.group(1)
        assert first.group(1) not in rotated.text

        sent = await signed_in.post(f"{base}/test", data={"csrf_token": token})
        assert sent.headers["location"] == f"{base}?notice=test_sent"
        await fast(runtime).run_once()
        receiver.wait(lambda r: len(r.delivered()) == 1)
        body = Receiver.verify(second.group(1), receiver.delivered()[0])
        assert body["type"] == "webhook.test" and body["data"]["project"]["id"] == project_id

        log = await signed_in.get(base)
        [delivery] = await deliveries(runtime)
        assert f'id="delivery-{delivery.id}"' in log.text and "HTTP 204" in log.text and "webhook.test" in log.text
        redelivered = await signed_in.post(f"{base}/deliveries/{delivery.id}/redeliver", data={"csrf_token": token})
        assert redelivered.headers["location"] == f"{base}?notice=redelivered"
        pending = await signed_in.post(f"{base}/deliveries/{delivery.id}/redeliver", data={"csrf_token": token})
        assert pending.headers["location"] == f"{base}?error=already_pending"
        await fast(runtime).run_once()
        receiver.wait(lambda r: len(r.delivered()) == 2)
    assert {r.id for r in receiver.delivered()} == {delivery.id}
    assert "2 attempts" in (await signed_in.get(base)).text
    assert [a[0] for a in await actions(runtime)] == [
        "webhook.url_set", "webhook.secret_rotated", "webhook.test_sent", "delivery.redelivered",
    ]
    assert (await actions(runtime))[0][1] == "127.0.0.1"  # the receiver's host: a URL may carry a token


async def test_keys_created_once_and_revoked_after_confirmation(runtime: Runtime, signed_in: httpx.AsyncClient, project: tuple[str, str]) -> None:
    project_id = project[0]
    base = f"/dashboard/projects/{project_id}/keys"
    listing = await signed_in.get(base)
    assert project_id in listing.text and "later release" in listing.text  # the project, read-only
    token = CSRF.search(listing.text).group(1)  # type: ignore[union-attr]
    created = await signed_in.post(base, data={"csrf_token": token})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    found = re.search(r'<code id="new-key">(ap_sk_[^<]+)</code>', created.text)
    assert found is not None
    secret = found.group(1)
    assert secret not in (await signed_in.get(base)).text and secret[: projects.SHOWN_PREFIX_LENGTH] in (await signed_in.get(base)).text
    api = {"Authorization": f"Bearer {secret}"}
    assert (await signed_in.get("/v1/providers", headers=api)).status_code == 200

    async with runtime.db.sessions() as session:
        key = await session.scalar(select(SecretKey).where(SecretKey.prefix == secret[: projects.SHOWN_PREFIX_LENGTH]))
    assert key is not None
    confirm = await signed_in.get(f"{base}/{key.id}/revoke")
    assert confirm.status_code == 200 and "cannot be" in confirm.text and "Revoke key" in confirm.text
    revoked = await signed_in.post(f"{base}/{key.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303 and revoked.headers["location"] == f"{base}?notice=revoked"
    assert "Key revoked." in (await signed_in.get(revoked.headers["location"])).text
    assert (await signed_in.get("/v1/providers", headers=api)).status_code == 401
    assert (await signed_in.get("/v1/providers", headers={"Authorization": f"Bearer {project[1]}"})).status_code == 200
    prefix = secret[: projects.SHOWN_PREFIX_LENGTH]
    assert await actions(runtime) == [("key.created", prefix, project_id), ("key.revoked", prefix, project_id)]


def posts(project_id: str, key_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every form this area posts, with a body that would change something."""
    return [
        (f"/dashboard/projects/{project_id}/providers/spotify", {"client_id": "x", "client_secret": "y"}),
        (f"/dashboard/projects/{project_id}/custom-providers", {"name": "acme", "client_id": "x", "client_secret": "y", "token_url": "http://127.0.0.1:9/t", "authorization_url": "http://127.0.0.1:9/a"}),
        (f"/dashboard/projects/{project_id}/webhook/url", {"url": "http://127.0.0.1:9/hook"}),
        (f"/dashboard/projects/{project_id}/webhook/rotate", {}),
        (f"/dashboard/projects/{project_id}/webhook/test", {}),
        (f"/dashboard/projects/{project_id}/webhook/deliveries/msg_01M8NB6WCED5VPH3J4FG91MTSD/redeliver", {}),
        (f"/dashboard/projects/{project_id}/keys", {}),
        (f"/dashboard/projects/{project_id}/keys/{key_id}/revoke", {}),
    ]


async def key_id_of(runtime: Runtime, project_id: str) -> str:
    async with runtime.db.sessions() as session:
        key = await session.scalar(select(SecretKey).where(SecretKey.project_id == project_id))
    assert key is not None
    return key.id


async def nothing_changed(runtime: Runtime, project_id: str, keys: int = 1) -> None:
    async with runtime.db.sessions() as session:
        assert (await session.scalars(select(ProviderApp).where(ProviderApp.project_id == project_id))).all() == []
        assert (await session.scalars(select(WebhookDelivery).where(WebhookDelivery.project_id == project_id))).all() == []
        rows = (await session.scalars(select(SecretKey).where(SecretKey.project_id == project_id))).all()
    assert len(rows) == keys and all(k.revoked_at is None for k in rows)
    assert await get_endpoint(runtime, project_id) is None


async def test_every_form_is_refused_without_its_csrf_token(runtime: Runtime, signed_in: httpx.AsyncClient, project: tuple[str, str]) -> None:
    project_id = project[0]
    for url, body in posts(project_id, await key_id_of(runtime, project_id)):
        for token in ({}, {"csrf_token": "not-the-token"}):
            refused = await signed_in.post(url, data=body | token)
            assert refused.status_code == 403, (url, refused.status_code)
            assert "Nothing was changed" in refused.text
    await nothing_changed(runtime, project_id)
    assert await actions(runtime) == []


async def test_an_operator_limited_to_one_project_cannot_see_or_change_another(runtime: Runtime, project: tuple[str, str]) -> None:
    mine, theirs = project[0], await other_project(runtime)
    async with runtime.db.writing() as session:
        other = await session.get(Project, theirs)
        assert other is not None
        their_key = await projects.create_key(session, other)
    await add_operator(runtime, "limited@example.com", [mine])
    async with client_of(create_app(runtime)) as client:
        assert (await sign_in(client, "limited@example.com")).status_code == 303
        token = await csrf_of(client, f"/dashboard/projects/{mine}/keys")
        assert (await client.get(f"/dashboard/projects/{mine}/providers")).status_code == 200
        for path in ("providers", "providers/spotify", "custom-providers/new", "webhook", "keys", f"keys/{their_key.id}/revoke"):
            seen = await client.get(f"/dashboard/projects/{theirs}/{path}")
            assert seen.status_code == 404, path
            assert their_key.secret[: projects.SHOWN_PREFIX_LENGTH] not in seen.text
        for url, body in posts(theirs, their_key.id):
            refused = await client.post(url, data=body | {"csrf_token": token})
            assert refused.status_code == 404, (url, refused.status_code)
        # Their key by its id under my project's URL: not found either.
        assert (await client.get(f"/dashboard/projects/{mine}/keys/{their_key.id}/revoke")).status_code == 404
        crossed = await client.post(f"/dashboard/projects/{mine}/keys/{their_key.id}/revoke", data={"csrf_token": token})
        assert crossed.status_code == 404
    await nothing_changed(runtime, theirs)
    assert await actions(runtime) == []
