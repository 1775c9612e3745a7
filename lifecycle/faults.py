"""Test-only fault points for crash tests. **Does nothing in production.**

Activities call :func:`fault_point` at moments where a crash is interesting (after
provisioning and before billing, between export chunks, between purge batches). Only when the
environment variable ``LIFECYCLE_FAULT_POINT`` names that point does the worker process kill
itself with SIGKILL, like a power cut or an OOM kill: no cleanup, no graceful shutdown.

``LIFECYCLE_FAULT_POINT=<name>`` crashes the first time the point is reached;
``<name>@<n>`` the n-th time in this process. Never set it outside tests.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

FAULT_ENV = "LIFECYCLE_FAULT_POINT"
_hits: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``LIFECYCLE_FAULT_POINT`` selects ``name`` now."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
