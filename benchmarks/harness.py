"""Shared parts of the benchmark scripts: a dev server, a worker, RSS readings, reporting.

Benchmarks print figures and ratios against a baseline measured in the same run; they never
assert on time.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lifecycle.devserver import free_port, start_dev_server


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


__all__ = ["dev_server", "free_port", "machine", "peak_rss_mb", "rss_mb", "scratch_dir"]
