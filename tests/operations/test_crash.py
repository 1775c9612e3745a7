"""Crash and restart survival: worker *processes* SIGKILLed at a fault point
(``lifecycle.faults``) and a restarted Temporal server; each test checks the end state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.onboarding import OnboardRequest
from lifecycle.domain.states import TenantState
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.tenants import TenantRepository
from tests.support.crash import file_dev_server, worker_process
from tests.support.export_helpers import make_app, read_archive
from tests.support.fixtures import make_settings, uid
from tests.support.plan_fixtures import billing_settings, onboarded
from tests.support.stripe_server import PERIOD_SECONDS, StripeServer
from tests.support.tenant_data import counts, make_app_data, new_tenant, skip_to_result, wait_state


def target(env: WorkflowEnvironment | Client) -> str:
    client = env.client if isinstance(env, WorkflowEnvironment) else env
    return client.service_client.config.target_host


@contextlib.asynccontextmanager
async def client_for(settings: Settings, temporal: Client) -> AsyncIterator[LifecycleClient]:
    """A LifecycleClient on the settings' database; the workers are separate processes."""
    engine = create_engine(settings.db_url)
    await migrate(engine)
    try:
        yield LifecycleClient(settings, temporal, TenantRepository(Sessions(engine)))
    finally:
        await engine.dispose()


async def test_onboarding_killed_after_billing_completes_once(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, temporal_address=target(dev_env))
    tenant = uid("crash")
    async with client_for(settings, dev_env.client) as lc:
        fault = "billing.after_start_subscription"
        async with worker_process(settings, tmp_path / "w1.log", fault) as w1:
            started = await lc.onboarding.onboard_tenant(
                OnboardRequest(tenant_id=tenant, name="C", email="c@c.io", plan="starter")
            )
            await w1.wait_killed()
        assert not await lc.repository.exists(tenant)
        async with worker_process(settings, tmp_path / "w2.log"):
            result = await lc.core.handle(started.workflow_id).result()
        assert result["state"] == "ACTIVE"
        events = await lc.repository.events(tenant)
        assert [(e.operation, e.to_state) for e in events] == [("onboard", "ACTIVE")]


async def test_upgrade_killed_after_provisioning_bills_exactly_once(
    dev_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    settings = billing_settings(tmp_path, stripe_server, temporal_address=target(dev_env))
    async with client_for(settings, dev_env.client) as lc:
        async with worker_process(settings, tmp_path / "w0.log"):
            tenant = await onboarded(lc, "starter", prefix="upcrash")
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        fault = "provisioning.after_provision"
        async with worker_process(settings, tmp_path / "w1.log", fault) as w1:
            started = await lc.plan_changes.upgrade_tenant(tid, "professional")
            await w1.wait_killed()
        # killed after the new entitlements were written, before any billing call
        assert (await lc.get_tenant(tid)).entitlements["users"] == 50
        assert stripe_server.price_changes == []
        async with worker_process(settings, tmp_path / "w2.log"):
            result = await lc.core.handle(started.workflow_id).result()
        after = await lc.get_tenant(tid)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "professional"), result
        assert stripe_server.item_price(sub) == "price_professional"
        changes = [e for e in stripe_server.mutations() if "subscription_items" in e.path]
        assert len(changes) == 1 and len(stripe_server.price_changes) == 1


async def test_export_killed_mid_way_gives_the_same_manifest(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILL right after the 3rd chunk was written; the new worker finds its sidecar, does
    the rest, and the archive lists the same files (paths, rows, sizes, SHA-256) as an
    uninterrupted export of the same data."""
    app = await make_app(tmp_path, projects_per_org=30, files_per_org=6)
    settings = make_settings(
        tmp_path,
        temporal_address=target(dev_env),
        data_map_path=app.datamap,
        data_export_chunk_size_mb=0.002,
    )
    tenant = uid("expcrash")
    async with client_for(settings, dev_env.client) as lc:
        await new_tenant(lc, tenant, data_key="1")
        async with worker_process(settings, tmp_path / "w1.log", "export.after_chunk@3") as w1:
            started = await lc.exports.export_tenant(tenant)
            await w1.wait_killed()
        assert (await lc.get_tenant(tenant)).state is TenantState.EXPORTING
        async with worker_process(settings, tmp_path / "w2.log"):
            await lc.core.handle(started.workflow_id).result()
            again = await lc.exports.export_tenant(tenant)
            await lc.core.handle(again.workflow_id).result()
        assert (await lc.get_tenant(tenant)).state is TenantState.ACTIVE
        archives = settings.exports_dir / "archives" / tenant
        resumed, _ = read_archive((archives / f"{started.export_id}.zip").read_bytes())
        fresh, _ = read_archive((archives / f"{again.export_id}.zip").read_bytes())
        assert resumed["files"] == fresh["files"] and len(resumed["files"]) > 3


async def test_purge_killed_mid_batch_empties_every_store(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILL between two delete batches of one table; a new worker process resumes."""
    tenant, other = uid("purge"), uid("keep")
    # no sticky cache: the time-skipping server does not move a dead worker's sticky tasks
    # back to the shared queue (the dev server and real clusters do, after 5 s)
    settings = make_settings(
        tmp_path,
        purge_batch_rows=4,
        temporal_address=target(time_env),
        worker_max_cached_workflows=0,
    )
    app = await make_app_data(tmp_path, settings.exports_dir, [tenant, other])
    settings.data_map_path = app.datamap
    async with client_for(settings, time_env.client) as lc:
        async with worker_process(settings, tmp_path / "w0.log"):
            await new_tenant(lc, tenant)
            await new_tenant(lc, other)
        before = await counts(app, settings.exports_dir, tenant)
        fault = "purge.batch:app.notes@2"
        async with worker_process(settings, tmp_path / "w1.log", fault) as w1:
            started = await lc.deletion.delete_tenant(
                tenant, DeleteRequest(requested_by="dpo@x.io")
            )
            await wait_state(lc, tenant, TenantState.DELETED)
            await time_env.sleep(timedelta(days=30, seconds=1))
            await w1.wait_killed()
        partial = await counts(app, settings.exports_dir, tenant)
        assert 0 < partial["app.notes"]["rows"] < before["app.notes"]["rows"]
        # the killed attempt is retried once its heartbeat (20 s) times out
        async with worker_process(settings, tmp_path / "w2.log"):
            result = await skip_to_result(time_env, lc.core.handle(started.workflow_id))
        assert result["outcome"] == "purged"
        after = await counts(app, settings.exports_dir, tenant)
        assert all(not any(v.values()) for v in after.values()), after
        assert await counts(app, settings.exports_dir, other) == app.expected()
        cert = await lc.deletion.deletion_certificate(tenant)
        for store, numbers in before.items():
            if store in cert.document["stores"]:
                assert cert.document["stores"][store]["before"] == numbers, store


async def test_dev_server_restart_during_downgrade_wait(
    tmp_path: Path, stripe_server: StripeServer
) -> None:
    """The server (same database file) goes down while a period-end downgrade waits on its
    timer; after the restart the downgrade happens when due."""
    # the subscription's period ends ~20 s from now (a Stripe test clock set back a period)
    stripe_server.clock_offset = -(PERIOD_SECONDS - 20)
    with file_dev_server(tmp_path) as server:
        settings = billing_settings(tmp_path, stripe_server, temporal_address=server.address)
        async with (
            client_for(settings, await server.client()) as lc,
            worker_process(settings, tmp_path / "worker.log"),
        ):
            tenant = await onboarded(lc, "professional", prefix="restart")
            tid, sub = tenant.tenant_id, tenant.billing_subscription_id
            started = await lc.plan_changes.downgrade_tenant(tid, "starter")
            for _ in range(100):
                if (await lc.get_tenant(tid)).pending_plan_change:
                    break
                await asyncio.sleep(0.1)
            assert (await lc.get_tenant(tid)).plan == "professional"
            server.stop()
            await asyncio.sleep(3)
            server.start()
            lc.core.temporal = await server.client()
            result = await asyncio.wait_for(lc.core.handle(started.workflow_id).result(), 90)
            after = await lc.get_tenant(tid)
            assert (after.plan, after.state, after.pending_plan_change) == (
                "starter",
                TenantState.ACTIVE,
                None,
            ), result
            assert stripe_server.item_price(sub) == "price_starter"
            assert stripe_server.price_changes[-1]["proration_behavior"] == "none"
