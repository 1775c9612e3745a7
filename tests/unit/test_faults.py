"""The fault hook kills only when selected, and only at the n-th hit."""

import subprocess
import sys

import pytest

SCRIPT = (
    "from lifecycle.faults import fault_point\n"
    "for i in range(5):\n"
    "    fault_point('other'); fault_point('step'); print(i, flush=True)\n"
)


@pytest.mark.parametrize(
    ("spec", "printed", "killed"),
    [
        ("", "0 1 2 3 4", False),
        ("step", "", True),
        ("step@3", "0 1", True),
        ("nowhere", "0 1 2 3 4", False),
    ],
)
def test_fault_point(spec: str, printed: str, killed: bool) -> None:
    env = {"LIFECYCLE_FAULT_POINT": spec} if spec else {}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.stdout.split() == printed.split()
    assert (proc.returncode == -9) is killed
