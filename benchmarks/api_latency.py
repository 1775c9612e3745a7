"""API start latency: POST /tenants (onboarding of new unique tenants) from 50 concurrent
clients, next to the bare ``client.start_workflow`` of the same onboarding, in one run.

    .venv/bin/python -m benchmarks.api_latency [--clients 50] [--seconds 20]

Dev server in memory. The API runs as ``tenantctl api`` does (uvicorn, its own process,
SQLite control plane); the product's worker runs as ``python worker.py`` in its own process,
so the onboardings really run while each phase is loaded. Baseline: the same number of
concurrent loops starting the same OnboardingWorkflow with the same input, id, search
attributes and id policies through the Temporal client (``LifecycleClient.start_onboarding``,
the call the API ends in), for the same time, with the same worker running. Starts outpace the
worker's onboardings; between the phases the ones still queued are terminated, so each phase
begins with an idle worker.
Latency = request sent to response received (aiohttp client / Temporal client).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from benchmarks.harness import (
    bench_settings,
    dev_server,
    free_port,
    machine,
    percentile,
    scratch_dir,
    worker_process,
)
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.onboarding import OnboardRequest
from tests.support.crash import settings_env


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
            except Exception:
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
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"API at {url} did not answer")


async def discard_backlog(lc: LifecycleClient) -> int:
    """Terminate every onboarding the worker has not finished yet (starts outpace it 10 to
    1), so that the next phase begins with an idle worker; returns how many."""
    running = [
        lc.temporal.get_workflow_handle(w.id, run_id=w.run_id)
        async for w in lc.temporal.list_workflows('ExecutionStatus="Running"')
    ]
    gate = asyncio.Semaphore(50)

    async def terminate(handle: WorkflowHandle[Any, Any]) -> None:
        async with gate:
            with contextlib.suppress(RPCError):  # finished meanwhile
                await handle.terminate("benchmark phase over")

    await asyncio.gather(*(terminate(h) for h in running))
    return len(running)


def new_request() -> OnboardRequest:
    t = f"bench-{uuid.uuid4().hex[:12]}"
    return OnboardRequest(tenant_id=t, name=t, email=f"{t}@example.com")


async def main(args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(
        f"load: {args.clients} concurrent clients for {args.seconds:g} s each; "
        "dev server in memory; the product's worker running in both phases\n"
    )
    work = scratch_dir()
    with dev_server() as (address, _):
        port = free_port()
        settings = bench_settings(work, address, api_port=port)
        env = settings_env(settings)
        lc = await LifecycleClient.connect(settings)
        worker = worker_process(env)
        api = subprocess.Popen(
            [str(Path(sys.executable).parent / "tenantctl"), "api"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        plan = settings.plans.get("free")
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_http(f"{base}/docs")

            async def bare_start() -> None:
                await lc.onboarding.start_onboarding(new_request(), plan)

            bare_lat, bare_fail = await load(args.clients, args.seconds, bare_start)
            backlog = await discard_backlog(lc)

            async with aiohttp.ClientSession(
                base_url=base,
                headers={"Authorization": "Bearer bench"},
                timeout=aiohttp.ClientTimeout(total=60),
                connector=aiohttp.TCPConnector(limit=args.clients),
            ) as http:

                async def onboard() -> None:
                    body = new_request().model_dump(mode="json")
                    async with http.post("/tenants", json=body) as response:
                        response.raise_for_status()
                        await response.read()

                api_lat, api_fail = await load(args.clients, args.seconds, onboard)
        finally:
            api.terminate()
            worker.terminate()
            api.wait()
            worker.wait()
            await lc.close()

    bare_p99 = report("bare client.start_workflow", bare_lat, bare_fail, args.seconds)
    api_p99 = report("API POST /tenants", api_lat, api_fail, args.seconds)
    print(f"onboardings still queued after the bare phase, terminated: {backlog}")
    print(f"\np99 ratio API / bare: {api_p99 / bare_p99:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    asyncio.run(main(parser.parse_args()))
