"""Operation overhead: N concurrent upgrades through the product's worker against N bare
workflows of no-op activities, on the same dev server in one run.

    .venv/bin/python -m benchmarks.operation_overhead [--operations 300] [--rounds 2]
        [--baseline-activities 10] [--postgres] [--profile DIR]

The dev server is file-backed with the embedded default pragmas (WAL). N tenants are onboarded
first (not timed) with limited-mode billing (no STRIPE_API_KEY: the billing steps run and
record "skipped"). Each round then starts N upgrades at once through the LifecycleClient
(every tenant one plan up: starter, then professional, then enterprise) and awaits them;
then N ``BareWorkflow`` runs of ``--baseline-activities`` regular no-op activities (10: the
target's baseline, the upgrade's activity count before its step records were folded into its
transitions) on a worker with the same activity slots (MAX_CONCURRENT_LIFECYCLE_JOBS) and
workflow runner; then N of the upgrade's own shape (its regular and local activities, read
from one upgrade's history). Rounds alternate the loads so that a drift of the machine's speed
during the run hits both sides; the ratios are over the summed times. The control-plane
database is SQLite, or with ``--postgres`` a scratch PostgreSQL database (created and dropped).

Also reported per phase: the CPU time of this process (client and workers) and of the dev
server per workflow, and the Temporal core's "workflow task duration exceeded" warnings
(TMPRL1104: a workflow task held open over 5 s, e.g. while its local activities waited for a
slot), counted in the core's log (kept in the scratch directory, path printed at the end).
``--profile DIR`` samples this process with py-spy during each round's upgrades and its bare
workflows of the same shape (collapsed stacks in ``DIR/upgrades-<round>.txt`` and
``DIR/shape-<round>.txt``; ``python -m benchmarks.profile_summary --workflows N`` groups them,
per workflow); it slows the run, so take figures from a run without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from temporalio.worker import Worker

from benchmarks.baseline import BareWorkflow, noop
from benchmarks.harness import (
    CoreLogTap,
    bench_settings,
    cpu_seconds,
    dev_server,
    history_activities,
    load_average,
    machine,
    product_stack,
    py_spy,
    scratch_dir,
    scratch_pg_database,
)
from lifecycle.domain.onboarding import OnboardRequest
from worker import workflow_runner

#: Each round upgrades every tenant one plan up.
UPGRADE_PATH = ["starter", "professional", "enterprise"]
#: The Temporal core's warning of a workflow task open longer than 5 s.
SLOW_TASK_WARNING = b"Workflow task duration exceeded"
T = TypeVar("T")


@dataclass
class Phase:
    """Summed measurements of one kind of load over the rounds."""

    seconds: float = 0.0
    cpu_self: float = 0.0  # this process: client and workers
    cpu_server: float = 0.0  # the dev server
    slow_tasks: int = 0  # TMPRL1104 warnings
    runs: int = 0

    def rate(self) -> float:
        return self.runs / self.seconds

    def per_run_ms(self) -> str:
        return (
            f"CPU per workflow {1000 * self.cpu_self / self.runs:.0f} ms here + "
            f"{1000 * self.cpu_server / self.runs:.0f} ms dev server"
        )


@dataclass
class Meter:
    """Measures phases: wall time, CPU of this process and of the dev server, warnings."""

    server_pid: int
    tap: CoreLogTap
    phases: dict[str, Phase] = field(default_factory=dict)

    async def measure(self, name: str, n: int, load: Awaitable[T]) -> T:
        phase = self.phases.setdefault(name, Phase())
        self.tap.count(SLOW_TASK_WARNING)
        cpu0, srv0, t0 = cpu_seconds(os.getpid()), cpu_seconds(self.server_pid), time.perf_counter()
        result = await load
        phase.seconds += time.perf_counter() - t0
        phase.cpu_self += cpu_seconds(os.getpid()) - cpu0
        phase.cpu_server += cpu_seconds(self.server_pid) - srv0
        await asyncio.sleep(0.5)  # the core's log lines of the phase reach the tap
        phase.slow_tasks += self.tap.count(SLOW_TASK_WARNING)
        phase.runs += n
        return result


async def run(
    address: str, meter: Meter, args: argparse.Namespace, database_url: str | None
) -> None:
    n, rounds = args.operations, args.rounds
    work = scratch_dir()
    # starts of 300 workflows at once wait on a busy shared machine: no 5 s RPC bound
    settings = bench_settings(
        work, address, database_url=database_url, temporal_rpc_timeout_seconds=60
    )
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
        meter.tap.count(SLOW_TASK_WARNING)  # not the onboarding's

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

            async def upgrades(plan: str) -> str:
                """N concurrent upgrades to ``plan``; returns one of their workflow ids."""
                started = await asyncio.gather(
                    *(lc.plan_changes.upgrade_tenant(t, plan) for t in tenants)
                )
                await asyncio.gather(*(lc.core.handle(s.workflow_id).result() for s in started))
                return started[0].workflow_id

            async def bare(activities: int, as_local: int, tag: str) -> None:
                """N BareWorkflows of ``activities`` no-ops, the last ``as_local`` local."""
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

            baseline = args.baseline_activities
            phases = meter.phases
            for r, plan in enumerate(UPGRADE_PATH[:rounds]):
                before = {k: p.seconds for k, p in phases.items()}
                profile = args.profile / f"upgrades-{r + 1}.txt" if args.profile else None
                with py_spy(profile):
                    wid = await meter.measure("upgrades", n, upgrades(plan))
                regular, local = await history_activities(lc.core.handle(wid))
                await meter.measure("baseline", n, bare(baseline, 0, f"{r}-all"))
                shape = regular + local
                profile = args.profile / f"shape-{r + 1}.txt" if args.profile else None
                with py_spy(profile):
                    await meter.measure("shape", n, bare(shape, local, f"{r}-shape"))
                up, base, shaped = (phases[k].seconds - before.get(k, 0.0) for k in phases)
                print(
                    f"round {r + 1}: {n} upgrades to {plan} {n / up:5.1f}/s; bare, "
                    f"{baseline} activities {n / base:5.1f}/s (ratio {base / up:.2f}); "
                    f"bare, {regular} + {local} local {n / shaped:5.1f}/s "
                    f"(ratio {shaped / up:.2f}); load {load_average()}"
                )
        views = await asyncio.gather(*(lc.get_tenant(t) for t in tenants))
        upgraded = sum(v.plan == UPGRADE_PATH[rounds - 1] for v in views)

    up, base, shaped = (meter.phases[k] for k in ("upgrades", "baseline", "shape"))
    db = "PostgreSQL" if database_url else "SQLite"
    print(f"\ncontrol-plane database: {db}; {upgraded}/{n} tenants on {UPGRADE_PATH[rounds - 1]}")
    print(f"one upgrade's activities: {regular} regular + {local} local (control-plane steps)")
    print(
        f"all rounds: upgrades {up.rate():.1f}/s; bare, {baseline} activities "
        f"{base.rate():.1f}/s; bare, {regular} + {local} local {shaped.rate():.1f}/s"
    )
    ratio = base.seconds / up.seconds
    print(f"ratio upgrade / bare, {baseline} activities (the target's): {ratio:.2f}")
    print(
        f"ratio upgrade / bare of the same shape ({regular} + {local} local): "
        f"{shaped.seconds / up.seconds:.2f}"
    )
    for name, phase in meter.phases.items():
        print(
            f"{name}: {phase.per_run_ms()}; 'workflow task duration exceeded' warnings: "
            f"{phase.slow_tasks}"
        )


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"load: {args.operations} concurrent operations; dev server file-backed (WAL)")
    print(f"load average at the start: {load_average()}\n")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    work = scratch_dir()
    server = dev_server(work / "temporal.db", None)
    with CoreLogTap(work / "core.log") as tap, server as (address, proc):
        async with contextlib.AsyncExitStack() as stack:
            url = await stack.enter_async_context(scratch_pg_database()) if args.postgres else None
            await run(address, Meter(proc.pid, tap), args, url)
        print(f"load average at the end: {load_average()}")
    print(f"the Temporal core's log: {tap.path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, choices=range(1, 4))
    parser.add_argument(
        "--baseline-activities", type=int, default=10, help="no-op activities of the baseline"
    )
    parser.add_argument("--postgres", action="store_true", help="control plane on PostgreSQL")
    parser.add_argument("--profile", type=Path, help="py-spy the upgrades into this directory")
    asyncio.run(main(parser.parse_args()))
