"""API start latency: POST /tenants (onboarding of new unique tenants) from 50 concurrent
httpx clients against the bare ``client.start_workflow`` of BareWorkflow, in one run.

    .venv/bin/python -m benchmarks.api_latency [--clients 50] [--seconds 20]

Dev server in memory. The API runs as ``tenantctl api`` does (uvicorn, its own process,
SQLite control plane); the product's worker runs as ``python worker.py`` in its own process,
so the onboardings really run while the API is loaded. Baseline: the same number of
concurrent loops calling ``client.start_workflow(BareWorkflow.run, 1)`` for the same time,
with a BareWorkflow worker in this process. Latency = request sent to response received.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from benchmarks.baseline import BareWorkflow, noop
from benchmarks.harness import (
    bench_settings,
    dev_server,
    free_port,
    machine,
    percentile,
    scratch_dir,
    worker_process,
)
from tests.crash import settings_env


async def load(
    clients: int, seconds: float, call: Callable[[], Awaitable[None]]
) -> tuple[list[float], int]:
    """Run ``clients`` loops of ``call`` for ``seconds``; latencies (s) and failures."""
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:  # noqa: BLE001 - counted and reported
                failures += 1
                continue
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(loop() for _ in range(clients)))
    return latencies, failures


def report(name: str, latencies: list[float], failures: int, seconds: float) -> float:
    p99 = percentile(latencies, 0.99)
    print(
        f"{name:34s} {len(latencies) / seconds:7.1f} req/s  p50 "
        f"{percentile(latencies, 0.5) * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms  "
        f"({len(latencies)} ok, {failures} failed)"
    )
    return p99


async def wait_http(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"API at {url} did not answer")


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(
        f"load: {args.clients} concurrent clients for {args.seconds:g} s each; "
        "dev server in memory\n"
    )
    work = scratch_dir()
    with dev_server() as (address, _):
        port = free_port()
        settings = bench_settings(work, address, api_port=port)
        env = settings_env(settings)
        worker = worker_process(env)
        api = subprocess.Popen(
            [str(Path(sys.executable).parent / "tenantctl"), "api"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_http(f"{base}/docs")
            async with httpx.AsyncClient(
                base_url=base,
                headers={"Authorization": "Bearer bench"},
                timeout=60,
                limits=httpx.Limits(max_connections=args.clients),
            ) as http:

                async def onboard() -> None:
                    t = f"api-{uuid.uuid4().hex[:10]}"
                    body = {"tenant_id": t, "name": t, "email": f"{t}@example.com"}
                    (await http.post("/tenants", json=body)).raise_for_status()

                api_lat, api_fail = await load(args.clients, args.seconds, onboard)
        finally:
            api.terminate()
            worker.terminate()
            api.wait()
            worker.wait()

        client = await Client.connect(address)
        queue = f"bare-{uuid.uuid4().hex[:6]}"
        async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[noop]):

            async def start() -> None:
                await client.start_workflow(
                    BareWorkflow.run, 1, id=f"{queue}-{uuid.uuid4().hex}", task_queue=queue
                )

            bare_lat, bare_fail = await load(args.clients, args.seconds, start)

    api_p99 = report("API POST /tenants (onboarding)", api_lat, api_fail, args.seconds)
    bare_p99 = report("bare client.start_workflow", bare_lat, bare_fail, args.seconds)
    print(f"\np99 ratio API / bare: {api_p99 / bare_p99:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    asyncio.run(main(parser.parse_args()))
