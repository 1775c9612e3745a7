"""The floor for workflow benchmarks: a bare workflow running ``n`` no-op activities, with no
bookkeeping, on the same server and worker settings as the product."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop(_: int) -> None:
    """Does nothing: measures the engine's own cost of an activity."""


@workflow.defn
class BareWorkflow:
    """Runs ``n`` no-op activities in sequence."""

    @workflow.run
    async def run(self, n: int) -> int:
        for i in range(n):
            await workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=30))
        return n
