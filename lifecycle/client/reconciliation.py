"""Billing reconciliation: the Temporal Schedule, a run on request, the latest report."""

from __future__ import annotations

from uuid import uuid4

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
)

from lifecycle.client.base import Service
from lifecycle.config import Settings
from lifecycle.domain.errors import LifecycleError
from lifecycle.domain.operations import OperationKind
from lifecycle.domain.reconciliation import (
    RECONCILIATION_SCHEDULE_ID,
    ReconcileInput,
    ReconciliationReport,
)


class NoReport(LifecycleError):
    """No reconciliation has completed yet (404)."""

    status = 404


async def ensure_schedule(temporal: Client, settings: Settings) -> bool:
    """Create the Schedule ``tenant-billing-reconciliation`` (every RECONCILE_INTERVAL, with
    RECONCILE_AUTOFIX) unless it exists; True when created. Safe at every worker start."""
    from workflows.reconciliation import ReconciliationWorkflow

    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            ReconcileInput(autofix=settings.reconcile_autofix),
            id=RECONCILIATION_SCHEDULE_ID,
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=settings.reconcile_interval)]),
    )
    try:
        await temporal.create_schedule(RECONCILIATION_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True


class ReconciliationService(Service):
    """Runs reconciliations and reads their reports."""

    async def reconcile(self, fix: bool = False, actor: str = "api") -> ReconciliationReport:
        """Run one reconciliation now (workflow ``tenant-billing-reconciliation-run-<hex>``)
        and return its report; ``fix`` repairs the unambiguous drifts (as RECONCILE_AUTOFIX).
        """
        from workflows.reconciliation import ReconciliationWorkflow

        return await self.core.temporal.execute_workflow(
            ReconciliationWorkflow.run,
            ReconcileInput(autofix=fix or self.core.settings.reconcile_autofix, actor=actor),
            id=f"{RECONCILIATION_SCHEDULE_ID}-run-{uuid4().hex[:12]}",
            task_queue=self.core.settings.temporal_task_queue,
            static_summary=f"reconciliation by {actor}",
        )

    async def latest(self) -> ReconciliationReport:
        """The report of the latest completed reconciliation; raises NoReport (404)."""
        op = await self.core.repository.latest_operation(
            OperationKind.RECONCILIATION.value, "completed"
        )
        if op is None or op.result is None:
            raise NoReport("no billing reconciliation has completed yet")
        return ReconciliationReport.model_validate(op.result)
