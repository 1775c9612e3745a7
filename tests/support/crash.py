"""Crash-test harness: worker *processes* (``python worker.py``) that can be SIGKILLed at a
fault point (``lifecycle.faults``), and a file-backed dev server that can be restarted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from lifecycle.config import Settings
from lifecycle.dev.devserver import free_port, start_dev_server
from lifecycle.faults import FAULT_ENV

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env["DATABASE_URL"] = settings.db_url
    return env


class WorkerProcess:
    """``python worker.py`` configured like ``settings``; optionally crashing at ``fault``."""

    def __init__(
        self,
        settings: Settings,
        log: Path,
        fault: str | None = None,
        *,
        sdk_metrics_port: int | None = 0,
    ) -> None:
        """``sdk_metrics_port``: SDK_METRICS_PORT of the process (None leaves it unset, to
        the default)."""
        env = {**os.environ, **settings_env(settings)}
        env.pop(FAULT_ENV, None)
        env.pop("SDK_METRICS_PORT", None)
        if sdk_metrics_port is not None:
            env["SDK_METRICS_PORT"] = str(sdk_metrics_port)
        if fault:
            env[FAULT_ENV] = fault
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            env=env,
            cwd=ROOT,
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
        )

    async def wait_killed(self, timeout: float = 60) -> None:
        """Wait for the process to die by SIGKILL (the fault point fired)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"worker was not killed within {timeout}s; log {self.log}")
            await asyncio.sleep(0.1)
        assert self.proc.returncode == -9, f"worker exited {self.proc.returncode}; see {self.log}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@contextlib.asynccontextmanager
async def worker_process(
    settings: Settings, log: Path, fault: str | None = None
) -> AsyncIterator[WorkerProcess]:
    proc = WorkerProcess(settings, log, fault)
    try:
        yield proc
    finally:
        proc.stop()


class FileDevServer:
    """A dev server whose history lives in ``db_file``: restartable on the same port."""

    def __init__(self, db_file: Path, log: Path) -> None:
        self.db_file, self.log, self.port = db_file, log, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = start_dev_server(self.db_file, port=self.port, ui_port=None, log_file=self.log)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    async def client(self) -> Client:
        for _ in range(100):
            with contextlib.suppress(Exception):
                return await Client.connect(self.address, data_converter=pydantic_data_converter)
            await asyncio.sleep(0.2)
        raise AssertionError(f"dev server at {self.address} does not answer; log {self.log}")


@contextlib.contextmanager
def file_dev_server(tmp: Path) -> Iterator[FileDevServer]:
    server = FileDevServer(tmp / "temporal.db", tmp / "temporal.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
