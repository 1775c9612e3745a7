"""Upgrade: move an ACTIVE tenant to a higher plan now, entitlements first, then billing with
proration (the saga in ``workflows/plan_change.py``). Workflow id ``tenant-<id>-upgrade``.

A downgrade waiting for the period end is superseded: the lock clears the pending change and
the downgrade workflow gets its ``cancel_downgrade`` signal.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from lifecycle.domain.operations import OperationKind
    from lifecycle.domain.plan_changes import CancelDowngrade, PlanChangeInput, PlanChangeResult
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import OperationProgress
    from workflows.common import Operation, read_tenant
    from workflows.downgrade import DowngradeWorkflow
    from workflows.plan_change import PlanChangeSaga, settles_steps


@workflow.defn
class UpgradeWorkflow:
    """Upgrade ``data.tenant_id`` from ``data.from_plan`` to ``data.to_plan``."""

    @workflow.init
    def __init__(self, data: PlanChangeInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.UPGRADE, data.actor)

    @workflow.run
    async def run(self, data: PlanChangeInput) -> PlanChangeResult:
        # the patches first, before any other command (see plan_change.settles_steps)
        op, settle = self.op, settles_steps()
        folded = op.fold_steps()
        tenant = await read_tenant(data.tenant_id)
        pending = tenant.pending_plan_change
        saga = PlanChangeSaga(op, data, TenantState.UPGRADING, data.proration_behavior, settle)
        await saga.lock({"cancelled_pending_plan_change": pending} if pending else None)
        if pending:
            # after the lock: a period-end timer firing meanwhile finds the tenant UPGRADING
            await self._cancel_downgrade(pending["workflow_id"])
        if folded:  # the commit records the operation completed
            return await saga.apply(complete=True)
        return await op.complete(await saga.apply())

    async def _cancel_downgrade(self, downgrade_id: str) -> None:
        handle = workflow.get_external_workflow_handle(downgrade_id)
        reason = f"superseded by upgrade {workflow.info().workflow_id}"
        try:
            await handle.signal(
                DowngradeWorkflow.cancel_downgrade, CancelDowngrade(actor="system", reason=reason)
            )
        except FailureError as err:  # the downgrade already ended: nothing to cancel
            workflow.logger.info("downgrade %s not signalled: %s", downgrade_id, err)

    @workflow.query
    def progress(self) -> OperationProgress:
        """Current step of the upgrade."""
        return self.op.progress()
