"""Scale-out: the throughput of one mixed workload with 1, 2 and 4 worker processes, each
against the same Temporal dev server and the same PostgreSQL control-plane database.

    .venv/bin/python -m benchmarks.scale_out [--tenants 150] [--workers 1,2,4] [--rounds 1]

One Temporal dev server (in memory, or file-backed with the embedded default pragmas with
``--file-backed``) and one scratch PostgreSQL database on 127.0.0.1:5432 (``tl_bench_<random>``,
created, migrated once, dropped at the end) serve every phase. A phase starts N worker
processes (``python -m worker``, configured through the environment from the same settings:
SDK metrics off, limited-mode billing without STRIPE_API_KEY, no data map) on a fresh task
queue, waits until the server lists N pollers and runs a small untimed warm-up (2 onboardings
per worker). Then ``--tenants`` new tenants go through the same mixed workload at once through
the LifecycleClient, each tenant's operations one after the other:

    onboard (free) -> upgrade to starter -> downgrade to free immediately -> suspend -> reactivate

Throughput = operations (5 per tenant) / seconds from the first start request to the last
result. CPU seconds come from /proc: the worker processes, the dev server, this process (the
client side) and the PostgreSQL backends connected to the scratch database (a backend that
disconnects during the phase is not counted). ``machine busy`` is the share of all cores
busy during the phase from /proc/stat, other users' processes included. With ``--rounds`` > 1,
every other round runs the worker counts in reverse order, and the figures are over the
summed times, so that a drift of the machine's speed hits every N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import (
    bench_settings,
    dev_server,
    machine,
    percentile,
    scratch_dir,
    scratch_pg_database,
)
from lifecycle.client.base import task_queue_pollers
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.domain.onboarding import OnboardRequest
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.support.crash import settings_env

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
#: Operations of one tenant's workload, in order.
WORKLOAD = ("onboard", "upgrade", "downgrade", "suspend", "reactivate")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_ticks() -> tuple[int, int]:
    """``(busy, total)`` jiffies of all cores since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def pg_backends(database: str) -> dict[int, float]:
    """CPU seconds of every PostgreSQL backend connected to ``database``, by pid."""
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("postgres: ") and f" {database} " in cmdline:
            found[int(entry)] = cpu_seconds(int(entry))
    return found


@dataclass
class Phase:
    workers: int
    operations: int = 0
    seconds: float = 0.0
    worker_cpu: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    pg_cpu: float = 0.0
    busy: float = 0.0  # busy jiffies of the machine during the phase
    total: float = 0.0  # all jiffies of the machine during the phase
    latencies: list[float] = field(default_factory=list)
    wrong: int = 0  # tenants not ACTIVE on free at the end

    def add(self, other: Phase) -> None:
        for name in (
            "operations",
            "seconds",
            "worker_cpu",
            "server_cpu",
            "client_cpu",
            "pg_cpu",
            "busy",
            "total",
            "wrong",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies += other.latencies


def spawn_workers(settings: Settings, n: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, **settings_env(settings)}
    procs = []
    for i in range(n):
        out = open(logs / f"{settings.temporal_task_queue}-worker{i}.log", "wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


async def wait_pollers(lc: LifecycleClient, settings: Settings, n: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = await task_queue_pollers(
            lc.temporal, settings.temporal_namespace, settings.temporal_task_queue
        )
        if len(set(found)) >= n:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{n} workers did not poll {settings.temporal_task_queue} in 120 s")


async def tenant_workload(lc: LifecycleClient, tenant: str, latencies: list[float]) -> None:
    """One tenant's operations, each awaited before the next starts."""
    steps = {
        "onboard": lambda: lc.onboarding.onboard_tenant(
            OnboardRequest(tenant_id=tenant, name=tenant, email=f"{tenant}@example.com")
        ),
        "upgrade": lambda: lc.plan_changes.upgrade_tenant(tenant, "starter"),
        "downgrade": lambda: lc.plan_changes.downgrade_tenant(
            tenant, "free", effective="immediately"
        ),
        "suspend": lambda: lc.suspension.suspend_tenant(tenant, SuspendRequest(reason="bench")),
        "reactivate": lambda: lc.reactivation.reactivate_tenant(tenant, ReactivateRequest()),
    }
    for name in WORKLOAD:
        t0 = time.perf_counter()
        started = await steps[name]()
        await lc.core.handle(started.workflow_id).result()
        latencies.append(time.perf_counter() - t0)


async def phase(
    address: str,
    database_url: str,
    database: str,
    work: Path,
    server_pid: int,
    n_workers: int,
    n_tenants: int,
) -> Phase:
    queue = f"scale-{n_workers}w-{uuid.uuid4().hex[:6]}"
    settings = bench_settings(work, address, database_url=database_url, temporal_task_queue=queue)
    result = Phase(n_workers)
    lc = await LifecycleClient.connect(settings, run_migrations=False)
    procs = spawn_workers(settings, n_workers, work)
    try:
        await wait_pollers(lc, settings, n_workers)
        prefix = f"s{n_workers}-{uuid.uuid4().hex[:6]}"
        warm = [f"{prefix}-warm-{i}" for i in range(2 * n_workers)]
        onboarded = await asyncio.gather(
            *(
                lc.onboarding.onboard_tenant(
                    OnboardRequest(tenant_id=t, name=t, email=f"{t}@example.com")
                )
                for t in warm
            )
        )
        await asyncio.gather(*(lc.core.handle(s.workflow_id).result() for s in onboarded))

        tenants = [f"{prefix}-{i}" for i in range(n_tenants)]
        workers_before = [cpu_seconds(p.pid) for p in procs]
        server_before = cpu_seconds(server_pid)
        client_before = time.process_time()
        pg_before = pg_backends(database)
        busy_before, total_before = machine_ticks()
        t0 = time.perf_counter()
        await asyncio.gather(*(tenant_workload(lc, t, result.latencies) for t in tenants))
        result.seconds = time.perf_counter() - t0
        busy_after, total_after = machine_ticks()
        pg_after = pg_backends(database)
        result.client_cpu = time.process_time() - client_before
        result.server_cpu = cpu_seconds(server_pid) - server_before
        result.worker_cpu = sum(cpu_seconds(p.pid) for p in procs) - sum(workers_before)
        result.pg_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
        result.busy, result.total = busy_after - busy_before, total_after - total_before
        result.operations = len(WORKLOAD) * n_tenants

        views = await asyncio.gather(*(lc.get_tenant(t) for t in tenants))
        result.wrong = sum(v.state is not TenantState.ACTIVE or v.plan != "free" for v in views)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        await lc.close()
    return result


def row(p: Phase, base: Phase) -> str:
    rate = p.operations / p.seconds
    base_rate = base.operations / base.seconds
    ops = p.operations
    return (
        f"| {p.workers} | {rate:.1f} | {rate / base_rate:.2f} "
        f"| {p.worker_cpu:.0f} s = {p.worker_cpu / p.seconds * 100:.0f}% "
        f"| {p.worker_cpu / ops * 1000:.0f} / {p.server_cpu / ops * 1000:.0f} / "
        f"{p.pg_cpu / ops * 1000:.0f} / {p.client_cpu / ops * 1000:.0f} "
        f"| {p.busy / p.total * 100:.0f}% "
        f"| {percentile(p.latencies, 0.5):.2f} / {percentile(p.latencies, 0.99):.2f} s |"
    )


async def main(args: argparse.Namespace) -> None:
    counts = [int(c) for c in args.workers.split(",")]
    print(f"machine: {machine()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    server = "file-backed (WAL)" if args.file_backed else "in memory"
    print(
        f"workload: {args.tenants} tenants at once x {len(WORKLOAD)} operations "
        f"({' -> '.join(WORKLOAD)}); worker processes {counts}; {args.rounds} round(s); "
        f"dev server {server}; control plane on PostgreSQL\n"
    )
    work = scratch_dir()
    totals = {n: Phase(n) for n in counts}
    loads: list[float] = []
    db_file = work / "temporal.db" if args.file_backed else None
    with dev_server(db_file) as (address, server_proc):
        async with scratch_pg_database() as url:
            database = url.rsplit("/", 1)[1]
            # migrate once, before any worker starts
            await (
                await LifecycleClient.connect(bench_settings(work, address, database_url=url))
            ).close()
            for r in range(args.rounds):
                order = counts if r % 2 == 0 else list(reversed(counts))
                for n in order:
                    p = await phase(address, url, database, work, server_proc.pid, n, args.tenants)
                    loads.append(os.getloadavg()[0])
                    totals[n].add(p)
                    print(
                        f"round {r + 1}, {n} worker(s): {p.operations} operations in "
                        f"{p.seconds:.1f} s = {p.operations / p.seconds:.1f}/s; worker CPU "
                        f"{p.worker_cpu:.1f} s; machine busy {p.busy / p.total * 100:.0f}%; "
                        f"load avg (1 min) {loads[-1]:.2f}; tenants not ACTIVE on free: "
                        f"{p.wrong}",
                        flush=True,
                    )
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"1-min load average after each phase: {min(loads):.2f} to {max(loads):.2f}\n")
    base = totals[counts[0]]
    print(
        "| Workers | ops/s | ratio to "
        f"{counts[0]} | worker CPU (share of one core) "
        "| CPU ms per op: workers / dev server / PostgreSQL / client "
        "| machine busy | op latency p50 / p99 |"
    )
    print("|---:|---:|---:|---:|---|---:|---|")
    for n in counts:
        print(row(totals[n], base))
    print(f"\nlogs: {work}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=150, help="tenants per phase")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, in order")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--file-backed", action="store_true", help="dev server history in SQLite (WAL)"
    )
    asyncio.run(main(parser.parse_args()))
