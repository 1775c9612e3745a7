"""Migrations from many processes at once (docker compose's first start: a migrate job, the
API and every worker) and from many tasks of one process (``tenantctl dev``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.engine import make_url

from lifecycle.domain.tenants import OperationUpdate
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.tables import UTCDateTime
from lifecycle.persistence.tenants import TenantRepository


def _heads() -> set[str]:
    """The head revisions of the migration scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from lifecycle.persistence.engine import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(config).get_heads())


HEADS = _heads()


def test_the_migrations_have_one_head() -> None:
    """Branches that each add a migration must be joined by a merge revision: every database
    then reaches one and the same revision."""
    assert len(HEADS) == 1, f"several migration heads: {sorted(HEADS)}"


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_versions(url: str) -> set[str]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return {
            r["version_num"] for r in await conn.fetch("SELECT version_num FROM alembic_version")
        }
    finally:
        await conn.close()


def _upgrade_processes(url: str, tmp_path: Path, n: int) -> list[subprocess.CompletedProcess[str]]:
    """``n`` ``tenantctl db upgrade`` processes started together on ``url``; their results."""
    env = {**os.environ, "DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data")}
    tenantctl = Path(sys.executable).with_name("tenantctl")
    procs = [
        subprocess.Popen(
            [str(tenantctl), "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


async def test_three_migrator_processes_on_a_fresh_postgresql_all_succeed(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    results = await asyncio.to_thread(_upgrade_processes, fresh_pg_url, tmp_path, 3)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-2000:] for r in results]
    assert await _pg_versions(fresh_pg_url) == HEADS


async def test_three_migrator_processes_on_a_fresh_sqlite_file_all_succeed(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}"
    results = await asyncio.to_thread(_upgrade_processes, url, tmp_path, 3)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-2000:] for r in results]


async def test_concurrent_migrations_in_one_process_on_postgresql_all_succeed(
    fresh_pg_url: str,
) -> None:
    """Alembic's command API keeps module-level globals: concurrent upgrades in one process
    used to fail with ``KeyError: 'script'`` or hang on the alembic_version lock."""
    engines = [create_engine(fresh_pg_url) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(migrate(e) for e in engines)), timeout=60)
    finally:
        for engine in engines:
            await engine.dispose()
    assert await _pg_versions(fresh_pg_url) == HEADS


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_operation_runs_migration_keeps_the_existing_operations(
    backend: str, fresh_pg_url: str, tmp_path: Path
) -> None:
    """0003 re-keys ``operations`` by (workflow id, run id): rows written under the old key
    survive with run_id '' and the table then takes a second run of the same workflow id."""
    url = fresh_pg_url if backend == "postgresql" else f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}"
    engine = create_engine(url)
    try:
        for head in ("0002_deletion", "0002_exports", "0002_operation_duration"):
            await migrate(engine, head)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO operations (workflow_id, tenant_id, kind, status, step, "
                    "started_at, finished_at, duration_seconds, error) VALUES ('tenant-acme-"
                    "suspend', 'acme', 'suspend', 'completed', 'completed', :at, :at, 0.5, NULL)"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
            )
        await migrate(engine)
        repo = TenantRepository(Sessions(engine))
        runs = await repo.operation_runs("tenant-acme-suspend")
        assert [(r.run_id, r.status, r.duration_seconds) for r in runs] == [("", "completed", 0.5)]
        update = OperationUpdate(
            workflow_id="tenant-acme-suspend", tenant_id="acme", kind="suspend", status="running"
        )
        await repo.record_operation(update, "run-2")
        assert [r.run_id for r in await repo.operation_runs("tenant-acme-suspend")] == ["run-2", ""]
    finally:
        await engine.dispose()


async def test_control_plane_pool_follows_the_settings(pg_url: str, tmp_path: Path) -> None:
    """DATABASE_POOL_SIZE=2 and DATABASE_MAX_OVERFLOW=0: ten concurrent sessions share two
    PostgreSQL connections (no third is ever opened), and every one of them completes."""
    from sqlalchemy import event

    from lifecycle.persistence.engine import control_plane_engine
    from tests.support.fixtures import make_settings

    settings = make_settings(
        tmp_path, database_url=pg_url, database_pool_size=2, database_max_overflow=0
    )
    engine = control_plane_engine(settings)
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    try:

        async def query() -> int:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT 1 FROM pg_sleep(0.05)"))).scalar_one())

        assert await asyncio.gather(*(query() for _ in range(10))) == [1] * 10
        assert len(opened) == 2
    finally:
        await engine.dispose()


async def test_the_workers_engine_reconnects_after_the_server_dropped_its_connections(
    fresh_pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's engine (``retried=True``) skips the checkout ping: once the server has
    dropped its connections, one statement fails (an activity attempt Temporal retries) and
    the next one reconnects. The API's engine pings, so none of its statements fails, and
    its ping is one round trip."""
    from sqlalchemy.exc import DBAPIError

    from lifecycle.persistence.engine import control_plane_engine
    from tests.support.fixtures import make_settings

    settings = make_settings(tmp_path, database_url=fresh_pg_url, database_pool_size=2)
    worker, api = control_plane_engine(settings, retried=True), control_plane_engine(settings)
    database = make_url(fresh_pg_url).database

    async def query(engine: Any) -> int:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT 1"))).scalar_one())

    try:
        assert [await query(worker), await query(api)] == [1, 1]
        admin = make_url(fresh_pg_url).set(drivername="postgresql", database="postgres")
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            dropped = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await conn.close()
        assert dropped == 2
        assert await query(api) == 1
        # the API's ping is one empty statement, no transaction around it (SQLAlchemy's
        # pool_pre_ping sends BEGIN, the statement and ROLLBACK on asyncpg: three round trips)
        sent: list[str] = []
        for name in ("execute", "fetchrow", "fetch"):
            monkeypatch.setattr(
                asyncpg.Connection, name, _spy(getattr(asyncpg.Connection, name), sent)
            )
        assert await query(api) == 1
        # the ping, then the query's own transaction (its SELECT, a prepared statement, is
        # not among the spied methods)
        assert sent == [";", "BEGIN;", "ROLLBACK;"]
        monkeypatch.undo()
        with pytest.raises(DBAPIError) as failed:
            await query(worker)
        assert failed.value.connection_invalidated
        assert await query(worker) == 1
    finally:
        await worker.dispose()
        await api.dispose()


def _spy(method: Any, sent: list[str]) -> Any:
    """``method`` of asyncpg's Connection, appending the SQL it sends to ``sent``."""

    async def spied(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return await method(self, query, *args, **kwargs)

    return spied
