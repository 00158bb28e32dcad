"""Prometheus metrics (`GET /metrics`). Labels are providers, outcomes and statuses only: never a
tenant, user, connection id or anything secret.

Each process has its own registry, so several apps in one test process do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.refreshes = Counter(
            "authpipe_refreshes", "Token refreshes by provider and outcome (ok, revoked, failed).",
            ["provider", "outcome"], registry=self.registry,
        )
        self.checks = Counter(
            "authpipe_health_checks", "Health checks by provider and outcome (ok, changed, revoked, failed).",
            ["provider", "outcome"], registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "authpipe_webhook_deliveries", "Webhook delivery attempts by outcome (delivered, retry, failed, disabled).",
            ["outcome"], registry=self.registry,
        )
        self.retention_purged = Counter(
            "authpipe_retention_purged", "Rows deleted by the retention job, by kind (oauth_states, connect_sessions, webhook_deliveries, events).",
            ["kind"], registry=self.registry,
        )
        self.connections = Gauge(
            "authpipe_connections", "Connections by provider and status (read from the database at scrape time).",
            ["provider", "status"], registry=self.registry,
        )
        self.credential_reads = Histogram(
            "authpipe_credential_read_seconds", "Time to answer GET /v1/credentials (refreshes included).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
