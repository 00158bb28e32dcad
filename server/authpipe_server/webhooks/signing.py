"""Webhook signing secrets: made here, sealed by the vault, used to sign with `standardwebhooks`.

A secret is `whsec_` + base64 of 32 random bytes. The endpoint's `secret` column holds one sealed
JSON document: the current secret and, for a day after a rotation (`PUT /v1/webhook` again), the
previous one, so deliveries carry two signatures while the receiver switches over.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook

from authpipe_server.vault import Place, Vault
from authpipe_server.vault.barrier import PROJECT_SCOPE

PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_WINDOW = timedelta(hours=24)
"""How long deliveries are also signed with the secret a rotation replaced."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_place(project_id: str, endpoint_id: str) -> Place:
    return Place(project_id, PROJECT_SCOPE, "webhook_endpoints", endpoint_id, "secret")


@dataclass(frozen=True)
class SigningKeys:
    current: str
    previous: str | None = None
    previous_until: datetime | None = None

    def __repr__(self) -> str:  # never a secret in a log or a traceback
        return f"SigningKeys(previous={'yes' if self.previous else 'no'}, previous_until={self.previous_until})"

    def active(self, now: datetime) -> list[str]:
        keys = [self.current]
        if self.previous and self.previous_until and now < self.previous_until:
            keys.append(self.previous)
        return keys

    def rotated(self, new: str, now: datetime) -> SigningKeys:
        return SigningKeys(new, self.current, now + ROTATION_WINDOW)

    def encode(self) -> bytes:
        until = self.previous_until.timestamp() if self.previous_until else None
        return json.dumps({"v": 1, "current": self.current, "previous": self.previous, "previous_until": until}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> SigningKeys:
        doc = json.loads(raw)
        until = doc.get("previous_until")
        return cls(doc["current"], doc.get("previous"), datetime.fromtimestamp(until, UTC) if until else None)


async def seal_keys(vault: Vault, project_id: str, endpoint_id: str, keys: SigningKeys) -> bytes:
    return await vault.encrypt(secret_place(project_id, endpoint_id), keys.encode())


async def open_keys(vault: Vault, project_id: str, endpoint_id: str, sealed: bytes) -> SigningKeys:
    return SigningKeys.decode(await vault.decrypt(secret_place(project_id, endpoint_id), sealed))


def signature(keys: SigningKeys, msg_id: str, timestamp: datetime, body: str) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256>`, one per active secret."""
    return " ".join(Webhook(key).sign(msg_id, timestamp, body) for key in keys.active(timestamp))
