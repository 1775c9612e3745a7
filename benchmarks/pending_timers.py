"""Pending retention timers at scale: M soft-deleted tenants whose DeletionWorkflows wait on
30-90 day timers, served by one worker process with a small sticky cache.

    .venv/bin/python -m benchmarks.pending_timers [--tenants 10000] [--cache 1000]

File-backed dev server with the embedded default pragmas (WAL); the worker is ``python
worker.py`` configured through environment variables (WORKER_MAX_CACHED_WORKFLOWS=--cache,
the product's default unless given).
Tenants are written directly with ``TenantRepository.create_tenant``; deletions start through
``LifecycleClient.delete_tenant`` (retention 30..90 days, spread), ``--concurrency`` at a time.
Prints deletions/s (until every tenant is DELETED), the worker's RSS after each quarter
started and each quarter DELETED, the dev server's database size (db + -wal), then restarts
the worker with a cache of 10 and times onboarding + upgrade of one new tenant.

Baseline, on the same server once the deletions wait: as many bare workflows that start and
sleep (``benchmarks/sleepers.py``, a worker process of the same settings), started with the
same concurrency; their rate, the ratio, and that worker's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.harness import (
    bench_settings,
    dev_server,
    machine,
    rss_mb,
    scratch_dir,
    worker_process,
)
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.domain.billing import BillingResult
from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.persistence.tables import Tenant
from tests.support.crash import settings_env


async def deleted_count(lc: LifecycleClient) -> int:
    async with lc.repository.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Tenant).where(Tenant.state == "DELETED")
            )
            or 0
        )


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    work = scratch_dir()
    db_file = work / "temporal.db"
    with dev_server(db_file, None) as (address, _):
        # generous RPC deadline: this shared machine can stall the dev server for seconds
        settings = bench_settings(work, address, temporal_rpc_timeout_seconds=60)
        lc = await LifecycleClient.connect(settings)
        env = settings_env(settings)
        tenants = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(args.tenants)]
        t0 = time.perf_counter()
        for t in tenants:
            await lc.repository.create_tenant(
                CreateTenantInput(
                    request=OnboardRequest(tenant_id=t, name=t, email=f"{t}@example.com"),
                    limits={},
                    billing=BillingResult(skipped=True),
                    workflow_id=f"seed-{t}",
                    actor="bench",
                )
            )
        print(
            f"created {args.tenants} tenants in the control plane in "
            f"{time.perf_counter() - t0:.0f} s"
        )
        worker = worker_process({**env, "WORKER_MAX_CACHED_WORKFLOWS": str(args.cache)})
        try:
            await asyncio.sleep(3)
            print(f"worker RSS at start: {rss_mb(worker.pid):.0f} MB (cache {args.cache})")
            sem = asyncio.Semaphore(args.concurrency)

            async def delete(i: int, t: str) -> None:
                async with sem:
                    days = 30 + i % 61
                    await lc.deletion.delete_tenant(
                        t, DeleteRequest(requested_by="bench", retention_days=days)
                    )

            t0 = time.perf_counter()
            quarter = max(1, args.tenants // 4)
            for q in range(0, args.tenants, quarter):
                await asyncio.gather(
                    *(delete(i, t) for i, t in enumerate(tenants[q : q + quarter], q))
                )
                done = min(args.tenants, q + quarter)
                print(
                    f"  {done:6d} deletions started after {time.perf_counter() - t0:6.1f} s; "
                    f"worker RSS {rss_mb(worker.pid):.0f} MB"
                )
            mark = quarter
            while (n := await deleted_count(lc)) < args.tenants:
                if n >= mark:
                    print(
                        f"  {n:6d} tenants DELETED after {time.perf_counter() - t0:6.1f} s; "
                        f"worker RSS {rss_mb(worker.pid):.0f} MB"
                    )
                    mark = (n // quarter + 1) * quarter
                await asyncio.sleep(1)
            seconds = time.perf_counter() - t0
            print(
                f"all {n} tenants DELETED, workflows waiting on timers: {seconds:.1f} s = "
                f"{args.tenants / seconds:.1f} deletions/s"
            )
            await asyncio.sleep(5)
            running = (await lc.temporal.count_workflows("ExecutionStatus='Running'")).count
            print(
                f"worker RSS after settling: {rss_mb(worker.pid):.0f} MB; "
                f"{running} running workflows"
            )
        finally:
            worker.terminate()
            worker.wait()
        disk = sum(p.stat().st_size for p in work.glob("temporal.db*"))
        print(f"dev server database on disk (db + -wal + -shm): {disk / 1e6:.0f} MB")

        # the baseline on the same server, with the deletions pending: as many bare
        # workflows that start and sleep, same concurrency of starts, worker settings alike
        queue, count_file = f"sleepers-{uuid.uuid4().hex[:6]}", work / "arrived"
        sleepers = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.sleepers",
                address,
                queue,
                str(count_file),
                "--cache",
                str(args.cache),
                "--slots",
                str(settings.max_concurrent_lifecycle_jobs),
            ],
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            while not count_file.exists():
                await asyncio.sleep(0.2)
            print(f"bare worker RSS at start: {rss_mb(sleepers.pid):.0f} MB")
            from benchmarks.sleepers import SleepingWorkflow

            async def sleep_start(i: int) -> None:
                async with sem:
                    await lc.temporal.start_workflow(
                        SleepingWorkflow.run, 30 + i % 61, id=f"{queue}-{i}", task_queue=queue
                    )

            t0 = time.perf_counter()
            await asyncio.gather(*(sleep_start(i) for i in range(args.tenants)))
            print(f"  {args.tenants} bare starts after {time.perf_counter() - t0:.1f} s")
            while int(count_file.read_text() or 0) < args.tenants:
                await asyncio.sleep(0.2)
            bare_s = time.perf_counter() - t0
            print(
                f"all {args.tenants} bare workflows sleeping: {bare_s:.1f} s = "
                f"{args.tenants / bare_s:.1f}/s; bare worker RSS {rss_mb(sleepers.pid):.0f} MB"
            )
            print(
                f"ratio soft deletes / bare start-and-sleep: {bare_s / seconds:.2f} "
                f"({args.tenants / seconds:.1f} vs {args.tenants / bare_s:.1f} per second)"
            )
        finally:
            sleepers.terminate()
            sleepers.wait()

        worker = worker_process({**env, "WORKER_MAX_CACHED_WORKFLOWS": "10"})
        try:
            t = f"new-{uuid.uuid4().hex[:8]}"
            t0 = time.perf_counter()
            started = await lc.onboarding.onboard_tenant(
                OnboardRequest(tenant_id=t, name=t, email=f"{t}@example.com")
            )
            await lc.core.handle(started.workflow_id).result()
            onboard_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            up = await lc.plan_changes.upgrade_tenant(t, "starter")
            await lc.core.handle(up.workflow_id).result()
            print(
                f"restarted worker (cache 10): onboarding {onboard_s:.1f} s (incl. worker start), "
                f"upgrade {time.perf_counter() - t1:.2f} s; plan now "
                f"{(await lc.get_tenant(t)).plan}; worker RSS {rss_mb(worker.pid):.0f} MB"
            )
        finally:
            worker.terminate()
            worker.wait()
        await lc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument(
        "--cache",
        type=int,
        default=Settings.model_fields["worker_max_cached_workflows"].default,
        help="WORKER_MAX_CACHED_WORKFLOWS while deleting (default: the product's)",
    )
    parser.add_argument("--concurrency", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
