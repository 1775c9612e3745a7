"""Control-plane tables (SQLAlchemy 2 declarative models).

The schema is created and upgraded by the Alembic migrations in
``lifecycle/persistence/migrations`` (:func:`lifecycle.persistence.engine.migrate`), never by
``create_all``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Current time, timezone-aware UTC (activities and the API only; never in workflows)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | str | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a datetime that crossed Temporal inside a dict[str, Any]
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            raise ValueError("naive datetime given; control-plane timestamps must be UTC-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """One tenant of the SaaS: its plan, lifecycle state and optimistic-lock ``version``.

    ``data_key`` selects the tenant's data in the data map; it is immutable and unique among
    live (not purged) tenants in its canonical form ``data_key_canonical``
    (:func:`lifecycle.domain.tenants.canonical_data_key`), enforced by a partial unique index.
    ``data_key_canonical`` is NULL only for a key that already had a live holder when
    migration ``0003_data_keys`` ran: exports and purges of such a tenant are refused.
    """

    __tablename__ = "tenants"
    __table_args__ = (
        Index(
            "uq_tenants_live_data_key",
            "data_key_canonical",
            unique=True,
            sqlite_where=text("purged_at IS NULL"),
            postgresql_where=text("purged_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    data_key: Mapped[str] = mapped_column(String(200))
    data_key_canonical: Mapped[str | None] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    billing_customer_id: Mapped[str | None] = mapped_column(String(255))
    billing_subscription_id: Mapped[str | None] = mapped_column(String(255))
    billing_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    usage: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    pending_plan_change: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    deletion_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deletion_requested_by: Mapped[str | None] = mapped_column(String(320))
    plan_at_deletion: Mapped[str | None] = mapped_column(String(64))
    purge_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``{"kind": "admin"|"dunning"|"paused", "resume_at": ISO UTC or None}`` while SUSPENDED.
    suspension: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: :class:`~lifecycle.domain.dunning.DunningStatus` as JSON while an invoice is overdue.
    dunning: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trial_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Entitlement(Base):
    """A limit the SaaS application enforces for a tenant (-1 = unlimited)."""

    __tablename__ = "entitlements"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LifecycleEvent(Base):
    """Append-only audit log: one row per state change or notable lifecycle step."""

    __tablename__ = "lifecycle_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    operation: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    workflow_id: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(320))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Operation(Base):
    """One lifecycle operation (a workflow run) as seen by the control plane: one row per run,
    so a re-run under a reused workflow id adds a row. ``run_id`` is ``''`` for rows recorded
    before run ids were kept (migration 0003)."""

    __tablename__ = "operations"

    workflow_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    step: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """A POST made with an ``Idempotency-Key`` header and the response it produced."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeletionCertificate(Base):
    """The signed proof of a tenant's purge, kept after the tenant row became a tombstone."""

    __tablename__ = "deletion_certificates"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookEvent(Base):
    """A billing webhook event processed once: its id is the primary key."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[str | None] = mapped_column(String(63))
    outcome: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Export(Base):
    """One GDPR export of a tenant (Art. 15/20): status, progress and the archive's size,
    SHA-256 and storage key; ``expires_at`` is when the archive is deleted (retention)."""

    __tablename__ = "exports"

    export_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    workflow_id: Mapped[str] = mapped_column(String(255))
    export_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(512))
    requested_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    estimated_completion: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class PlanMigrationFailure(Base):
    """A tenant a bulk plan migration did not move, with the cause (one row per tenant)."""

    __tablename__ = "plan_migration_failures"

    migration_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    cause: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class RateLimit(Base):
    """A rate limit shared by every worker (GCRA): ``next_at`` is the earliest time (unix
    seconds) the next call may be made; each call moves it on by 1/rate."""

    __tablename__ = "rate_limits"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)


class OutboundEvent(Base):
    """The transactional outbox of lifecycle events: written in the transaction of the audit
    row it stems from; ``sequence`` grows by one per tenant; ``dispatched_at`` is set once its
    delivery workflow was started."""

    __tablename__ = "outbound_events"
    __table_args__ = (Index("uq_outbound_events_sequence", "tenant_id", "sequence", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(63))
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class TenantEventSequence(Base):
    """The last event sequence number given per tenant (incremented under a row lock)."""

    __tablename__ = "tenant_event_sequences"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(Integer)


class EventDelivery(Base):
    """The delivery of one outbound event to one endpoint (its index ``endpoint_index`` in
    EVENT_WEBHOOK_URLS, then the provisioning webhook; its redacted URL ``endpoint``)."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        Index("uq_event_deliveries_endpoint", "event_id", "endpoint_index", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbound_events.id", ondelete="CASCADE"))
    endpoint_index: Mapped[int] = mapped_column(Integer)
    endpoint: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


#: The tables of the hot paths, for Core statements (no ORM objects, no unit of work).
TENANTS = _table(Tenant)
ENTITLEMENTS = _table(Entitlement)
AUDIT_EVENTS = _table(LifecycleEvent)
OPERATIONS = _table(Operation)
OUTBOUND_EVENTS = _table(OutboundEvent)
