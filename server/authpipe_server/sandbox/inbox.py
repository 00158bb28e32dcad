"""The sandbox's webhook inbox, so webhooks can be watched without writing a receiver.

Project `default`'s webhook points at `/sandbox/webhooks/receive`. Each delivery is checked the
way a receiver would check it — the `standardwebhooks` package with the project's signing
secret(s) — kept in memory (the newest `KEPT`) and listed at `/sandbox/webhooks`.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping
from urllib.parse import urlsplit

from standardwebhooks import Webhook, WebhookVerificationError

from authpipe_server.runtime import Runtime
from authpipe_server.store.types import utcnow
from authpipe_server.vault import VaultError
from authpipe_server.webhooks.endpoints import get_endpoint, put_endpoint
from authpipe_server.webhooks.signing import open_keys

INBOX_PATH = "/sandbox/webhooks"
RECEIVE_PATH = f"{INBOX_PATH}/receive"
KEPT = 200
SHOWN_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent")


@dataclass(frozen=True, slots=True)
class Received:
    number: int
    received_at: datetime
    headers: dict[str, str]
    body: str
    """Pretty-printed when it is JSON, for reading."""
    raw: str
    """Exactly as received: what the signature covers."""
    event_type: str | None
    connection_id: str | None
    verified: bool
    problem: str | None
    """Why the signature did not verify."""


class Inbox:
    """The newest deliveries, in memory: the sandbox is one process, and a restart starts afresh."""

    def __init__(self, capacity: int = KEPT) -> None:
        self._items: deque[Received] = deque(maxlen=capacity)
        self._numbers = itertools.count(1)

    def keep(self, headers: Mapping[str, str], body: bytes, verified: bool, problem: str | None) -> Received:
        text = raw = body.decode("utf-8", errors="replace")
        event_type = connection_id = None
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            text = json.dumps(payload, indent=2, sort_keys=True)
            event_type = payload.get("type") if isinstance(payload.get("type"), str) else None
            connection = (payload.get("data") or {}).get("connection") if isinstance(payload.get("data"), dict) else None
            connection_id = connection.get("id") if isinstance(connection, dict) else None
        received = Received(
            number=next(self._numbers),
            received_at=utcnow(),
            headers={name: headers[name] for name in SHOWN_HEADERS if name in headers},
            body=text,
            raw=raw,
            event_type=event_type,
            connection_id=connection_id,
            verified=verified,
            problem=problem,
        )
        self._items.append(received)
        return received

    def newest_first(self, connection_id: str | None = None) -> list[Received]:
        return [r for r in reversed(self._items) if connection_id in (None, r.connection_id)]


async def verify(runtime: Runtime, project_id: str, headers: Mapping[str, str], body: bytes) -> tuple[bool, str | None]:
    """Whether `body` carries a valid Standard Webhooks signature by one of the project's secrets."""
    endpoint = await get_endpoint(runtime, project_id)
    if endpoint is None:
        return False, "the project has no webhook endpoint, so there is no secret to check with"
    try:
        keys = await open_keys(runtime.vault, project_id, endpoint.id, endpoint.secret)
    except (VaultError, ValueError, KeyError):
        return False, "the project's signing secret cannot be read"
    problem = "no signature matched"
    for secret in keys.active(utcnow()):
        try:
            Webhook(secret).verify(body, dict(headers))
            return True, None
        except WebhookVerificationError as exc:
            problem = str(exc) or problem
    return False, problem


async def point_webhook_at_inbox(runtime: Runtime, project_id: str) -> None:
    """Point the project's webhook at this sandbox's inbox, at each start (so a changed port is
    followed), unless the user pointed it somewhere else."""
    url = runtime.settings.public_url + RECEIVE_PATH
    endpoint = await get_endpoint(runtime, project_id)
    if endpoint is not None and (urlsplit(endpoint.url).path != RECEIVE_PATH or (endpoint.url == url and endpoint.disabled_at is None)):
        return
    await put_endpoint(runtime, project_id, url)
