"""The main job run by ``tenantctl dev --demo``: lifecycle operations against the embedded
stack, with a Rich summary of each step's outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from lifecycle.client import LifecycleClient
from lifecycle.config import Settings
from lifecycle.errors import StateConflict
from lifecycle.models import OnboardRequest


@dataclass
class Step:
    tenant: str
    operation: str
    outcome: str
    seconds: float
    workflow_id: str | None


DEMO_TENANTS = [
    ("acme", "Acme Corp", "billing@acme.example", "starter"),
    ("globex", "Globex", "ap@globex.example", "free"),
]


async def run_demo(settings: Settings, console: Console) -> list[Step]:
    """Onboard the demo tenants (a second run finds them and skips), print a summary."""
    steps: list[Step] = []
    async with await LifecycleClient.connect(settings) as lc:
        for tenant_id, name, email, plan in DEMO_TENANTS:
            t0 = time.monotonic()
            try:
                started = await lc.onboard_tenant(
                    OnboardRequest(tenant_id=tenant_id, name=name, email=email, plan=plan), "demo"
                )
                result = await lc.handle(started.workflow_id).result()
                outcome = f"{result['state']} on {result['plan']}"
                wid: str | None = started.workflow_id
            except StateConflict as exc:
                outcome, wid = f"skipped: {exc.detail}", None
            steps.append(Step(tenant_id, "onboard", outcome, time.monotonic() - t0, wid))
    ui = f"http://127.0.0.1:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}"
    table = Table(title="Main job")
    for col in ("tenant", "operation", "outcome", "duration", "Web UI"):
        table.add_column(col)
    for s in steps:
        link = f"{ui}/workflows/{s.workflow_id}" if s.workflow_id else ""
        table.add_row(s.tenant, s.operation, s.outcome, f"{s.seconds:.2f}s", link)
    console.print(table)
    console.print("serving until Ctrl-C")
    return steps
