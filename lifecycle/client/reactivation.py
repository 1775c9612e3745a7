"""Reactivation: a SUSPENDED tenant back to ACTIVE, or a DELETED one within its retention."""

from __future__ import annotations

from lifecycle.client.base import Service
from lifecycle.domain.deletion import (
    purged_detail,
)
from lifecycle.domain.errors import StateConflict
from lifecycle.domain.operations import (
    OperationKind,
    OperationStarted,
    workflow_id,
)
from lifecycle.domain.plan_changes import UsageExceedsLimits, require_allowed
from lifecycle.domain.plans import usage_violations
from lifecycle.domain.reactivation import (
    REACTIVATION_DISABLED,
    ReactivateRequest,
    ReactivationInput,
)
from lifecycle.domain.states import TenantState


class ReactivationService(Service):
    """Starts reactivations."""

    async def reactivate_tenant(
        self, tenant_id: str, request: ReactivateRequest, actor: str = "api"
    ) -> OperationStarted:
        """Reactivate a SUSPENDED tenant (reactivation workflow) or a DELETED one within its
        retention (the deletion workflow's ``request_reactivation`` update: the same as the
        ``reactivate`` signal, but rejected synchronously with the reason).

        A ``request.plan`` below the tenant's plan passes the downgrade's usage check first
        (``UsageExceedsLimits``, a 422 naming every resource over the limit).

        Raises InvalidInput (unknown plan; PlanChangeNotAllowed: the plans file forbids the
        change to ``request.plan``), TenantNotFound, StateConflict: wrong state,
        purged (``purged at ...``), purge running, retention over, or
        ENABLE_REACTIVATION_WORKFLOW=false.
        """
        from workflows.deletion import DeletionWorkflow
        from workflows.reactivation import ReactivationWorkflow

        plans = self.core.settings.plans
        if request.plan is not None:
            plans.get(request.plan)
        tenant = await self.core.repository.get(tenant_id)
        if request.plan is not None and request.plan != tenant.plan:
            require_allowed(plans, tenant_id, tenant.plan, request.plan)  # the change's rules
        if request.plan is not None and plans.rank(request.plan) < plans.rank(tenant.plan):
            # the downgrade's rule (issue 12, defect 4): usage must fit the lower plan
            target = plans.get(request.plan)
            violations = usage_violations(tenant.usage, target.limits.as_dict())
            if violations:
                raise UsageExceedsLimits(tenant_id, target.name, violations)
        if tenant.state is TenantState.SUSPENDED:
            started = await self.core.start(
                ReactivationWorkflow.run,
                ReactivationInput(tenant_id=tenant_id, plan=request.plan, actor=actor),
                tenant_id=tenant_id,
                kind=OperationKind.REACTIVATE,
            )
            return started
        if tenant.state is not TenantState.DELETED:
            raise StateConflict(
                f"tenant '{tenant_id}' is {tenant.state}; reactivate needs state SUSPENDED or "
                "DELETED"
            )
        if tenant.purged_at is not None:
            raise StateConflict(purged_detail(tenant_id, tenant.purged_at.isoformat()))
        if not self.core.settings.enable_reactivation_workflow:
            raise StateConflict(REACTIVATION_DISABLED)
        wid = workflow_id(tenant_id, OperationKind.DELETION)
        update = request.model_copy(update={"requested_by": request.requested_by or actor})
        await self.deletion_update(tenant_id, DeletionWorkflow.request_reactivation, update)
        return OperationStarted(
            workflow_id=wid,
            run_id=None,
            tenant_id=tenant_id,
            operation=OperationKind.REACTIVATE.value,
            status="accepted",
        )
