"""Configuration from the environment and ``.env`` (pydantic-settings).

Variable names follow the product specification (DATABASE_URL, STRIPE_API_KEY, ...). The
specification's REDIS_URL and CELERY_* settings do not exist: Temporal replaces the queue.
Invalid values fail at startup with :class:`pydantic.ValidationError` naming the variable.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.domain.errors import ConfigError
from lifecycle.domain.events import PROVISIONING_EVENTS, EventEndpoint
from lifecycle.domain.plans import PlanCatalog, load_plans
from lifecycle.domain.text import redact

SECRET_FIELDS = (
    "stripe_api_key",
    "stripe_webhook_secret",
    "api_token",
    "signing_secret",
    "provisioning_webhook_secret",
    "event_webhook_secret",
    "s3_secret_access_key",
    "certificate_signing_key",
    "temporal_api_key",
    "s3_access_key_id",
    "tenantctl_token",
)


class Settings(BaseSettings):
    """All runtime settings. Durations are in days or seconds as the name says; sizes in MB."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Storage of the control plane
    data_dir: Path = Field(Path(".data"), description="Embedded state: SQLite, dev server DB")
    database_url: str | None = Field(None, description="SQLAlchemy async URL; default SQLite")
    #: Control-plane connections a process keeps open, and how many more it may open under
    #: load (SQLAlchemy's pool_size / max_overflow). A worker uses at most
    #: 2 x MAX_CONCURRENT_LIFECYCLE_JOBS + 1 at once (activities, local activities, the
    #: event relay); size the sum over all processes below PostgreSQL's max_connections.
    database_pool_size: int = Field(5, ge=1, le=1000)
    database_max_overflow: int = Field(10, ge=0, le=1000)

    # Billing
    stripe_api_key: SecretStr | None = None
    stripe_api_base: str | None = Field(None, description="Stripe-compatible API base URL")
    stripe_webhook_secret: SecretStr | None = None
    proration_behavior: Literal["create_prorations", "always_invoice", "none"] = "create_prorations"
    billing_rate_limit: float | None = Field(
        None,
        gt=0,
        le=10_000,
        description="Billing writes per second for all workers together (Stripe: 100 live, "
        "25 in test mode); unset: no limit",
    )

    # Lifecycle rules
    soft_delete_retention_days: int = Field(30, ge=30, le=90)
    data_export_chunk_size_mb: float = Field(
        64, gt=0, le=4096, description="Export chunk bound in MiB (fractions allowed)"
    )
    max_concurrent_lifecycle_jobs: int = Field(10, ge=1, le=1000)
    #: Workflows a worker keeps in memory between tasks (the sticky cache). Waiting workflows
    #: (retention timers) need no cache slot: a smaller cache bounds memory, 0 disables it.
    worker_max_cached_workflows: int = Field(1000, ge=0)
    #: On SIGTERM/SIGINT a worker stops polling and gives running activities this long to
    #: finish (or heartbeat their cancellation) before they are cancelled.
    worker_graceful_shutdown_seconds: float = Field(30, ge=0, le=3600)
    enable_auto_downgrade: bool = False
    #: Billing reconciliation (Temporal Schedule ``tenant-billing-reconciliation``): how often
    #: (seconds or ISO 8601, e.g. ``PT1H``), and whether it repairs the unambiguous drifts.
    reconcile_interval: timedelta = Field(timedelta(hours=1), gt=timedelta(0))
    reconcile_autofix: bool = False
    enable_reactivation_workflow: bool = True
    payment_failure_grace_days: int = Field(3, ge=0, le=60)
    #: Dunning: days a tenant still waits for its payment after the ladder's last step
    #: (unless that step ended the ladder); a payment then restores it.
    dunning_payment_window_days: int = Field(30, ge=0, le=365)
    #: Pause (``POST /tenants/{id}/pause``): Stripe ``pause_collection[behavior]`` of the
    #: paused tenant's subscription (invoices voided, kept as drafts, or uncollectible).
    pause_collection_behavior: Literal["void", "keep_as_draft", "mark_uncollectible"] = "void"
    #: Trials: days before a trial's end that the ``trial-ending`` event goes out.
    trial_ending_notice_days: int = Field(3, ge=0, le=30)
    purge_batch_rows: int = Field(10_000, ge=1, le=100_000, description="Rows per purge batch")

    # Exports
    export_storage_type: Literal["local", "s3"] = "local"
    export_storage_path: Path | None = None
    export_link_ttl_days: int = Field(7, ge=1, le=7)
    export_retention_days: int = Field(30, ge=1)
    s3_endpoint_url: str | None = None
    s3_bucket: str = "tenant-exports"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_public_endpoint_url: str | None = Field(
        None, description="Endpoint put in presigned export links; default S3_ENDPOINT_URL"
    )

    # Data map and plans
    data_map_path: Path | None = None
    plans_path: Path | None = None

    # Provisioning of the SaaS application
    provisioning_webhook_url: str | None = None
    provisioning_webhook_secret: SecretStr | None = None

    # Outbound lifecycle events (issue 17, item 5)
    event_webhook_urls: str = Field(
        "",
        description="comma-separated endpoints every lifecycle event is POSTed to "
        "(PROVISIONING_WEBHOOK_URL gets those that change the entitlements)",
    )
    event_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the events; default PROVISIONING_WEBHOOK_SECRET"
    )
    event_delivery_retry_days: float = Field(
        3, gt=0, le=30, description="how long a delivery is retried with back-off"
    )
    event_dispatch_interval_seconds: float = Field(
        1.0, gt=0, le=3600, description="how often a worker starts deliveries of new events"
    )

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_token: SecretStr | None = None
    signing_secret: SecretStr | None = Field(
        None, description="HMAC key of download links (and of certificates before Ed25519)"
    )
    certificate_signing_key: SecretStr | None = Field(
        None, description="Ed25519 private key of deletion certificates: PEM, or a PEM file"
    )
    certificate_retired_keys: list[Path] = Field(
        default_factory=list, description="Public PEM files of retired certificate keys"
    )
    api_tokens_file: Path | None = Field(
        None, description="TOML of named tokens with roles (sha256 hashes, no plain tokens)"
    )
    tenantctl_token: SecretStr | None = Field(
        None, description="Bearer token tenantctl sends (a named token); default API_TOKEN"
    )
    max_request_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body in bytes; larger is a 413"
    )
    api_header_timeout_seconds: float = Field(
        10,
        gt=0,
        le=300,
        description="Time a client has to send a request's head, and each part of its body",
    )
    api_keep_alive_seconds: int = Field(
        5, ge=1, le=300, description="Idle time before a kept-alive connection is closed"
    )

    # Temporal
    temporal_address: str | None = Field(None, description="host:port; unset = embedded dev")
    temporal_namespace: str = "default"
    temporal_task_queue: str = "tenant-lifecycle"
    temporal_dev_port: int = Field(7233, ge=1, le=65535)
    temporal_ui_port: int = Field(8233, ge=1, le=65535)
    temporal_ui_url: str | None = Field(
        None, description="Temporal Web UI base URL for the console's links; unset = embedded UI"
    )
    # Secured clusters and Temporal Cloud: mTLS files (PEM) and/or an API key (implies TLS)
    temporal_tls_cert: Path | None = Field(None, description="client certificate, PEM file")
    temporal_tls_key: Path | None = Field(None, description="client private key, PEM file")
    temporal_tls_ca: Path | None = Field(None, description="server root CA, PEM file")
    temporal_api_key: SecretStr | None = None
    temporal_rpc_timeout_seconds: float = Field(
        5, gt=0, le=120, description="Bound of one Temporal call, retries included"
    )

    # Observability
    log_level: str = "INFO"
    enable_metrics: bool = True
    #: The Temporal SDK's Prometheus endpoint of each worker; 0 (default) is off, so any
    #: number of workers run on one host. Each worker on a host needs its own port.
    sdk_metrics_port: int = Field(0, ge=0, le=65535)
    sdk_metrics_host: str = Field("127.0.0.1", description="bind address; 0.0.0.0 in a container")

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together")
        return self

    @property
    def embedded(self) -> bool:
        """True when no TEMPORAL_ADDRESS is set: the embedded dev server is used."""
        return self.temporal_address is None

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_dev_port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'lifecycle.db'}"

    @property
    def exports_dir(self) -> Path:
        return self.export_storage_path or self.data_dir / "exports"

    @property
    def event_endpoints(self) -> list[str]:
        """EVENT_WEBHOOK_URLS as a list (commas or whitespace separate the URLs)."""
        return [u for u in self.event_webhook_urls.replace(",", " ").split() if u]

    def event_secret(self) -> str | None:
        """The key that signs outbound events: EVENT_WEBHOOK_SECRET, else the provisioning
        webhook's (one scheme, one key for a receiver that takes both)."""
        secret = self.event_webhook_secret or self.provisioning_webhook_secret
        return secret.get_secret_value() if secret is not None else None

    def event_subscribers(self) -> list[EventEndpoint]:
        """Every receiver of lifecycle events, in a fixed order (a delivery row keeps its
        endpoint's index): each of EVENT_WEBHOOK_URLS, taking every event type and signed
        with :meth:`event_secret`, then PROVISIONING_WEBHOOK_URL, taking the
        :data:`~lifecycle.domain.events.PROVISIONING_EVENTS` signed with
        PROVISIONING_WEBHOOK_SECRET (unless listed in EVENT_WEBHOOK_URLS already: then it
        gets every event once).

        Raises ConfigError when a URL is set without its secret (events must be signed).
        """
        urls, secret = self.event_endpoints, self.event_secret()
        if urls and not secret:
            raise ConfigError(
                "EVENT_WEBHOOK_URLS is set but neither EVENT_WEBHOOK_SECRET nor "
                "PROVISIONING_WEBHOOK_SECRET is: lifecycle events must be signed"
            )
        endpoints = [EventEndpoint(url, secret or "") for url in urls]
        hook = self.provisioning_webhook_url
        if hook and hook not in urls:
            if self.provisioning_webhook_secret is None:
                raise ConfigError(
                    "PROVISIONING_WEBHOOK_URL is set but PROVISIONING_WEBHOOK_SECRET is not: "
                    "provisioning webhooks must be signed"
                )
            endpoints.append(
                EventEndpoint(
                    hook,
                    self.provisioning_webhook_secret.get_secret_value(),
                    PROVISIONING_EVENTS,
                    "PROVISIONING_WEBHOOK_URL",
                )
            )
        return endpoints

    @cached_property
    def plans(self) -> PlanCatalog:
        """The plan catalogue; raises ConfigError naming the file and field when malformed."""
        return load_plans(self.plans_path)

    def secret(self, name: str) -> str:
        """Return secret ``name`` (``api_token`` or ``signing_secret``), creating it on first use.

        A secret not given in the environment is generated once and kept under ``data_dir``
        (mode 0600) so that restarts and other processes on this machine share it.
        """
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            return value.get_secret_value()
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        token = path.read_text(encoding="utf-8").strip()
        setattr(self, name, SecretStr(token))
        return token

    def certificate_key(self) -> Ed25519PrivateKey:
        """The Ed25519 key that signs deletion certificates: CERTIFICATE_SIGNING_KEY (PEM
        text, or the path of a PEM file), else ``data_dir/certificate_signing_key.pem``,
        generated on first use (mode 0600) on the embedded default.

        Raises ConfigError when the key given is not an unencrypted Ed25519 PEM key.
        """
        from cryptography.hazmat.primitives import serialization

        if self.certificate_signing_key is not None:
            value = self.certificate_signing_key.get_secret_value().strip()
            source = "CERTIFICATE_SIGNING_KEY"
            if not value.startswith("-----BEGIN"):
                source = value
                try:
                    value = Path(value).read_text(encoding="utf-8")
                except OSError as exc:
                    raise ConfigError(f"CERTIFICATE_SIGNING_KEY: cannot read {value}") from exc
        else:
            path = self.data_dir / "certificate_signing_key.pem"
            source = str(path)
            if not path.exists():
                pem = Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                self.data_dir.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o600)
                path.write_bytes(pem)
            value = path.read_text(encoding="utf-8")
        try:
            key = serialization.load_pem_private_key(value.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{source}: not an Ed25519 key")
        return key

    def redacted(self) -> dict[str, object]:
        """Settings as JSON-able values with every secret replaced by ``"***"`` (or None),
        and the userinfo and query string of every URL (STRIPE_API_BASE, S3_ENDPOINT_URL,
        PROVISIONING_WEBHOOK_URL, DATABASE_URL, ...) replaced by ``***``."""
        out: dict[str, object] = {}
        for name, value in self.model_dump(mode="json").items():
            if name in SECRET_FIELDS:
                out[name] = None if value is None else "***"
            elif isinstance(value, str):
                out[name] = redact(value)
            else:
                out[name] = value
        out["database_url"] = redact(self.db_url)
        return out
