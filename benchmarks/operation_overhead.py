"""Operation overhead: N concurrent upgrades through the product's worker against N bare
workflows running as many no-op activities as one upgrade, on the same dev server in one run.

    .venv/bin/python -m benchmarks.operation_overhead [--operations 300] [--postgres]

The dev server is file-backed with the embedded default pragmas (WAL). N tenants are onboarded
first (not timed) with limited-mode billing (no STRIPE_API_KEY: the billing steps run and
record "skipped"). Then all N upgrades free -> starter are started at once through the
LifecycleClient and awaited; then N ``BareWorkflow`` runs with the upgrade's activity count
(read from one upgrade's history, local activities included) on a worker with the same
activity slots (MAX_CONCURRENT_LIFECYCLE_JOBS) and workflow runner: first all of them regular
activities (the target's baseline), then with as many local ones as the upgrade has (the
same shape, for comparison). The control-plane database is SQLite,
or with ``--postgres`` a scratch PostgreSQL database (created and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid

from temporalio.worker import Worker

from benchmarks.baseline import BareWorkflow, noop
from benchmarks.harness import (
    bench_settings,
    dev_server,
    history_activities,
    machine,
    product_stack,
    scratch_dir,
    scratch_pg_database,
)
from lifecycle.models import OnboardRequest
from worker import workflow_runner


async def run(address: str, n: int, database_url: str | None) -> None:
    work = scratch_dir()
    settings = bench_settings(work, address, database_url=database_url)
    async with product_stack(settings) as lc:
        tenants = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        t0 = time.perf_counter()
        onboarded = await asyncio.gather(
            *(
                lc.onboard_tenant(OnboardRequest(tenant_id=t, name=t, email=f"{t}@example.com"))
                for t in tenants
            )
        )
        await asyncio.gather(*(lc.handle(s.workflow_id).result() for s in onboarded))
        print(f"onboarded {n} tenants in {time.perf_counter() - t0:.1f} s (not timed below)")

        t0 = time.perf_counter()
        started = await asyncio.gather(*(lc.upgrade_tenant(t, "starter") for t in tenants))
        await asyncio.gather(*(lc.handle(s.workflow_id).result() for s in started))
        upgrade_seconds = time.perf_counter() - t0
        regular, local = await history_activities(lc.handle(started[0].workflow_id))
        activities = regular + local
        views = await asyncio.gather(*(lc.get_tenant(t) for t in tenants))
        upgraded = sum(v.plan == "starter" for v in views)

        queue = f"bare-{uuid.uuid4().hex[:6]}"
        async with Worker(
            lc.temporal,
            task_queue=queue,
            workflows=[BareWorkflow],
            activities=[noop],
            workflow_runner=workflow_runner(),
            max_concurrent_activities=settings.max_concurrent_lifecycle_jobs,
            max_cached_workflows=settings.worker_max_cached_workflows,
        ):

            async def bare(as_local: int) -> float:
                """Seconds for n BareWorkflows of ``activities`` no-ops, ``as_local`` local."""
                t0 = time.perf_counter()
                handles = await asyncio.gather(
                    *(
                        lc.temporal.start_workflow(
                            BareWorkflow.run,
                            args=[activities, as_local],
                            id=f"{queue}-{as_local}-{i}",
                            task_queue=queue,
                        )
                        for i in range(n)
                    )
                )
                await asyncio.gather(*(h.result() for h in handles))
                return time.perf_counter() - t0

            bare_seconds = await bare(0)
            shaped_seconds = await bare(local)

    upgrade_rate, bare_rate, shaped_rate = (
        n / upgrade_seconds,
        n / bare_seconds,
        n / shaped_seconds,
    )
    db = "PostgreSQL" if database_url else "SQLite"
    print(f"\ncontrol-plane database: {db}; {upgraded}/{n} tenants on 'starter' after")
    print(f"one upgrade's activities: {regular} regular + {local} local (operation steps)")
    print(
        f"upgrade (product):                   {upgrade_rate:6.1f} operations/s "
        f"({upgrade_seconds:.1f} s)"
    )
    print(
        f"bare workflow, {activities} no-op activities:    {bare_rate:6.1f} workflows/s "
        f"({bare_seconds:.1f} s)"
    )
    print(
        f"bare workflow, {regular} no-op + {local} local no-op: {shaped_rate:6.1f} workflows/s "
        f"({shaped_seconds:.1f} s)"
    )
    print(f"ratio upgrade / bare (the target's baseline): {upgrade_rate / bare_rate:.2f}")
    print(f"ratio upgrade / bare of the same shape:       {upgrade_rate / shaped_rate:.2f}")


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"load: {args.operations} concurrent operations; dev server file-backed (WAL)\n")
    with dev_server(scratch_dir() / "temporal.db", None) as (address, _):
        async with contextlib.AsyncExitStack() as stack:
            url = await stack.enter_async_context(scratch_pg_database()) if args.postgres else None
            await run(address, args.operations, url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=300)
    parser.add_argument("--postgres", action="store_true", help="control plane on PostgreSQL")
    asyncio.run(main(parser.parse_args()))
