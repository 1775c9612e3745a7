"""Onboarding: billing customer and subscription, then the ACTIVE tenant with entitlements.

The tenant row (with its entitlements and audit row) is written in one transaction at the
end, so no tenant is ever visible half-onboarded; when that write fails (the id was taken
meanwhile) the subscription is cancelled again (compensation).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.billing import (
        BillingActivities,
        CancelSubscriptionInput,
        StartSubscriptionInput,
    )
    from activities.tenants import TenantActivities
    from lifecycle.domain.onboarding import CreateTenantInput, OnboardingResult, OnboardInput
    from lifecycle.domain.operations import OperationKind
    from lifecycle.domain.tenants import OperationProgress
    from workflows.common import Operation, call


@workflow.defn
class OnboardingWorkflow:
    """Create a tenant on a plan and end ACTIVE; workflow id ``tenant-<id>-onboard``."""

    @workflow.init
    def __init__(self, data: OnboardInput) -> None:
        self.op = Operation(data.request.tenant_id, OperationKind.ONBOARD, data.actor)

    @workflow.run
    async def run(self, data: OnboardInput) -> OnboardingResult:
        req, op = data.request, self.op
        trial_end = None
        if data.trial is not None:
            trial_end = workflow.now() + timedelta(days=data.trial.days)
        billing = await op.step(
            "billing",
            BillingActivities.start_subscription,
            StartSubscriptionInput(
                tenant_id=req.tenant_id,
                name=req.name,
                email=str(req.email),
                price_id=data.price_id,
                idempotency_scope=op.idempotency_scope,
                trial_end=trial_end,
            ),
            summary=f"subscribe to {req.plan}",
        )
        await op.record("create-tenant")
        try:
            tenant = await call(
                TenantActivities.create_tenant,
                CreateTenantInput(
                    request=req,
                    limits=data.limits,
                    billing=billing,
                    workflow_id=op.workflow_id,
                    actor=data.actor,
                    trial_ends_at=trial_end,
                ),
                summary="create tenant and entitlements",
            )
        except ActivityError as err:
            await asyncio.shield(
                call(
                    BillingActivities.cancel_subscription,
                    CancelSubscriptionInput(
                        tenant_id=req.tenant_id,
                        subscription_id=billing.subscription_id,
                        idempotency_scope=op.idempotency_scope,
                        step="compensate-subscription",
                    ),
                    summary="compensate: cancel subscription",
                )
            )
            raise await op.fail(err, "onboarding") from err
        return await op.complete(
            OnboardingResult(
                tenant_id=tenant.tenant_id, state=tenant.state, plan=tenant.plan, billing=billing
            )
        )

    @workflow.query
    def progress(self) -> OperationProgress:
        """Current step of the onboarding."""
        return self.op.progress()
