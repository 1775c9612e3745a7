"""Shared parts of the benchmark scripts: a dev server, a worker, RSS readings, reporting.

Benchmarks print figures and ratios against a baseline measured in the same run; they never
assert on time.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from temporalio.client import WorkflowHandle

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.dev.devserver import free_port, start_dev_server
from lifecycle.persistence.engine import Sessions, control_plane_engine
from lifecycle.persistence.tenants import TenantRepository

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def machine() -> str:
    """One line describing this machine (cores, memory, Python, platform)."""
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return (
        f"{os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.platform()}"
    )


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of process ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def dev_server(
    db_file: Path | None = None, pragmas: list[str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Temporal dev server on a free port; yields ``(address, process)``.

    ``pragmas`` replaces the embedded default's ``journal_mode=wal`` when a ``db_file`` is
    given (pass ``[]`` for SQLite's default rollback journal).
    """
    port = free_port()
    proc = start_dev_server(db_file, port=port, ui_port=None, sqlite_pragmas=pragmas)
    try:
        yield f"127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tl-bench-"))


def bench_settings(work: Path, address: str, **overrides: object) -> Settings:
    """Product settings for a benchmark: state under ``work``, Temporal at ``address``, no
    STRIPE_API_KEY (limited-mode billing), no SDK metrics endpoint."""
    values: dict[str, object] = {
        "data_dir": work / "data",
        "temporal_address": address,
        "temporal_task_queue": f"bench-{uuid.uuid4().hex[:6]}",
        "api_token": "bench",
        "signing_secret": "bench",
        "sdk_metrics_port": 0,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def scratch_pg_database(admin_url: str = PG_ADMIN) -> AsyncIterator[str]:
    """A new PostgreSQL database ``tl_bench_<random>``; yields its SQLAlchemy URL, then drops
    it."""
    admin = make_url(admin_url)
    name = f"tl_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin.set(drivername="postgresql").render_as_string(False))
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@contextlib.asynccontextmanager
async def product_stack(settings: Settings) -> AsyncIterator[LifecycleClient]:
    """The product's worker (``build_worker``, in this process, with the worker's own engine
    as ``python worker.py`` has it) and a LifecycleClient on a migrated control-plane
    database."""
    from worker import build_worker

    lc = await LifecycleClient.connect(settings)
    engine = control_plane_engine(settings, retried=True)
    async with build_worker(lc.temporal, settings, TenantRepository(Sessions(engine))):
        yield lc
    await engine.dispose()
    await lc.close()


#: The marker name the SDK core records a local activity's result under.
LOCAL_ACTIVITY_MARKER = "core_local_activity"


async def history_activities(handle: WorkflowHandle[Any, Any]) -> tuple[int, int]:
    """Activities in a workflow's history: ``(regular, local)`` (a local activity leaves a
    marker event instead of scheduled/started/completed events)."""
    regular = local = 0
    async for event in handle.fetch_history_events():
        regular += event.HasField("activity_task_scheduled_event_attributes")
        local += (
            event.HasField("marker_recorded_event_attributes")
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        )
    return regular, local


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


class CoreLogTap:
    """The Temporal core's log lines (it writes them to file descriptor 1, bypassing
    ``sys.stdout``), kept in ``path`` while active; this process's own prints still go to
    the real stdout. :meth:`count` counts the lines holding a text logged since the previous
    count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb+")
        self._saved = -1
        self._stdout: Any = None
        self._offset = 0

    def __enter__(self) -> CoreLogTap:
        sys.stdout.flush()
        self._saved = os.dup(1)
        os.dup2(self._file.fileno(), 1)
        self._stdout = sys.stdout
        sys.stdout = open(os.dup(self._saved), "w", buffering=1, encoding="utf-8")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        sys.stdout.close()
        sys.stdout = self._stdout
        os.dup2(self._saved, 1)
        os.close(self._saved)
        self._file.close()

    def count(self, text: bytes) -> int:
        """Lines holding ``text`` logged since the previous call."""
        end = os.fstat(self._file.fileno()).st_size
        written = os.pread(self._file.fileno(), end - self._offset, self._offset)
        self._offset = end
        return sum(text in line for line in written.splitlines())


@contextlib.contextmanager
def py_spy(output: Path | None, pid: int | None = None) -> Iterator[None]:
    """Sample process ``pid`` (default: this one) with ``py-spy record`` while the block
    runs, active threads only, into ``output`` as collapsed stacks (py-spy's ``raw`` format:
    ``frame;frame;... count`` per line); does nothing when ``output`` is None."""
    if output is None:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = subprocess.Popen(
        [exe, "record", "--pid", str(pid or os.getpid()), "--rate", "100", "--format", "raw"]
        + ["--nonblocking", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def worker_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python worker.py`` with ``env`` added to this environment."""
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        [sys.executable, str(root / "worker.py")],
        env={**os.environ, **env},
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


__all__ = [
    "CoreLogTap",
    "bench_settings",
    "cpu_seconds",
    "dev_server",
    "free_port",
    "history_activities",
    "load_average",
    "machine",
    "peak_rss_mb",
    "percentile",
    "product_stack",
    "py_spy",
    "rss_mb",
    "scratch_dir",
    "scratch_pg_database",
    "worker_process",
]
