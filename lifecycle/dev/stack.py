"""The embedded stack in one terminal: the API in this process, a worker as a child process.

The worker is ``python -m worker`` (the module that lists every workflow and activity), so the
library never imports it and the embedded stack runs the same process as production.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from lifecycle.api.app import create_app
from lifecycle.api.server import uvicorn_config
from lifecycle.config import Settings


async def wait_for_temporal(settings: Settings, timeout: float = 60.0) -> None:
    """Retry connecting until the server's namespace answers (the port opens earlier)."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    from lifecycle.client.lifecycle import connect_temporal

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            client = await connect_temporal(settings)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            )
            return
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def serve(
    settings: Settings, after_start: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> None:
    """Run the API in this process and a worker as a child process until Ctrl-C (SIGINT or
    SIGTERM), or until either of them stops; ``after_start`` runs beside them (the main job).

    Raises the API's or the main job's exception, or RuntimeError when the worker exits.
    """
    import uvicorn

    config = uvicorn_config(
        create_app(settings), settings, log_level=settings.log_level.lower(), lifespan="on"
    )
    server = uvicorn.Server(config)
    worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "worker")
    tasks = [
        asyncio.create_task(worker.wait(), name="worker"),
        asyncio.create_task(server.serve(), name="api"),
    ]
    if after_start is not None:
        tasks.append(asyncio.create_task(after_start(), name="main-job"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks[:2]], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    if worker.returncode is None:
        worker.terminate()
    for task in tasks:
        if task.get_name() == "main-job":
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if tasks[0] in done and stopper not in done:
        raise RuntimeError(f"the worker exited with code {worker.returncode}")
    for task in done:
        if task is not stopper and task is not tasks[0] and task.exception():
            raise task.exception()  # type: ignore[misc]


def sample_application_env(settings: Settings) -> dict[str, str]:
    """Without DATA_MAP_PATH, point the data map at the sample application (lifecycle/dev/adtech)
    with its stores under DATA_DIR, so that the embedded default is one coherent system.

    Sets ``settings.data_map_path`` and returns the environment variables (``DATA_MAP_PATH``,
    ``APP_DATABASE_URL``, ``APP_STORAGE_URL``, and ``APP_REDIS_URL`` when set: the sample's
    cache store is then in the map) the worker process and the data map need; empty when
    DATA_MAP_PATH is already set.
    """
    if settings.data_map_path is not None:
        return {}
    from lifecycle.dev.adtech.env import app_urls, sample_datamap

    settings.data_map_path = sample_datamap(settings.data_dir)
    return {**app_urls(settings.data_dir), "DATA_MAP_PATH": str(settings.data_map_path)}
