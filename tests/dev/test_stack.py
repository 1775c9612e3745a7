"""``tenantctl dev`` with a PostgreSQL DATABASE_URL, as a process: the API in process and the
worker as a child both migrate at start. It used to hang on a fresh database (a connection
"idle in transaction" holding alembic_version) and crash on a migrated one (``KeyError:
'script'`` inside alembic)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.base import task_queue_pollers
from lifecycle.dev.devserver import free_port


async def _boot(url: str, env_: WorkflowEnvironment, tmp_path: Path, name: str) -> str:
    """Start ``tenantctl dev``, wait until the API answers healthy and the worker polls, stop
    it with SIGINT; returns its output. Fails naming the output when it does not boot."""
    port, queue = free_port(), f"tq-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TEMPORAL_ADDRESS": env_.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": queue,
        "DATA_DIR": str(tmp_path / "data"),
        "API_PORT": str(port),
        "API_TOKEN": "test-token",
        "SIGNING_SECRET": "test-signing-secret",
    }
    for var in ("APP_DATABASE_URL", "APP_STORAGE_URL", "DATA_MAP_PATH", "SDK_METRICS_PORT"):
        env.pop(var, None)
    log = tmp_path / f"{name}.log"
    tenantctl = Path(sys.executable).with_name("tenantctl")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(tenantctl), "dev"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    healthy = polled = False
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(240):
                if proc.poll() is not None:
                    break
                try:
                    healthy = (await http.get("/health")).status_code == 200
                except httpx.TransportError:
                    healthy = False
                polled = bool(await task_queue_pollers(env_.client, "default", queue))
                if healthy and polled:
                    break
                await asyncio.sleep(0.25)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(proc.wait, 60)
        except subprocess.TimeoutExpired:
            proc.kill()
    output = log.read_text(errors="replace")
    assert healthy and polled, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    return output


async def test_dev_stack_boots_on_a_fresh_and_on_a_migrated_postgresql(
    dev_env: WorkflowEnvironment, fresh_pg_url: str, tmp_path: Path
) -> None:
    await _boot(fresh_pg_url, dev_env, tmp_path, "fresh")
    await _boot(fresh_pg_url, dev_env, tmp_path, "migrated")
