"""Operation overhead: N concurrent upgrades through the product's worker against N bare
workflows running as many no-op activities as one upgrade, on the same dev server in one run.

    .venv/bin/python -m benchmarks.operation_overhead [--operations 300] [--rounds 2] [--postgres]

The dev server is file-backed with the embedded default pragmas (WAL). N tenants are onboarded
first (not timed) with limited-mode billing (no STRIPE_API_KEY: the billing steps run and
record "skipped"). Each round then starts N upgrades at once through the LifecycleClient
(every tenant one plan up: starter, then professional, then enterprise) and awaits them;
then N ``BareWorkflow`` runs with the upgrade's activity count (read from one upgrade's
history, local activities included) on a worker with the same activity slots
(MAX_CONCURRENT_LIFECYCLE_JOBS) and workflow runner, all of them regular activities (the
target's baseline); then N with as many local ones as the upgrade has (the same shape, for
comparison). Rounds alternate the loads so that a drift of the machine's speed during the run
hits both sides; the ratios are over the summed times. The control-plane database is SQLite,
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
from lifecycle.domain.onboarding import OnboardRequest
from worker import workflow_runner

#: Each round upgrades every tenant one plan up.
UPGRADE_PATH = ["starter", "professional", "enterprise"]


async def run(address: str, n: int, rounds: int, database_url: str | None) -> None:
    work = scratch_dir()
    settings = bench_settings(work, address, database_url=database_url)
    async with product_stack(settings) as lc:
        tenants = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        t0 = time.perf_counter()
        onboarded = await asyncio.gather(
            *(
                lc.onboarding.onboard_tenant(
                    OnboardRequest(tenant_id=t, name=t, email=f"{t}@example.com")
                )
                for t in tenants
            )
        )
        await asyncio.gather(*(lc.core.handle(s.workflow_id).result() for s in onboarded))
        print(f"onboarded {n} tenants in {time.perf_counter() - t0:.1f} s (not timed below)")

        queue = f"bare-{uuid.uuid4().hex[:6]}"
        async with Worker(
            lc.temporal,
            task_queue=queue,
            workflows=[BareWorkflow],
            activities=[noop],
            workflow_runner=workflow_runner(),
            max_concurrent_activities=settings.max_concurrent_lifecycle_jobs,
            max_concurrent_local_activities=settings.max_concurrent_lifecycle_jobs,
            max_cached_workflows=settings.worker_max_cached_workflows,
        ):

            async def upgrades(plan: str) -> tuple[float, str]:
                """Seconds for n concurrent upgrades to ``plan``; one of their workflow ids."""
                t0 = time.perf_counter()
                started = await asyncio.gather(
                    *(lc.plan_changes.upgrade_tenant(t, plan) for t in tenants)
                )
                await asyncio.gather(*(lc.core.handle(s.workflow_id).result() for s in started))
                return time.perf_counter() - t0, started[0].workflow_id

            async def bare(activities: int, as_local: int, tag: str) -> float:
                """Seconds for n BareWorkflows of ``activities`` no-ops, ``as_local`` local."""
                t0 = time.perf_counter()
                handles = await asyncio.gather(
                    *(
                        lc.temporal.start_workflow(
                            BareWorkflow.run,
                            args=[activities, as_local],
                            id=f"{queue}-{tag}-{i}",
                            task_queue=queue,
                        )
                        for i in range(n)
                    )
                )
                await asyncio.gather(*(h.result() for h in handles))
                return time.perf_counter() - t0

            totals = [0.0, 0.0, 0.0]
            for r, plan in enumerate(UPGRADE_PATH[:rounds]):
                up, wid = await upgrades(plan)
                regular, local = await history_activities(lc.core.handle(wid))
                base = await bare(regular + local, 0, f"{r}-all")
                shaped = await bare(regular + local, local, f"{r}-shape")
                for i, seconds in enumerate((up, base, shaped)):
                    totals[i] += seconds
                print(
                    f"round {r + 1}: {n} upgrades to {plan} {n / up:5.1f}/s; bare, "
                    f"{regular + local} activities {n / base:5.1f}/s (ratio {base / up:.2f}); "
                    f"bare, {regular} + {local} local {n / shaped:5.1f}/s "
                    f"(ratio {shaped / up:.2f})"
                )
        views = await asyncio.gather(*(lc.get_tenant(t) for t in tenants))
        upgraded = sum(v.plan == UPGRADE_PATH[rounds - 1] for v in views)

    up, base, shaped = totals
    db = "PostgreSQL" if database_url else "SQLite"
    print(f"\ncontrol-plane database: {db}; {upgraded}/{n} tenants on {UPGRADE_PATH[rounds - 1]}")
    print(f"one upgrade's activities: {regular} regular + {local} local (control-plane steps)")
    print(f"all rounds: upgrades {rounds * n / up:.1f}/s; bare {rounds * n / base:.1f}/s")
    print(f"ratio upgrade / bare, {regular + local} activities (the target's): {base / up:.2f}")
    print(f"ratio upgrade / bare of the same shape ({regular} + {local} local): {shaped / up:.2f}")


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"load: {args.operations} concurrent operations; dev server file-backed (WAL)\n")
    with dev_server(scratch_dir() / "temporal.db", None) as (address, _):
        async with contextlib.AsyncExitStack() as stack:
            url = await stack.enter_async_context(scratch_pg_database()) if args.postgres else None
            await run(address, args.operations, args.rounds, url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, choices=range(1, 4))
    parser.add_argument("--postgres", action="store_true", help="control plane on PostgreSQL")
    asyncio.run(main(parser.parse_args()))
