"""``tenantctl health``: the container healthchecks of the API and of a worker."""

from __future__ import annotations

import asyncio
import socket
from typing import Annotated

import httpx
import typer

from lifecycle.cli.common import ApiUrl, console, load_settings

app = typer.Typer()


async def worker_health(timeout: float) -> tuple[bool, str]:
    """Whether Temporal answers and a worker *of this host* (identity ``<pid>@<hostname>``)
    polls TEMPORAL_TASK_QUEUE; with the reason. Waits at most ``timeout`` seconds."""
    from lifecycle.client.base import connect_temporal, task_queue_pollers

    settings = load_settings()
    try:
        async with asyncio.timeout(timeout):
            client = await connect_temporal(settings)
            pollers = await task_queue_pollers(
                client, settings.temporal_namespace, settings.temporal_task_queue
            )
    except Exception as exc:  # any failure is "unhealthy"; its type is the diagnosis
        return False, f"Temporal at {settings.temporal_target}: {type(exc).__name__} {exc}"
    host = socket.gethostname()
    mine = [p for p in pollers if p.endswith(f"@{host}")]
    queue = settings.temporal_task_queue
    if not mine:
        return False, f"no worker of host {host} polls task queue {queue} ({len(pollers)} others)"
    return True, f"{len(mine)} worker(s) of host {host} poll task queue {queue}"


@app.command()
def health(
    worker: Annotated[
        bool,
        typer.Option(
            "--worker", help="Check Temporal and that a worker of this host polls the queue"
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds before giving up")] = 10,
    api_url: ApiUrl = None,
) -> None:
    """Exit 0 when healthy, 1 otherwise (a container healthcheck). Without --worker: the API's
    /health (database and Temporal reachable)."""
    if worker:
        ok, reason = asyncio.run(worker_health(timeout))
    else:
        settings = load_settings()
        base = api_url or f"http://{settings.api_host}:{settings.api_port}"
        try:
            response = httpx.get(f"{base}/health", timeout=timeout)
            ok, reason = response.status_code == 200, response.text
        except httpx.HTTPError as exc:
            ok, reason = False, f"{base}: {type(exc).__name__}"
    console.print(("healthy: " if ok else "unhealthy: ") + reason, markup=False)
    if not ok:
        raise typer.Exit(1)
