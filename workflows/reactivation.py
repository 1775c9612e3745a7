"""Reactivation: REACTIVATING -> entitlements of the chosen plan restored, billing restarted
-> ACTIVE. ``ReactivationWorkflow`` serves SUSPENDED tenants (``tenant-<id>-reactivate``); a
soft-deleted tenant is reactivated inside its deletion workflow by the same
:func:`restore_service`, so that reactivation and purge are decided in one place.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities, ResumeSubscriptionInput
    from activities.deletion import DeletionActivities
    from lifecycle.domain.operations import OperationKind
    from lifecycle.domain.plans import ResolvedPlan
    from lifecycle.domain.reactivation import ReactivationInput, ReactivationResult
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import OperationProgress, TenantView
    from workflows.common import Operation, call, read_tenant

S = TenantState


async def restore_service(
    op: Operation, tenant: TenantView, plan: ResolvedPlan, changes: dict[str, Any] | None = None
) -> TenantView:
    """Move ``tenant`` (SUSPENDED or DELETED) through REACTIVATING to ACTIVE on ``plan``.

    A kept subscription moves to ``plan``'s price with the upgrade's proration when ``plan``
    is above the tenant's (issue 12, defect 4), without proration otherwise.
    Access comes back only once billing runs again; when billing fails the tenant ends
    SUSPENDED (REACTIVATING -> SUSPENDED) with the failure as reason and the ActivityError
    propagates.
    ``changes`` are extra tenant columns cleared on the way (e.g. the deletion's).
    """
    await op.record("reactivating")
    await op.transition(
        [tenant.state],
        S.REACTIVATING,
        reactivation=True,
        detail={"plan": plan.name},
        changes={"suspended_reason": None, "suspension": None, **(changes or {})},
    )
    await op.record("restart-billing")
    try:
        billing = await call(
            BillingActivities.resume_subscription,
            ResumeSubscriptionInput(
                tenant_id=tenant.tenant_id,
                name=tenant.name,
                email=tenant.email,
                customer_id=tenant.billing_customer_id,
                subscription_id=tenant.billing_subscription_id,
                price_id=plan.price_id,
                idempotency_scope=op.idempotency_scope,
                proration_behavior=plan.proration_from(tenant.plan),
            ),
            summary=f"restart subscription on {plan.name}",
        )
    except ActivityError as err:
        reason = f"billing failed on reactivation: {err.cause or err}"
        await asyncio.shield(
            op.transition(
                [S.REACTIVATING], S.SUSPENDED, reason=reason, changes={"suspended_reason": reason}
            )
        )
        raise
    billing_columns: dict[str, Any] = {}
    if not billing.skipped:
        billing_columns = {
            "billing_customer_id": billing.customer_id,
            "billing_subscription_id": billing.subscription_id,
            "billing_period_end": billing.period_end,
        }
    await op.record("restore-entitlements")
    return await op.transition(
        [S.REACTIVATING],
        S.ACTIVE,
        entitlements=plan.limits,
        changes={"plan": plan.name, **billing_columns},
        detail={"plan": plan.name, "billing": billing.model_dump(mode="json")},
    )


@workflow.defn
class ReactivationWorkflow:
    """Reactivate a SUSPENDED tenant on its plan (or the one asked for)."""

    @workflow.init
    def __init__(self, data: ReactivationInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.REACTIVATE, data.actor)

    @workflow.run
    async def run(self, data: ReactivationInput) -> ReactivationResult:
        op = self.op
        try:
            tenant = await read_tenant(data.tenant_id)
            plan = await call(DeletionActivities.resolve_plan, data.plan or tenant.plan)
            tenant = await restore_service(op, tenant, plan)
        except ActivityError as err:
            raise await op.fail(err, "reactivation") from err
        return await op.complete(
            ReactivationResult(tenant_id=tenant.tenant_id, state=tenant.state, plan=tenant.plan)
        )

    @workflow.query
    def progress(self) -> OperationProgress:
        """Current step of the reactivation."""
        return self.op.progress()
