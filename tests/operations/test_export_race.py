"""Two exports of one tenant at once: the EXPORTING compare-and-set lets one run; the other
is recorded failed with the conflict (it used to stay ``queued`` forever, a phantom that
``--wait`` followed endlessly and ``/status`` counted as running)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant


async def test_the_export_losing_the_race_is_recorded_failed_with_the_conflict(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap, data_export_chunk_size_mb=0.002)
    tenant = uid("race")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, data_key="1")
        both = await asyncio.gather(*(lc.exports.export_tenant(tenant) for _ in range(2)))
        outcomes = []
        for started in both:
            try:
                await asyncio.wait_for(lc.core.handle(started.workflow_id).result(), 60)
                outcomes.append("completed")
            except WorkflowFailureError:
                outcomes.append("failed")
        views = [await lc.exports.get_export(s.export_id) for s in both]
        for started, outcome in zip(both, outcomes, strict=True):
            if outcome == "failed" and (dump := os.environ.get("SAVE_CONFLICT_HISTORY")):
                history = await lc.core.handle(started.workflow_id).fetch_history()
                Path(dump).write_text(history.to_json(), encoding="utf-8")
        status = (await http.get("/status")).json()
    assert sorted(outcomes) == ["completed", "failed"]
    assert sorted(v.status for v in views) == ["completed", "failed"]
    lost = next(v for v in views if v.status == "failed")
    assert lost.error and "EXPORTING" in lost.error, lost.error
    assert status["running_operations"] == {}
