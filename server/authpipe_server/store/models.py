"""Tables. Secret columns hold only vault ciphertext (LargeBinary); tokens that are only ever
checked (API keys, session tokens, OAuth states) are stored as SHA-256 hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from authpipe_server.ids import new_id
from authpipe_server.store.types import UTCDateTime, utcnow

ID = String(40)
NAME = String(256)
HASH = String(64)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def _id(prefix: str) -> Any:
    return mapped_column(ID, primary_key=True, default=lambda: new_id(prefix))


def _project_fk() -> Any:
    return mapped_column(ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


class VaultMeta(Base):
    """One row: which master key (by id) this database is wrapped under, and a rotation in flight."""

    __tablename__ = "vault_meta"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(32))
    rotating_to: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[str] = _id("proj")
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SecretKey(Base):
    __tablename__ = "secret_keys"
    id: Mapped[str] = _id("key")
    project_id: Mapped[str] = _project_fk()
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(HASH, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    """To the minute at best: written at most once a minute per key (projects.KeyUseRecorder)."""


class TenantKey(Base):
    """A data key of one (project, tenant); the key itself lives only in TenantKeyWrap, wrapped."""

    __tablename__ = "tenant_keys"
    __table_args__ = (UniqueConstraint("project_id", "tenant_id", "version"),)
    id: Mapped[str] = _id("tk")
    project_id: Mapped[str] = _project_fk()
    tenant_id: Mapped[str] = mapped_column(NAME)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    shredded_at: Mapped[datetime | None]


class TenantKeyWrap(Base):
    """A data key wrapped by one master key. During a rotation a key has two wraps."""

    __tablename__ = "tenant_key_wraps"
    tenant_key_id: Mapped[str] = mapped_column(ID, ForeignKey("tenant_keys.id", ondelete="CASCADE"), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class ProviderApp(Base):
    """A project's OAuth app at a provider, or a custom provider's whole definition."""

    __tablename__ = "provider_apps"
    __table_args__ = (UniqueConstraint("project_id", "provider"),)
    id: Mapped[str] = _id("app")
    project_id: Mapped[str] = _project_fk()
    provider: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(512))
    client_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    definition: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("project_id", "tenant_id", "user_id", "provider"),
        Index("ix_connections_refresh_due_at", "refresh_due_at"),
        Index("ix_connections_check_due_at", "check_due_at"),
    )
    id: Mapped[str] = _id("conn")
    project_id: Mapped[str] = _project_fk()
    tenant_id: Mapped[str] = mapped_column(NAME)
    user_id: Mapped[str] = mapped_column(NAME)
    provider: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    account_id: Mapped[str | None] = mapped_column(String(512))
    account_name: Mapped[str | None] = mapped_column(String(512))
    resources: Mapped[list[Any]] = mapped_column(default=list)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None]
    refresh_due_at: Mapped[datetime | None]
    refresh_claimed_until: Mapped[datetime | None]
    """A worker's lease on a due refresh (see credentials.scheduler)."""
    check_due_at: Mapped[datetime | None]
    check_claimed_until: Mapped[datetime | None]
    """A worker's lease on a due health check (see monitor.scheduler)."""
    refresh_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(String(1024))
    last_error_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_refreshed_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]


class RefreshAttempt(Base):
    """A refresh in flight, written (and committed) before the provider is called and removed with
    the result. One left behind names a refresh interrupted by a crash: if the provider rotated
    the refresh token meanwhile, this is how the connection can say why it broke."""

    __tablename__ = "refresh_attempts"
    connection_id: Mapped[str] = mapped_column(ID, ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    holder: Mapped[str] = mapped_column(String(128))


class ConnectSession(Base):
    __tablename__ = "connect_sessions"
    id: Mapped[str] = _id("cs")
    project_id: Mapped[str] = _project_fk()
    token_hash: Mapped[str] = mapped_column(HASH, unique=True)
    tenant_id: Mapped[str] = mapped_column(NAME)
    user_id: Mapped[str] = mapped_column(NAME)
    allowed_providers: Mapped[list[Any] | None]
    scopes: Mapped[dict[str, Any] | None]
    origin: Mapped[str | None] = mapped_column(String(2048))
    return_url: Mapped[str | None] = mapped_column(String(2048))
    account_change: Mapped[str] = mapped_column(String(16), default="allow", server_default="allow")
    """`allow` or `refuse`: what a reconnect with another provider account than the stored one does."""
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    """Set by the first connection stored through this session; it completes once."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthState(Base):
    __tablename__ = "oauth_states"
    id: Mapped[str] = _id("st")
    state_hash: Mapped[str] = mapped_column(HASH, unique=True)
    session_id: Mapped[str] = mapped_column(ID, ForeignKey("connect_sessions.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str | None] = mapped_column(String(2048))
    browser_hash: Mapped[str | None] = mapped_column(HASH)
    """Hash of the cookie of the browser that started the flow (connect.browser)."""
    code_verifier: Mapped[bytes | None] = mapped_column(LargeBinary)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """What happened to a connection; `data` is the connection's public view, never a secret."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_project_id_id", "project_id", "id"),)
    id: Mapped[str] = _id("evt")
    project_id: Mapped[str] = _project_fk()
    connection_id: Mapped[str | None] = mapped_column(ID, index=True)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = _id("we")
    project_id: Mapped[str] = mapped_column(ID, ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """The outbox: one row per event per endpoint, written in the same transaction as the event."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_connection_id_status", "connection_id", "status"),  # order per connection
    )
    id: Mapped[str] = _id("msg")
    project_id: Mapped[str] = _project_fk()
    endpoint_id: Mapped[str] = mapped_column(ID, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(ID)
    connection_id: Mapped[str | None] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    claimed_until: Mapped[datetime | None]
    """A worker's lease on this delivery while it is being sent."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One try at delivering a webhook: when, how it answered, how long it took."""

    __tablename__ = "webhook_attempts"
    id: Mapped[str] = _id("wha")
    delivery_id: Mapped[str] = mapped_column(ID, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1024))


class WorkerHeartbeat(Base):
    """A process running background work (`serve` with workers on, or `worker`), last seen alive
    at `seen_at`. Its row goes at clean shutdown; a crashed process's row is purged once stale
    (background.heartbeat)."""

    __tablename__ = "worker_heartbeats"
    id: Mapped[str] = _id("proc")
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    """`serve` or `worker`: the command the process runs."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Operator(Base):
    """Someone who signs in to the dashboard. `email` is kept lowercased (unique). `project_ids`:
    the projects they may see, or None for every project."""

    __tablename__ = "operators"
    id: Mapped[str] = _id("op")
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    """argon2id, in the PHC string format argon2-cffi writes."""
    project_ids: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class OperatorSession(Base):
    """A signed-in browser. The cookie's 256-bit token is stored only as its SHA-256 hash."""

    __tablename__ = "operator_sessions"
    id: Mapped[str] = _id("ds")
    operator_id: Mapped[str] = mapped_column(ID, ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(HASH, unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    """The session's form token (hidden field `csrf_token`); useless without the session cookie."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    """The absolute end; the idle limit is counted from `last_seen_at`."""
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class AuditEntry(Base):
    """Who did what in the dashboard, when and from where; sign-ins included (failed ones too,
    which is what login throttling counts). Kept when the operator or project goes: no foreign
    keys, and the email is copied."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_address_key_created_at", "action", "address_key", "created_at"),
        Index("ix_audit_log_action_email_created_at", "action", "email", "created_at"),
        Index("ix_audit_log_project_id_id", "project_id", "id"),
        Index("ix_audit_log_email_id", "email", "id"),
    )
    id: Mapped[str] = _id("aud")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    operator_id: Mapped[str | None] = mapped_column(ID)
    email: Mapped[str] = mapped_column(String(320))
    """The operator's, or (a failed sign-in) the address typed in, lowercased and cut to length."""
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(512))
    project_id: Mapped[str | None] = mapped_column(ID)
    address: Mapped[str | None] = mapped_column(String(64))
    address_key: Mapped[str | None] = mapped_column(String(64))
    """The throttling key of `address` (its IPv6 /64), what sign-in throttling counts by."""
    user_agent: Mapped[str | None] = mapped_column(String(512))
    detail: Mapped[dict[str, Any] | None]
