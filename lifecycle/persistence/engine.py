"""The async engine and sessions of the control-plane database, and its migrations.

SQLite (``sqlite+aiosqlite``, the embedded default) and PostgreSQL (``postgresql+asyncpg``)
are both supported; the schema is created and upgraded by the Alembic migrations in
``lifecycle/persistence/migrations`` (:func:`migrate`), never by ``create_all``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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
