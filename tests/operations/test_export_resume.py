"""Crash and resume on the dev server: a worker stops in the middle of an export, a new
worker finishes it without redoing a completed chunk, and the content is identical."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.exports import ExportActivities
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.exports import ChunkInput, ChunkResult
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.tenants import TenantRepository
from tests.support.export_helpers import export_parts, export_worker, make_app, read_archive
from tests.support.fixtures import make_settings, uid
from tests.support.tenant_data import new_tenant

CRASH_AFTER = 5


class DyingExportActivities(ExportActivities):
    """Completes CRASH_AFTER chunks, then every further chunk hangs like a dying worker."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.completed: list[tuple[str, int, int]] = []
        self.dying = asyncio.Event()

    @activity.defn(name="export_chunk")
    async def export_chunk(self, data: ChunkInput) -> ChunkResult:
        if len(self.completed) >= CRASH_AFTER:
            self.dying.set()
            await asyncio.Event().wait()  # until the worker's shutdown cancels it
        result = await super().export_chunk(data)
        self.completed.append((data.export_id, data.stream, data.seq))
        return result


class CountingExportActivities(ExportActivities):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ran: list[tuple[str, int, int]] = []

    @activity.defn(name="export_chunk")
    async def export_chunk(self, data: ChunkInput) -> ChunkResult:
        self.ran.append((data.export_id, data.stream, data.seq))
        return await super().export_chunk(data)


async def test_worker_crash_mid_export_resumes_identically(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path, projects_per_org=30, files_per_org=6)
    settings = make_settings(tmp_path, data_map_path=app.datamap, data_export_chunk_size_mb=0.002)
    engine = create_engine(settings.db_url)
    await migrate(engine)
    repo = TenantRepository(Sessions(engine))
    tenant = uid("crash")
    lc = LifecycleClient(settings, dev_env.client, repo)
    await new_tenant(lc, tenant, data_key="1")

    parts = export_parts(settings, repo)
    dying = DyingExportActivities(*parts)
    async with export_worker(dev_env.client, settings, repo, dying):
        started = await lc.exports.export_tenant(tenant)
        await asyncio.wait_for(dying.dying.wait(), 60)
        assert (await lc.get_tenant(tenant)).state == "EXPORTING"
    # the first worker is gone with chunks in flight; a new one finishes the export
    counting = CountingExportActivities(*parts)
    async with export_worker(dev_env.client, settings, repo, counting):
        result = await lc.core.handle(started.workflow_id).result()
        view = await lc.exports.get_export(started.export_id)
        again = await lc.exports.export_tenant(tenant)  # a reference export of the same data
        await lc.core.handle(again.workflow_id).result()
        reference = await lc.exports.get_export(again.export_id)

    assert len(dying.completed) >= CRASH_AFTER  # chains run in parallel
    assert not set(dying.completed) & set(counting.ran)  # completed chunks never redone
    assert any(export_id == started.export_id for export_id, _, _ in counting.ran)
    assert view.status == "completed" and result["sha256"] == view.sha256
    assert (await lc.get_tenant(tenant)).state == "ACTIVE"

    archives = settings.exports_dir / "archives" / tenant
    resumed, _ = read_archive((archives / f"{started.export_id}.zip").read_bytes())
    fresh, _ = read_archive((archives / f"{again.export_id}.zip").read_bytes())
    assert resumed["files"] == fresh["files"]
    assert view.size_bytes and reference.size_bytes
    await engine.dispose()
