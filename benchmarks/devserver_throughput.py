"""Throughput of the embedded Temporal dev server by persistence setting.

Runs the same load (N concurrent workflows of 3 no-op activities, one worker) against the dev
server in memory, file-backed with SQLite's default rollback journal, and file-backed with the
embedded default's pragmas (WAL), and prints workflows/s and the ratio to in-memory. Also
restarts the file-backed WAL server and checks the completed workflows are still there
(durability across a restart).

    python -m benchmarks.devserver_throughput [--workflows 300]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from benchmarks.baseline import BareWorkflow, noop
from benchmarks.harness import dev_server, machine, scratch_dir
from lifecycle.dev.devserver import DEFAULT_PRAGMAS


async def run_load(address: str, workflows: int, activities: int = 3) -> float:
    """Start ``workflows`` bare workflows at once; return completed workflows per second."""
    client = await Client.connect(address)
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[noop]):
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    BareWorkflow.run, activities, id=f"bare-{queue}-{i}", task_queue=queue
                )
                for i in range(workflows)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        return workflows / (time.perf_counter() - t0)


async def count_completed(address: str) -> int:
    client = await Client.connect(address)
    return (await client.count_workflows("ExecutionStatus='Completed'")).count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=300)
    args = parser.parse_args()
    work = scratch_dir()
    configs: list[tuple[str, Path | None, list[str] | None]] = [
        ("in memory", None, None),
        ("file, rollback journal", work / "rollback.db", []),
        (f"file, {' '.join(DEFAULT_PRAGMAS)} (embedded default)", work / "wal.db", None),
        (
            "file, journal_mode=wal synchronous=NORMAL",
            work / "wal-normal.db",
            ["journal_mode=wal", "synchronous=NORMAL"],
        ),
    ]
    print(f"machine: {machine()}")
    print(f"load: {args.workflows} concurrent workflows x 3 no-op activities, one worker\n")
    results = {}
    for name, db, pragmas in configs:
        with dev_server(db, pragmas) as (address, _):
            results[name] = asyncio.run(run_load(address, args.workflows))
        print(f"{name:55s} {results[name]:7.1f} workflows/s")
    base = results["in memory"]
    print("\nratio to in-memory:")
    for name, value in results.items():
        print(f"  {name:53s} {value / base:5.2f}")
    default_db = configs[2][1]
    with dev_server(default_db, None) as (address, _):
        kept = asyncio.run(count_completed(address))
    print(
        f"\nafter a restart the embedded default still lists {kept} completed workflows "
        f"(expected {args.workflows})"
    )


if __name__ == "__main__":
    main()
