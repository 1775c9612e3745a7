"""Control-plane tables (SQLAlchemy 2) and the async engine factory.

SQLite (``sqlite+aiosqlite``, the embedded default) and PostgreSQL (``postgresql+asyncpg``)
are both supported; the schema is created and upgraded by the Alembic migrations in
``lifecycle/migrations`` (:func:`migrate`), never by ``create_all``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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
    """One tenant of the SaaS: its plan, lifecycle state and optimistic-lock ``version``."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    data_key: Mapped[str] = mapped_column(String(200))
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
    """One lifecycle operation (a workflow run) as seen by the control plane."""

    __tablename__ = "operations"

    workflow_id: Mapped[str] = mapped_column(String(255), primary_key=True)
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
    signature: Mapped[str] = mapped_column(String(64))
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


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    The SQLite file's directory is created when missing.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" hook below issues BEGIN
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        _enable_wal(cur)
        cur.close()

    # pysqlite's own transaction handling is off (above). Every transaction is BEGIN
    # IMMEDIATE, so that a compare-and-set (or a migration) takes the write lock before it
    # reads, except the read sessions of ``Sessions()``: a deferred BEGIN, which under WAL
    # never waits for a writer.
    @event.listens_for(engine.sync_engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        reads = conn.get_execution_options().get(_READ_OPTION, False)
        conn.exec_driver_sql("BEGIN" if reads else "BEGIN IMMEDIATE")

    return engine


_READ_OPTION = "lifecycle_read_only"
_BUSY_TIMEOUT_MS = 30_000


def _enable_wal(cursor: Any) -> None:
    """Put the SQLite file in WAL mode (persistent: a no-op once the file is WAL).

    When several connections open a new file at once (``tenantctl dev`` starts the API and
    the worker), each switch holds a read lock while it waits for the exclusive lock the
    other's read lock denies: under a busy timeout both would wait it out (30 s) before one
    fails. So the switch runs with no busy timeout and, when the database is locked, is
    retried after a short random sleep that does not block the event loop, for up to 30 s.

    Raises:
        sqlite3.OperationalError: any other error, or still locked after 30 s.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            await_only(asyncio.sleep(random.uniform(0.01, 0.05)))
    finally:
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")


class Sessions:
    """Session factory of the control plane: ``sessions()`` for reads, ``sessions.begin()``
    for a write transaction (committed on success, rolled back on an exception).

    On SQLite the two differ: a write begins IMMEDIATE (takes the database's one write lock
    first), a read begins DEFERRED and, under WAL, reads a snapshot without waiting for a
    writer. That keeps API reads off the worker's write lock. On PostgreSQL both are plain
    transactions.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reads = async_sessionmaker(
            engine.execution_options(**{_READ_OPTION: True}), expire_on_commit=False
        )
        self._writes = async_sessionmaker(engine, expire_on_commit=False)

    def __call__(self) -> AsyncSession:
        """A session for reads; every write goes through :meth:`begin`."""
        return self._reads()

    def begin(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A write transaction: ``async with sessions.begin() as session: ...``."""
        return self._writes.begin()


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema to the newest revision (all heads) with Alembic."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

    def _upgrade(connection: Any) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
