"""Test-only fault points for crash tests. **Does nothing in production.**

Activities call :func:`fault_point` at moments where a crash is interesting (after
provisioning and before billing, between export chunks, between purge batches). Only when the
environment variable ``LIFECYCLE_FAULT_POINT`` names that point does anything happen:

- ``<name>`` or ``<name>@<n>``: at the n-th time (default 1st) the point is reached in this
  process, the process kills itself with SIGKILL, like a power cut or an OOM kill: no cleanup,
  no graceful shutdown, no activity failure reported (a worker-process crash).
- ``raise:<name>[@<n>]``: at that n-th time the activity raises ``RuntimeError`` instead,
  for tests whose worker runs inside the test process (the activity fails, then is retried).

Each selection fires exactly once per process. Never set the variable outside tests.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

FAULT_ENV = "LIFECYCLE_FAULT_POINT"
_hits: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Crash as ``LIFECYCLE_FAULT_POINT`` says if it selects ``name`` now; else return."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    mode, _, selector = spec.partition(":") if spec.startswith("raise:") else ("", "", spec)
    target, _, nth = selector.partition("@")
    if target != name:
        return
    _hits[spec] += 1
    if _hits[spec] != int(nth or 1):
        return
    if mode == "raise":
        raise RuntimeError(f"test fault point {name} (hit {_hits[spec]})")
    os.kill(os.getpid(), signal.SIGKILL)


def reset_fault_counts() -> None:
    """Forget how often each point was reached (tests that run several faults in-process)."""
    _hits.clear()
