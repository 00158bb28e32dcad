"""A project's one webhook endpoint: set (or rotate its secret), read, delete.

The signing secret is shown once, in the answer to `PUT /v1/webhook`; it is stored only sealed
by the vault (tenant PROJECT_SCOPE), and sealed before the write transaction opens.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from authpipe_server.egress import EgressRefused
from authpipe_server.errors import AuthpipeError
from authpipe_server.ids import new_id
from authpipe_server.runtime import Runtime
from authpipe_server.store.models import WebhookEndpoint
from authpipe_server.store.types import utcnow
from authpipe_server.vault import VaultError
from authpipe_server.webhooks.signing import (
    SigningKeys,
    new_secret,
    open_keys,
    seal_keys,
)

MAX_URL = 2048


class InvalidWebhookUrl(AuthpipeError):
    pass


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host and no user:password@, at most 2048 characters; else
    InvalidWebhookUrl. (Where it may point is the egress policy's call, made by the caller.)"""
    if not url or len(url) > MAX_URL:
        raise InvalidWebhookUrl(f"url must be 1-{MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidWebhookUrl("url must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidWebhookUrl("url must start with https:// or http://")
    try:
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or port == 0:
        raise InvalidWebhookUrl("url must name a host (and a valid port, if any)")
    if "@" in parts.netloc:
        raise InvalidWebhookUrl(
            "url must not contain user:password@: credentials don't belong in the URL "
            "(receivers authenticate deliveries by their webhook-signature)"
        )
    if parts.fragment or url.endswith("#"):
        raise InvalidWebhookUrl("url must not have a #fragment")
    return url


async def get_endpoint(runtime: Runtime, project_id: str) -> WebhookEndpoint | None:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id))


async def put_endpoint(runtime: Runtime, project_id: str, url: str) -> tuple[WebhookEndpoint, str]:
    """Set the project's endpoint to `url` with a new secret (enabling it again if a 410 had
    disabled it). Returns (endpoint, secret). Replacing a secret keeps the old one signing too,
    for a day (see webhooks.signing), so receivers can switch without dropping a message."""
    secret = new_secret()
    for _ in range(3):  # a concurrent first PUT (or a DELETE) may change the row under us
        existing = await get_endpoint(runtime, project_id)
        now = utcnow()
        keys = SigningKeys(secret)
        if existing is not None:
            try:
                keys = (await open_keys(runtime.vault, project_id, existing.id, existing.secret)).rotated(secret, now)
            except (VaultError, ValueError, KeyError):
                pass  # the old secret cannot be read: sign with the new one only
        endpoint_id = existing.id if existing is not None else new_id("we")
        sealed = await seal_keys(runtime.vault, project_id, endpoint_id, keys)
        try:
            async with runtime.db.writing() as session:
                endpoint = await session.get(WebhookEndpoint, endpoint_id)
                if endpoint is None and existing is not None:
                    endpoint = None  # deleted meanwhile: start over
                else:
                    if endpoint is None:
                        endpoint = WebhookEndpoint(id=endpoint_id, project_id=project_id, created_at=now)
                        session.add(endpoint)
                    endpoint.url, endpoint.secret, endpoint.disabled_at = url, sealed, None
            if endpoint is not None:
                return endpoint, secret
        except IntegrityError:
            continue
    raise RuntimeError("could not save the webhook endpoint after concurrent changes")


async def set_endpoint_url(runtime: Runtime, project_id: str, url: str) -> tuple[WebhookEndpoint, str]:
    """`PUT /v1/webhook` and the dashboard: check `url` (its shape, then the egress policy against
    the addresses it resolves to now, rather than at every delivery, where the check repeats) and
    set it with a new signing secret (put_endpoint). InvalidWebhookUrl says why a URL is refused."""
    try:
        url = validate_url(url)
        await runtime.egress.check_resolved(url)
    except EgressRefused as exc:
        raise InvalidWebhookUrl(str(exc)) from None
    return await put_endpoint(runtime, project_id, url)


async def delete_endpoint(runtime: Runtime, project_id: str) -> bool:
    """Remove the endpoint; its queued deliveries and their attempts go with it."""
    async with runtime.db.writing() as session:
        deleted = await session.execute(
            delete(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id).returning(WebhookEndpoint.id)
        )
        return deleted.first() is not None
