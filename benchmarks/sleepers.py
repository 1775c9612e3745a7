"""The floor for soft deletes: a worker process of bare workflows that start and sleep.

    python -m benchmarks.sleepers ADDRESS TASK_QUEUE COUNT_FILE [--cache N] [--slots N]

``SleepingWorkflow`` runs one no-op local activity (it counts the run as arrived: this
process writes the count to COUNT_FILE every 0.2 s) and then sleeps ``days`` on a durable
timer, as a soft-deleted tenant's workflow waits on its retention. Same sandbox, sticky
cache and activity slots as the product's worker (``benchmarks/pending_timers.py``).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

ARRIVED = [0]


@activity.defn
async def arrive() -> None:
    """Counts one workflow as having reached its timer."""
    ARRIVED[0] += 1


@workflow.defn
class SleepingWorkflow:
    """Starts, marks its arrival, and sleeps ``days``."""

    @workflow.run
    async def run(self, days: int) -> None:
        await workflow.execute_local_activity(arrive, start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(timedelta(days=days))


async def main(args: argparse.Namespace) -> None:
    from worker import warm_bytecode, workflow_runner

    warm_bytecode(SleepingWorkflow)
    client = await Client.connect(args.address)
    count_file = Path(args.count_file)

    async def report() -> None:
        while True:
            count_file.write_text(str(ARRIVED[0]))
            await asyncio.sleep(0.2)

    reporter = asyncio.create_task(report())
    async with Worker(
        client,
        task_queue=args.task_queue,
        workflows=[SleepingWorkflow],
        activities=[arrive],
        workflow_runner=workflow_runner(),
        max_concurrent_activities=args.slots,
        max_concurrent_local_activities=args.slots,
        max_cached_workflows=args.cache,
    ):
        await reporter


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("task_queue")
    parser.add_argument("count_file")
    parser.add_argument("--cache", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
