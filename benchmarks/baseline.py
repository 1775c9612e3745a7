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
    """Runs ``n`` no-op activities in sequence, the last ``local`` of them as local
    activities."""

    @workflow.run
    async def run(self, n: int, local: int = 0) -> int:
        for i in range(n):
            timeout = timedelta(seconds=30)
            if i >= n - local:
                await workflow.execute_local_activity(noop, i, start_to_close_timeout=timeout)
            else:
                await workflow.execute_activity(noop, i, start_to_close_timeout=timeout)
        return n
