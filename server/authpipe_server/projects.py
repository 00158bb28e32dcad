"""Projects and their secret keys (`ap_sk_…`: shown once, stored as a hash)."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from cachetools import TTLCache
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server.errors import AuthpipeError
from authpipe_server.store.db import Database
from authpipe_server.store.models import Project, SecretKey
from authpipe_server.store.types import utcnow
from authpipe_server.tokens import new_token, token_hash

SECRET_KEY_PREFIX = "ap_sk_"
SHOWN_PREFIX_LENGTH = len(SECRET_KEY_PREFIX) + 8
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY_USE_INTERVAL = 60.0
"""Seconds: a key's `last_used_at` is written at most this often."""

log = logging.getLogger(__name__)


class NotFound(AuthpipeError):
    pass


class Conflict(AuthpipeError):
    pass


@dataclass(frozen=True)
class NewKey:
    id: str
    project_id: str
    secret: str

    def __repr__(self) -> str:
        return f"NewKey(id={self.id!r}, prefix={self.secret[:SHOWN_PREFIX_LENGTH]!r})"


async def create_project(session: AsyncSession, name: str) -> Project:
    if not PROJECT_NAME.match(name):
        raise AuthpipeError(
            f"invalid project name {name!r}: use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )
    project = Project(name=name)
    session.add(project)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"a project named {name!r} already exists") from None
    return project


async def project_by_name(session: AsyncSession, name: str) -> Project:
    project = await session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"no project named {name!r}")
    return project


async def create_key(session: AsyncSession, project: Project) -> NewKey:
    secret = new_token(SECRET_KEY_PREFIX)
    key = SecretKey(project_id=project.id, prefix=secret[:SHOWN_PREFIX_LENGTH], key_hash=token_hash(secret))
    session.add(key)
    await session.flush()
    return NewKey(key.id, project.id, secret)


async def revoke_key(session: AsyncSession, prefix: str) -> SecretKey:
    """Revoke the one active key whose shown prefix (or whole value) starts with `prefix`."""
    if not prefix.startswith(SECRET_KEY_PREFIX) or len(prefix) < len(SECRET_KEY_PREFIX) + 4:
        raise AuthpipeError(f"give at least the first 10 characters of the key, e.g. {SECRET_KEY_PREFIX}AbCd")
    if len(prefix) > SHOWN_PREFIX_LENGTH:
        query = select(SecretKey).where(SecretKey.key_hash == token_hash(prefix))
    else:
        query = select(SecretKey).where(SecretKey.prefix.startswith(prefix, autoescape=True))
    keys = (await session.scalars(query.where(SecretKey.revoked_at.is_(None)))).all()
    if not keys:
        raise NotFound(f"no active secret key starts with {prefix[:SHOWN_PREFIX_LENGTH]}")
    if len(keys) > 1:
        raise AuthpipeError(f"{len(keys)} keys start with {prefix}; give more characters")
    keys[0].revoked_at = utcnow()
    return keys[0]


async def revoke_project_key(session: AsyncSession, project_id: str, key_id: str) -> SecretKey:
    """Revoke `project_id`'s key `key_id` (the dashboard's Revoke button). A key of another
    project, or none, is NotFound; revoking a revoked key changes nothing."""
    key = await session.scalar(select(SecretKey).where(SecretKey.id == key_id, SecretKey.project_id == project_id).with_for_update())
    if key is None:
        raise NotFound(f"no secret key {key_id} in this project")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


async def list_keys(session: AsyncSession, project: Project) -> list[SecretKey]:
    """Every secret key of `project`, revoked ones included, oldest first."""
    query = select(SecretKey).where(SecretKey.project_id == project.id).order_by(SecretKey.created_at, SecretKey.id)
    return list(await session.scalars(query))


async def project_for_key(session: AsyncSession, secret: str) -> str | None:
    """The project id a secret key belongs to, or None if unknown or revoked.

    The lookup is by hash, so timing reveals nothing about valid keys' characters.
    """
    return await session.scalar(
        select(SecretKey.project_id).where(SecretKey.key_hash == token_hash(secret), SecretKey.revoked_at.is_(None))
    )


class KeyUseRecorder:
    """Records when secret keys are used, cheaply: at most one write per key per `interval`
    seconds in this process (remembered in memory), and the UPDATE itself only changes a row
    last marked more than `interval` ago, so several processes together still write about once
    per interval per key. Best effort: a failed write is logged, never raised, since it must
    not turn an authenticated request into an error.
    """

    def __init__(self, *, interval: float = KEY_USE_INTERVAL, size: int = 10_000) -> None:
        self.interval = interval
        self._recent: TTLCache[str, bool] = TTLCache(size, interval, timer=time.monotonic)

    async def touch(self, db: Database, digest: str) -> None:
        """Note that the key whose hash is `digest` (tokens.token_hash) was just used."""
        if digest in self._recent:
            return
        self._recent[digest] = True
        now = utcnow()
        stale = or_(SecretKey.last_used_at.is_(None), SecretKey.last_used_at < now - timedelta(seconds=self.interval))
        try:
            async with db.writing() as session:
                await session.execute(
                    update(SecretKey)
                    .where(SecretKey.key_hash == digest, stale)
                    .values(last_used_at=now)
                    .execution_options(synchronize_session=False)
                )
        except (SQLAlchemyError, OSError) as exc:
            self._recent.pop(digest, None)
            log.warning("could not record a secret key's last use: %s", type(exc).__name__)
