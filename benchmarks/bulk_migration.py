"""Bulk plan migration at the billing rate limit (issue 19, target 5): how close a migration of
``--tenants`` tenants comes to BILLING_RATE_LIMIT.

    .venv/bin/python -m benchmarks.bulk_migration [--tenants 10000] [--rate 25] [--workers 2]
        [--mode stripe|limited] [--concurrency 100]

One Temporal dev server (in memory), one scratch PostgreSQL database on 127.0.0.1:5432
(created, migrated, dropped at the end) and ``--workers`` worker processes (``python
worker.py``) with BILLING_RATE_LIMIT=``--rate``. ``--tenants`` ACTIVE tenants on ``starter``
are written straight to the control plane (untimed); then one migration starter ->
professional runs through the LifecycleClient: one child upgrade per tenant, each making one
billing write (the subscription item's price change).

``--mode stripe`` (default): billing goes to the Stripe-compatible server of the tests, run in
this process on 127.0.0.1, each tenant with a seeded subscription; the server enforces the
same limit (429 with Retry-After) and counts the 429s it answered. ``--mode limited``: no
STRIPE_API_KEY; each skipped write still takes its slot of the limit.

Achieved writes/s = writes / seconds between the first and the last write (stripe mode: the
server's journal; limited mode: the upgrades' finish times in the control plane), and the
same over the whole migration (start request to result). The ratio printed is achieved /
limit; the target is >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import datetime

from benchmarks.harness import (
    bench_settings,
    dev_server,
    machine,
    scratch_dir,
    scratch_pg_database,
    worker_process,
)
from lifecycle.client.base import task_queue_pollers
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.plan_migrations import PlanMigrationProgress, PlanMigrationRequest
from lifecycle.domain.plans import load_plans
from tests.support.crash import settings_env
from tests.support.plan_fixtures import seeded
from tests.support.stripe_server import StripeServer

ITEMS = "/v1/subscription_items/"
TICKS = os.sysconf("SC_CLK_TCK")
PROGRESS_SECONDS = 60.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_ticks() -> tuple[int, int]:
    """``(busy, total)`` jiffies of all cores so far (/proc/stat), everyone's processes."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


async def wait_pollers(lc: LifecycleClient, count: int) -> None:
    """Until ``count`` workers poll the task queue (at most ~60 s)."""
    for _ in range(200):
        pollers = await task_queue_pollers(
            lc.temporal, lc.settings.temporal_namespace, lc.settings.temporal_task_queue
        )
        if len(pollers) >= count:
            return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{count} workers did not start polling")


async def write_times(
    lc: LifecycleClient, server: StripeServer | None, ids: list[str]
) -> list[float]:
    """Seconds (monotonic in stripe mode, unix otherwise) of every successful billing write."""
    if server is not None:
        return sorted(
            e.at_ns / 1e9 for e in server.journal if e.path.startswith(ITEMS) and e.status == 200
        )
    times = []
    for tenant_id in ids:
        op = await lc.repository.operation(f"tenant-{tenant_id}-upgrade")
        if op is not None and op.finished_at is not None:
            times.append(datetime.timestamp(op.finished_at))
    return sorted(times)


async def report_progress(lc: LifecycleClient, migration_id: str, began: float) -> None:
    """Every PROGRESS_SECONDS, print the tenants done and failed so far and the rate of the
    last interval, so that a run stopped early still leaves its figures."""
    last_done, last_at = 0, began
    while True:
        await asyncio.sleep(PROGRESS_SECONDS)
        progress = await lc.plan_migrations.progress(migration_id)
        now = time.perf_counter()
        rate = (progress.done - last_done) / (now - last_at)
        print(
            f"  +{now - began:6.0f} s: done {progress.done}, failed {progress.failed}, "
            f"in flight {progress.in_flight}, remaining {progress.remaining}; "
            f"{rate:.2f}/s over the last {now - last_at:.0f} s",
            flush=True,
        )
        last_done, last_at = progress.done, now


async def run(args: argparse.Namespace) -> None:
    work = scratch_dir()
    server: StripeServer | None = None
    if args.mode == "stripe":
        server = StripeServer()
        for plan in load_plans().plans:
            server.add_price(plan.price_id, plan.monthly_price_cents)
        await server.start()
    with dev_server() as (address, _):
        async with scratch_pg_database() as db_url:
            billing: dict[str, object] = {}
            if server is not None:
                billing = {"stripe_api_key": server.api_key, "stripe_api_base": server.url}
            settings = bench_settings(
                work, address, database_url=db_url, billing_rate_limit=args.rate, **billing
            )
            lc = await LifecycleClient.connect(settings)
            workers = [worker_process(settings_env(settings)) for _ in range(args.workers)]
            try:
                await wait_pollers(lc, args.workers)
                seed_start = time.perf_counter()
                ids = await seeded(lc.repository, server, "starter", args.tenants, "bulk")
                seed_s = time.perf_counter() - seed_start
                if server is not None:
                    server.rate_limit = args.rate
                began, busy0 = time.perf_counter(), machine_ticks()
                cpu0 = sum(cpu_seconds(p.pid) for p in workers)
                started = await lc.plan_migrations.start(
                    PlanMigrationRequest(
                        from_plan="starter", to_plan="professional", concurrency=args.concurrency
                    )
                )
                reporter = asyncio.create_task(report_progress(lc, started.migration_id, began))
                try:
                    final = PlanMigrationProgress.model_validate(
                        await lc.core.handle(started.workflow_id).result()
                    )
                finally:
                    reporter.cancel()
                wall = time.perf_counter() - began
                workers_cpu = sum(cpu_seconds(p.pid) for p in workers) - cpu0
                busy1 = machine_ticks()
                busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
                times = await write_times(lc, server, ids)
            finally:
                for proc in workers:
                    proc.terminate()
                for proc in workers:
                    proc.wait(timeout=60)
                await lc.close()
    if server is not None:
        await server.stop()
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    steady = (len(times) - 1) / span
    overall = len(times) / wall
    print(f"machine: {machine()} (shared)")
    print(
        f"bulk migration: {args.tenants} tenants starter -> professional, mode {args.mode}, "
        f"{args.workers} worker process(es), BILLING_RATE_LIMIT={args.rate}/s, "
        f"concurrency {args.concurrency}; seeding {seed_s:.1f} s (untimed)"
    )
    print(
        f"  result: {final.status}, done {final.done}, failed {final.failed}; "
        f"{len(times)} billing writes"
        + (f", 429 answers {server.rate_limited}" if server is not None else "")
    )
    print(f"  first to last write: {span:.1f} s -> {steady:.2f} writes/s")
    print(f"  whole migration (start request to result): {wall:.1f} s -> {overall:.2f} writes/s")
    print(
        f"  CPU: worker processes {workers_cpu:.0f} s ({workers_cpu / wall:.2f} cores); "
        f"machine busy {busy:.0%} of {os.cpu_count()} cores (everyone's processes)"
    )
    print(
        f"  ratio achieved / limit: {steady / args.rate:.3f} (whole run {overall / args.rate:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=25.0, help="BILLING_RATE_LIMIT (writes/s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--mode", choices=("stripe", "limited"), default="stripe")
    parser.add_argument("--concurrency", type=int, default=100, help="children in flight")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
