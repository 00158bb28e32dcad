"""Operator accounts: who may sign in to the dashboard, with an argon2id password (argon2-cffi's
PasswordHasher, its RFC 9106 defaults), optionally limited to some projects.

Verifying a password costs tens of milliseconds of CPU and 64 MiB, on purpose: it runs in a
thread so the event loop keeps serving. An unknown email is answered after verifying against a
dummy hash, so a wrong email and a wrong password take about as long."""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from typing import TYPE_CHECKING, Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authpipe_server import projects
from authpipe_server.errors import AuthpipeError
from authpipe_server.store.models import Operator as OperatorRow
from authpipe_server.store.models import OperatorSession
from authpipe_server.store.types import utcnow

if TYPE_CHECKING:  # the command line imports this module; it need not load the whole runtime
    from authpipe_server.runtime import Runtime

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
"""argon2 takes any length; a bound keeps one request's hashing work bounded too."""
MAX_EMAIL_LENGTH = 254
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
"""One `@` with something on both sides: `sandbox@localhost` is an operator too."""
SANDBOX_EMAIL = "sandbox@localhost"
"""The operator `authpipe dev` signs in automatically (every project; a random password never shown)."""

hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """What an unknown email's password is checked against (made once, when first needed)."""
    return hasher.hash(secrets.token_urlsafe(16))


class AccountError(AuthpipeError):
    pass


def normalize_email(email: str) -> str:
    """The stored form of an email (trimmed, lowercased); raises AccountError when it is not one."""
    value = email.strip().lower()
    if len(value) > MAX_EMAIL_LENGTH or not EMAIL.match(value):
        raise AccountError(f"{email.strip()[:80]!r} is not an email address (like ops@example.com)")
    return value


def check_password(password: str) -> None:
    """Raises AccountError with the reason when `password` may not be an operator's password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise AccountError("the password is only spaces")


def hash_password(password: str) -> str:
    """argon2id of a password that passed `check_password` (blocking: run it in a thread)."""
    check_password(password)
    return hasher.hash(password)


async def project_ids_named(session: AsyncSession, names: Sequence[str]) -> list[str] | None:
    """The ids of the projects named (an unknown name raises AccountError); None for no names,
    which means every project."""
    if not names:
        return None
    ids = []
    for name in dict.fromkeys(names):
        try:
            ids.append((await projects.project_by_name(session, name)).id)
        except projects.NotFound:
            raise AccountError(f"no project named {name!r}") from None
    return ids


async def find_operator(session: AsyncSession, email: str) -> OperatorRow | None:
    return await session.scalar(select(OperatorRow).where(OperatorRow.email == normalize_email(email)))


async def get_operator(session: AsyncSession, email: str) -> OperatorRow:
    operator = await find_operator(session, email)
    if operator is None:
        raise AccountError(f"no operator {normalize_email(email)} (see `authpipe admins list`)")
    return operator


async def create_operator(session: AsyncSession, email: str, password_hash: str, project_ids: list[str] | None) -> OperatorRow:
    """A new operator; `password_hash` from `hash_password`."""
    operator = OperatorRow(email=normalize_email(email), password_hash=password_hash, project_ids=project_ids)
    session.add(operator)
    try:
        await session.flush()
    except IntegrityError:
        raise AccountError(f"an operator {operator.email} already exists") from None
    return operator


async def list_operators(session: AsyncSession) -> list[OperatorRow]:
    return list(await session.scalars(select(OperatorRow).order_by(OperatorRow.email)))


async def revoke_sessions(session: AsyncSession, operator_id: str) -> int:
    """End every live session of an operator; how many there were."""
    result = await session.execute(
        update(OperatorSession)
        .where(OperatorSession.operator_id == operator_id, OperatorSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_operator(session: AsyncSession, email: str) -> int:
    """Delete an operator; their sessions end at once (and their rows go with the operator's).
    How many live sessions ended."""
    operator = await get_operator(session, email)
    ended = await revoke_sessions(session, operator.id)
    await session.delete(operator)
    return ended


async def set_password(session: AsyncSession, email: str, password_hash: str) -> int:
    """Give an operator a new password and end all their sessions; how many sessions ended."""
    operator = await get_operator(session, email)
    operator.password_hash = password_hash
    operator.password_changed_at = utcnow()
    return await revoke_sessions(session, operator.id)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def authenticate(runtime: Runtime, email: str, password: str) -> OperatorRow | None:
    """The operator whose email and password these are, or None. Takes about as long for an
    unknown email as for a wrong password. Upgrades the stored hash when the hasher's parameters
    have changed since it was made."""
    try:
        normalized = normalize_email(email)
    except AccountError:
        normalized = None
    password = password[:MAX_PASSWORD_LENGTH + 1]
    operator = None
    if normalized is not None:
        async with runtime.db.sessions() as session:
            operator = await session.scalar(select(OperatorRow).where(OperatorRow.email == normalized))
    if operator is None:
        await asyncio.to_thread(_verify, await asyncio.to_thread(_dummy_hash), password)
        return None
    if not await asyncio.to_thread(_verify, operator.password_hash, password):
        return None
    if hasher.check_needs_rehash(operator.password_hash):
        fresh = await asyncio.to_thread(hasher.hash, password)
        async with runtime.db.writing() as session:
            await session.execute(
                update(OperatorRow)
                .where(OperatorRow.id == operator.id, OperatorRow.password_hash == operator.password_hash)
                .values(password_hash=fresh)
                .execution_options(synchronize_session=False)
            )
    return operator


async def ensure_sandbox_operator(runtime: Runtime) -> OperatorRow:
    """`authpipe dev`'s operator, made on first start: every project, a random password nobody
    is shown (it is signed in automatically, from this machine only)."""
    async with runtime.db.sessions() as session:
        existing = await session.scalar(select(OperatorRow).where(OperatorRow.email == SANDBOX_EMAIL))
    if existing is not None:
        return existing
    password_hash = await asyncio.to_thread(hasher.hash, secrets.token_urlsafe(32))
    async with runtime.db.writing() as session:
        return await create_operator(session, SANDBOX_EMAIL, password_hash, None)
