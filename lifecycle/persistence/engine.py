"""The async engine and sessions of the control-plane database, and its migrations.

SQLite (``sqlite+aiosqlite``, the embedded default) and PostgreSQL (``postgresql+asyncpg``)
are both supported; the schema is created and upgraded by the Alembic migrations in
``lifecycle/persistence/migrations`` (:func:`migrate`), never by ``create_all``.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from lifecycle.config import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def create_engine(
    url: str,
    pool_size: int = 5,
    max_overflow: int = 10,
    pre_ping: bool = True,
    server_settings: Mapping[str, str] | None = None,
) -> AsyncEngine:
    """Create the async engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.
    ``pool_size`` connections stay open, up to ``max_overflow`` more under load (server
    databases; SQLite's pool is SQLAlchemy's default). ``pre_ping``: a server database's
    pooled connection is tested (one round trip, :func:`_ping` on asyncpg) at each checkout;
    without it a connection the server dropped fails its first statement, and that error
    invalidates the whole pool, so the next attempt connects afresh (SQLAlchemy's optimistic
    disconnect handling). ``server_settings`` (PostgreSQL; ignored elsewhere): session
    settings of every connection, sent with its start-up message (asyncpg's
    ``server_settings``, libpq's ``options`` for other drivers), so they cost no round trip.

    The SQLite file's directory is created when missing.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        asyncpg = parsed.get_driver_name() == "asyncpg"
        connect_args: dict[str, Any] = {}
        if server_settings and parsed.get_backend_name() == "postgresql":
            connect_args = (
                {"server_settings": dict(server_settings)}
                if asyncpg
                else {"options": " ".join(f"-c {k}={v}" for k, v in server_settings.items())}
            )
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=pre_ping and not asyncpg,
            connect_args=connect_args,
        )
        if pre_ping and asyncpg:
            event.listen(engine.sync_engine.pool, "checkout", _ping)
        return engine
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


def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Test a pooled server connection at checkout with one empty statement (``;``), one
    round trip. SQLAlchemy's ``pool_pre_ping`` costs three on asyncpg (it wraps the statement
    in BEGIN and ROLLBACK, for PgBouncer's transaction mode, which this project's prepared
    statements do not support anyway). A failed ping raises ``DisconnectionError``: the pool
    discards the connection and checks out another (SQLAlchemy's pool ``checkout`` event)."""
    try:
        await_only(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as err:
        raise DisconnectionError(f"pooled connection failed its ping: {err!r}") from err


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

    The operations' hot paths (a workflow's control-plane steps) use Core statements on a
    connection instead of ORM sessions, with the same two kinds: :meth:`reading` and
    :meth:`writing`.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._read_engine = engine.execution_options(**{_READ_OPTION: True})
        self._reads = async_sessionmaker(self._read_engine, expire_on_commit=False)
        self._writes = async_sessionmaker(engine, expire_on_commit=False)
        self._queue_writers = engine.dialect.name == "sqlite"
        #: On a server database, one statement commits by itself (:meth:`statement`), and Core
        #: reads need no transaction: each saves the BEGIN and COMMIT/ROLLBACK round trips.
        self.autocommits = not self._queue_writers
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._core_reads = self._autocommit if self.autocommits else self._read_engine
        self._writer_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @asynccontextmanager
    async def _writer_turn(self) -> AsyncIterator[None]:
        """On SQLite, this process's writers take turns (first come, first served) before
        they ask for the database's one write lock: a writer that finds the lock taken
        otherwise sleeps in SQLite's busy handler (1, 2, 5, ... up to 100 ms at a time) even
        when the lock is released long before, which under load kept a workflow's
        control-plane step waiting for seconds. Other processes still meet the busy
        handler. On PostgreSQL (row locks), nothing to wait for.

        Raises TimeoutError after SQLite's busy timeout (30 s), as SQLite would ("database
        is locked")."""
        if not self._queue_writers:
            yield
            return
        loop = asyncio.get_running_loop()
        lock = self._writer_locks.get(loop)
        if lock is None:
            lock = self._writer_locks[loop] = asyncio.Lock()
        await asyncio.wait_for(lock.acquire(), _BUSY_TIMEOUT_MS / 1000)
        try:
            yield
        finally:
            lock.release()

    def __call__(self) -> AsyncSession:
        """A session for reads; every write goes through :meth:`begin`."""
        return self._reads()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: ``async with sessions.begin() as session: ...``."""
        async with self._writer_turn(), self._writes.begin() as session:
            yield session

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for Core reads: each statement is its own snapshot on PostgreSQL
        (autocommit, READ COMMITTED's per-statement snapshot without the BEGIN and ROLLBACK
        round trips); on SQLite one DEFERRED transaction, rolled back at the end."""
        return self._core_reads.connect()

    def statement(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection whose every statement commits by itself (PostgreSQL's autocommit): for
        a write that is one statement, atomic on its own, with no BEGIN and COMMIT round
        trips. Only where :attr:`autocommits` (not SQLite, whose writes must take the write
        lock first: use :meth:`writing` there)."""
        if not self.autocommits:
            raise RuntimeError("single-statement writes need a server database, not SQLite")
        return self._autocommit.connect()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A Core write transaction (committed on success; IMMEDIATE on SQLite):
        ``async with sessions.writing() as conn: ...``."""
        async with self._writer_turn(), self.engine.begin() as conn:
            yield conn


#: Key of the PostgreSQL advisory lock every migrator takes (any constant bigint; this one is
#: the first 8 bytes of sha256("tenant-lifecycle migrations")).
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"tenant-lifecycle migrations").digest()[:8], "big", signed=True
)
#: Alembic's ``command.upgrade`` works through module-level globals (``alembic.context``,
#: ``alembic.op``): two upgrades at once in one process corrupt each other (``KeyError:
#: 'script'``). One upgrade per process at a time, across event loops and threads.
_PROCESS_LOCK = threading.Lock()
#: Databases (rendered URLs) this process has brought to the newest revision.
_MIGRATED: set[str] = set()


async def migrate(engine: AsyncEngine, revision: str = "heads") -> None:
    """Upgrade the schema to ``revision`` (default: the newest, all heads) with Alembic, once
    per process and database, safe from any number of processes at once.

    Within a process, upgrades are serialised and a database this process already brought to
    the heads is skipped. Across processes, each upgrade runs in one transaction holding a
    PostgreSQL advisory lock (:data:`MIGRATION_LOCK_KEY`) or, on SQLite, an exclusive ``flock`` on
    ``<database file>.migrate.lock``: the first migrator upgrades, the others wait for it,
    then find the schema current and do nothing.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database is unreachable or a migration failed.
    """
    key = engine.url.render_as_string(hide_password=False)
    while not _PROCESS_LOCK.acquire(blocking=False):
        await asyncio.sleep(0.02)
    try:
        if revision == "heads" and key in _MIGRATED:
            return
        async with _file_lock(engine.url):
            await _upgrade(engine, revision)
        if revision == "heads":
            _MIGRATED.add(key)
    finally:
        _PROCESS_LOCK.release()


async def _upgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

    def _run(connection: Any) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # held until this transaction ends: the other migrators wait here, then see the
            # committed alembic_version (READ COMMITTED takes a new snapshot per statement)
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(_run)


@asynccontextmanager
async def _file_lock(url: URL) -> AsyncIterator[None]:
    """An exclusive ``flock`` beside a SQLite file (waited for in a thread); a no-op for
    other databases and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    path = Path(f"{url.database}.migrate.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def control_plane_engine(settings: Settings, *, retried: bool = False) -> AsyncEngine:
    """The engine of the control-plane database (DATABASE_URL, default SQLite), with the
    pool of DATABASE_POOL_SIZE and DATABASE_MAX_OVERFLOW.

    ``retried``: every statement runs in an activity that Temporal retries (the worker's
    engine), so checkouts skip the pre-ping round trip: after a database restart one attempt
    fails on a dropped connection, the pool is invalidated, and the retry connects afresh.
    Elsewhere (API, CLI) an error would reach a user, so each checkout is pinged first.
    """
    return create_engine(
        settings.db_url,
        settings.database_pool_size,
        settings.database_max_overflow,
        pre_ping=not retried,
    )
