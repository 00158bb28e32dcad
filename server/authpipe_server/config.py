"""Settings from the environment, validated once at start.

Every problem becomes one `ConfigError` line (the CLI prints it and exits 2), never a traceback.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Literal, Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from authpipe_server.egress.policy import EgressPolicy, parse_allow_list
from authpipe_server.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///.authpipe/authpipe.db"
MASTER_KEY_HINT = "make one with `authpipe vault new-key`"


def decode_master_key(value: str, *, name: str = "AUTHPIPE_MASTER_KEY") -> bytes:
    """Decode a base64 (standard or URL-safe) 32-byte key; raise ConfigError with a clear line."""
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not valid base64; {MASTER_KEY_HINT}") from None
    if len(raw) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes, got {len(raw)}; {MASTER_KEY_HINT}")
    return raw


def async_database_url(url: str) -> URL:
    """Turn the contract's URL (`sqlite:///…`, `postgresql://…`) into the async driver's URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"AUTHPIPE_DATABASE_URL is not a database URL: {_redact(url)!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError("AUTHPIPE_DATABASE_URL must name a SQLite file, e.g. sqlite:///.authpipe/authpipe.db")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        if not parsed.database:
            raise ConfigError("AUTHPIPE_DATABASE_URL must name a PostgreSQL database, e.g. postgresql://user@host:5432/authpipe")
        return parsed.set(drivername="postgresql+asyncpg")
    raise ConfigError(
        f"AUTHPIPE_DATABASE_URL must start with sqlite:/// or postgresql://, not {backend}://"
    )


def _redact(url: str) -> str:
    """Hide a password in a URL before it reaches a message."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***", 1)
    return url


class _Env(BaseModel):
    """Shape and bounds of every variable; pydantic does the checking."""

    model_config = ConfigDict(extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    master_key: str | None = None
    public_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    refresh_margin: int = Field(600, ge=1)
    health_interval: int = Field(21600, ge=1)
    workers: Literal["on", "off"] = "on"
    access_log: Literal["on", "off"] = "off"
    egress: Literal["public", "loopback", "any"] = "public"
    egress_allow: str = ""
    egress_timeout: float = Field(15.0, gt=0, le=300)
    egress_max_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    metrics_token: str | None = Field(None, min_length=16, max_length=512)
    retention_events_days: int = Field(90, ge=1, le=36500)
    retention_deliveries_days: int = Field(30, ge=1, le=36500)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be an http(s) URL with no query, e.g. https://auth.example.com")
        return value.rstrip("/")

    @field_validator("egress_allow")
    @classmethod
    def _egress_allow(cls, value: str) -> str:
        parse_allow_list(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("workers", "access_log", "egress", mode="before")
    @classmethod
    def _workers(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: URL
    master_key: bytes | None
    public_url: str
    host: str
    port: int
    refresh_margin: int
    health_interval: int
    workers: bool
    access_log: bool
    """One line per request (never the query string). Off by default: it costs about 15 % of a
    process's credential-read throughput, and a load balancer in front usually logs requests."""
    egress: EgressPolicy
    """Where outbound calls (providers, DID documents, PDSes, webhooks) may go (egress.policy)."""
    egress_timeout: float
    """Total deadline of one outbound call, seconds: connect, send and the whole answer."""
    egress_max_bytes: int
    """The largest answer an outbound call reads; more is refused without reading it."""
    metrics_token: str | None
    retention_events_days: int
    retention_deliveries_days: int

    def __repr__(self) -> str:  # the master key must never reach a log through repr()
        return (
            f"Settings(database_url={self.database_url!r}, public_url={self.public_url!r}, "
            f"host={self.host!r}, port={self.port}, workers={self.workers}, egress={self.egress.mode!r})"
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.get_backend_name() == "sqlite"

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}/oauth/callback"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read AUTHPIPE_* variables, check them all, and return Settings or raise ConfigError."""
    env = os.environ if environ is None else environ
    raw = {
        key[len("AUTHPIPE_"):].lower(): value
        for key, value in env.items()
        if key.startswith("AUTHPIPE_") and value != ""
    }
    try:
        parsed = _Env.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "AUTHPIPE_" + str(first["loc"][0]).upper()
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
    return Settings(
        database_url=async_database_url(parsed.database_url),
        master_key=decode_master_key(parsed.master_key) if parsed.master_key else None,
        public_url=parsed.public_url,
        host=parsed.host,
        port=parsed.port,
        refresh_margin=parsed.refresh_margin,
        health_interval=parsed.health_interval,
        workers=parsed.workers == "on",
        access_log=parsed.access_log == "on",
        egress=EgressPolicy.build(parsed.egress, parsed.egress_allow),
        egress_timeout=parsed.egress_timeout,
        egress_max_bytes=parsed.egress_max_bytes,
        metrics_token=parsed.metrics_token,
        retention_events_days=parsed.retention_events_days,
        retention_deliveries_days=parsed.retention_deliveries_days,
    )
