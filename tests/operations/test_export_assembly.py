"""The assembly beside its chunks (``export-assembly-beside-chunks``): it starts with the
chunks on its own task queue and copies each chunk as it is finished.

Attacked here: one activity slot per queue and two exports at once (a waiting assembly on the
chunks' queue would hold the only slot forever), a chunk failing while the assembly waits,
and the export cancelled while it waits: no archive, no staging, the tenant ACTIVE.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.exports import ExportActivities
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.exports import ChunkInput, ChunkResult, assembly_task_queue
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.tenants import TenantRepository
from tests.support.export_helpers import (
    export_parts,
    export_worker,
    make_app,
    projects,
    read_archive,
    source_rows,
    table_rows,
)
from tests.support.fixtures import make_settings, running_stack, uid
from tests.support.tenant_data import new_tenant

CHUNK_MB = 0.002  # many small chunks: the assembly has chunks to wait for


async def test_two_exports_complete_with_one_slot_per_queue(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path, projects_per_org=30)
    settings = make_settings(
        tmp_path,
        data_map_path=app.datamap,
        data_export_chunk_size_mb=CHUNK_MB,
        max_concurrent_lifecycle_jobs=1,
    )
    tenants = [uid("slot"), uid("slot")]
    async with running_stack(dev_env, settings) as lc:
        for org, tenant in enumerate(tenants, 1):
            await new_tenant(lc, tenant, data_key=str(org))
        started = [await lc.exports.export_tenant(tenant) for tenant in tenants]
        handles = [lc.core.handle(s.workflow_id) for s in started]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 120)
        views = [await lc.exports.get_export(s.export_id) for s in started]
        histories = [await handle.fetch_history() for handle in handles]

    queue = assembly_task_queue(settings.temporal_task_queue)
    for org, (tenant, view, history, result) in enumerate(
        zip(tenants, views, histories, results, strict=True), 1
    ):
        archive = settings.exports_dir / "archives" / tenant / f"{view.export_id}.zip"
        manifest, zipped = read_archive(archive.read_bytes())
        assert view.status == "completed" and result["sha256"] == view.sha256
        assert table_rows(zipped, projects, "app.projects") == source_rows(org, 30)
        assert sum(f.get("rows", 0) for f in manifest["files"]) == 30 + 90
        # the assembly ran on its own queue, scheduled before the first chunk completed
        events = history.events
        scheduled = [
            e
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == "assemble_export"
        ]
        assert [e.activity_task_scheduled_event_attributes.task_queue.name for e in scheduled] == [
            queue
        ]
        types = {
            e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        first_chunk_done = next(
            e.event_id
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and types[e.activity_task_completed_event_attributes.scheduled_event_id]
            == "export_chunk"
        )
        assert scheduled[0].event_id < first_chunk_done
        staged = (settings.exports_dir / "staging" / tenant).rglob("*")
        assert not [p for p in staged if p.is_file()]


class StallingExportActivities(ExportActivities):
    """Chunks 0 and 1 of every stream run; chunk 2 of the first stream to reach it fails
    (``fail``) or waits, heartbeating, until it is cancelled."""

    def __init__(self, *args: Any, fail: bool) -> None:
        super().__init__(*args)
        self.fail = fail
        self.stalled = asyncio.Event()

    @activity.defn(name="export_chunk")
    async def export_chunk(self, data: ChunkInput) -> ChunkResult:
        if data.seq < 2 or self.stalled.is_set():
            return await super().export_chunk(data)
        self.stalled.set()
        if self.fail:
            raise ApplicationError("the data store went away", non_retryable=True)
        while True:  # cancellation arrives with a heartbeat's response
            activity.heartbeat()
            await asyncio.sleep(0.05)


async def assembly_waiting(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the run's assembly is started (waiting for a chunk)."""
    pending = (await handle.describe()).raw_description.pending_activities
    return any(
        a.activity_type.name == "assemble_export"
        and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for a in pending
    )


async def stopped_while_assembling(
    dev_env: WorkflowEnvironment, tmp_path: Path, *, fail: bool
) -> tuple[LifecycleClient, str, str, Path]:
    """Export a tenant with a chunk that fails or stalls once the assembly waits; when it
    stalls, cancel the run. Returns the client, tenant, export id and the exports dir."""
    app = await make_app(tmp_path, projects_per_org=30)
    settings = make_settings(
        tmp_path, data_map_path=app.datamap, data_export_chunk_size_mb=CHUNK_MB
    )
    engine = create_engine(settings.db_url)
    await migrate(engine)
    repo = TenantRepository(Sessions(engine))
    lc = LifecycleClient(settings, dev_env.client, repo)
    tenant = uid("stop")
    await new_tenant(lc, tenant, data_key="1")
    exports = StallingExportActivities(*export_parts(settings, repo), fail=fail)
    async with export_worker(dev_env.client, settings, repo, exports):
        started = await lc.exports.export_tenant(tenant)
        handle = lc.core.handle(started.workflow_id)
        await asyncio.wait_for(exports.stalled.wait(), 60)
        if not fail:
            for _ in range(200):
                if await assembly_waiting(handle):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the assembly never started")
            await handle.cancel()
        for _ in range(400):
            if (await lc.exports.get_export(started.export_id)).status == "failed":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the run ends after recording the failure
        events = (await handle.fetch_history()).events
    await engine.dispose()
    # the assembly stopped with the chunks: its one scheduling ended cancelled, not completed
    (assembly,) = [
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "assemble_export"
    ]
    ended = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    }
    assembly_ended = [
        e.event_type
        for e in events
        if e.event_type in ended and getattr(e, ended[e.event_type]).scheduled_event_id == assembly
    ]
    assert assembly_ended == [EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED]
    return lc, tenant, started.export_id, settings.exports_dir


async def assert_nothing_left(
    lc: LifecycleClient, tenant: str, export_id: str, exports_dir: Path, error: str
) -> None:
    view = await lc.exports.get_export(export_id)
    assert view.status == "failed" and error in (view.error or ""), view
    assert view.sha256 is None and view.download_url is None
    assert (await lc.get_tenant(tenant)).state == "ACTIVE"
    left = [p for area in ("archives", "staging") for p in (exports_dir / area).rglob("*")]
    assert not [p for p in left if p.is_file()], left  # no archive, no temporary, no part


@pytest.mark.parametrize(
    ("fail", "error"), [(True, "the data store went away"), (False, "export cancelled")]
)
async def test_a_failed_chunk_or_a_cancel_stops_the_waiting_assembly(
    dev_env: WorkflowEnvironment, tmp_path: Path, fail: bool, error: str
) -> None:
    lc, tenant, export_id, exports_dir = await stopped_while_assembling(
        dev_env, tmp_path, fail=fail
    )
    await assert_nothing_left(lc, tenant, export_id, exports_dir, error)
