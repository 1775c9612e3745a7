"""Worker processes as an operator runs them: several on one host, and a graceful stop
(SIGTERM) in the middle of an export."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from lifecycle.cli.app import app as cli
from lifecycle.client.base import task_queue_pollers
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.dev.devserver import free_port
from lifecycle.domain.onboarding import OnboardRequest
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.tenants import TenantRepository
from tests.support.crash import WorkerProcess
from tests.support.export_helpers import make_app, read_archive
from tests.support.fixtures import make_settings, uid
from tests.support.tenant_data import new_tenant

runner = CliRunner()


async def _wait_pollers(lc: LifecycleClient, n: int, timeout: float = 60) -> list[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        pollers = await task_queue_pollers(
            lc.temporal, lc.settings.temporal_namespace, lc.settings.temporal_task_queue
        )
        if len(pollers) >= n or loop.time() > deadline:
            return pollers
        await asyncio.sleep(0.3)


async def _client(env: WorkflowEnvironment, settings: Settings) -> LifecycleClient:
    engine = create_engine(settings.db_url)
    await migrate(engine)
    return LifecycleClient(settings, env.client, TenantRepository(Sessions(engine)))


def _address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def test_two_workers_with_default_settings_run_on_one_host(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The SDK metrics port used to default to 9464: the second worker on a host crashed with
    "Address already in use". Off by default, two workers poll side by side."""
    settings = make_settings(tmp_path, temporal_address=_address(dev_env))
    lc = await _client(dev_env, settings)
    health_env = {
        "TEMPORAL_ADDRESS": settings.temporal_target,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "DATA_DIR": str(settings.data_dir),
    }
    health = ["health", "--worker", "--timeout", "5"]
    before = await asyncio.to_thread(runner.invoke, cli, health, env=health_env)
    workers = [
        WorkerProcess(settings, tmp_path / f"worker{i}.log", sdk_metrics_port=None)
        for i in range(2)
    ]
    try:
        pollers = await _wait_pollers(lc, 2)
        alive = [w.proc.poll() is None for w in workers]
        after = await asyncio.to_thread(runner.invoke, cli, health, env=health_env)
        tenant = uid("two")
        started = await lc.onboarding.onboard_tenant(
            OnboardRequest(tenant_id=tenant, name="Two", email="ops@two.io")
        )
        await asyncio.wait_for(lc.core.handle(started.workflow_id).result(), 60)
    finally:
        for w in workers:
            w.stop()
        await lc.close()
    assert alive == [True, True], [w.log.read_text()[-2000:] for w in workers]
    assert len(set(pollers)) == 2
    # `tenantctl health --worker`, the worker container's healthcheck
    assert before.exit_code == 1 and "no worker of host" in before.output, before.output
    assert after.exit_code == 0 and "2 worker(s) of host" in after.output, after.output
    assert (await _tenant_state(settings, tenant)) == "ACTIVE"


async def _tenant_state(settings: Settings, tenant: str) -> str:
    engine = create_engine(settings.db_url)
    try:
        return (await TenantRepository(Sessions(engine)).get(tenant)).state.value
    finally:
        await engine.dispose()


async def test_a_taken_sdk_metrics_port_fails_with_a_message_naming_the_setting(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, temporal_address=_address(dev_env))
    lc = await _client(dev_env, settings)
    port = free_port()
    first = WorkerProcess(settings, tmp_path / "first.log", sdk_metrics_port=port)
    try:
        await _wait_pollers(lc, 1)
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        second = WorkerProcess(settings, tmp_path / "second.log", sdk_metrics_port=port)
        code = await asyncio.to_thread(second.proc.wait, 60)
    finally:
        first.stop()
        await lc.close()
    log = (tmp_path / "second.log").read_text()
    assert "temporal_" in scraped  # the first worker serves the SDK's metrics
    assert code == 2
    assert f"SDK_METRICS_PORT={port}" in log and "Traceback" not in log, log


async def test_sigterm_mid_export_stops_gracefully_and_a_new_worker_completes_it(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The worker waited 0 s before cancelling activities. Now SIGTERM stops polling, lets
    the running chunks finish (WORKER_GRACEFUL_SHUTDOWN_SECONDS) and exits 0; a replacement
    finishes the export, whose archive equals a reference export of the same data."""
    app = await make_app(tmp_path, projects_per_org=300, files_per_org=30)
    settings = make_settings(
        tmp_path,
        temporal_address=_address(dev_env),
        data_map_path=app.datamap,
        data_export_chunk_size_mb=0.002,
        max_concurrent_lifecycle_jobs=2,
        worker_graceful_shutdown_seconds=20,
    )
    lc = await _client(dev_env, settings)
    tenant = uid("term")
    await new_tenant(lc, tenant, data_key="1")
    first = WorkerProcess(settings, tmp_path / "first.log")
    try:
        started = await lc.exports.export_tenant(tenant)
        for _ in range(600):
            view = await lc.exports.get_export(started.export_id)
            if view.progress.get("chunks_done", 0) > 0 or view.status != "queued":
                break
            await asyncio.sleep(0.05)
        status_at_sigterm = view.status
        first.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(first.proc.wait, 60)
        second = WorkerProcess(settings, tmp_path / "second.log")
        try:
            result = await asyncio.wait_for(lc.core.handle(started.workflow_id).result(), 120)
            again = await lc.exports.export_tenant(tenant)
            await asyncio.wait_for(lc.core.handle(again.workflow_id).result(), 120)
        finally:
            second.stop()
        final = await lc.exports.get_export(started.export_id)
    finally:
        first.stop()
        await lc.close()
    log = (tmp_path / "first.log").read_text()
    assert status_at_sigterm in ("queued", "running"), status_at_sigterm
    assert code == 0, log[-3000:]
    assert "will wait 0:00:20 before cancelling activities" in log, log[-3000:]
    assert final.status == "completed" and result["sha256"] == final.sha256
    archives = settings.exports_dir / "archives" / tenant
    resumed, _ = read_archive((archives / f"{started.export_id}.zip").read_bytes())
    fresh, _ = read_archive((archives / f"{again.export_id}.zip").read_bytes())
    assert resumed["files"] == fresh["files"]
