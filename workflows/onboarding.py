"""Onboarding: billing customer and subscription, then the ACTIVE tenant with entitlements.

The tenant row (with its entitlements and audit row) is written in one transaction at the
end, so no tenant is ever visible half-onboarded; when that write fails (the id was taken
meanwhile) the subscription is cancelled again (compensation).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.billing import (
        BillingActivities,
        CancelSubscriptionInput,
        StartSubscriptionInput,
    )
    from activities.tenants import TenantActivities
    from lifecycle.domain.onboarding import CreateTenantInput, OnboardInput
    from lifecycle.domain.operations import OperationKind
    from workflows.common import Operation, call, failure


@workflow.defn
class OnboardingWorkflow:
    """Create a tenant on a plan and end ACTIVE; workflow id ``tenant-<id>-onboard``."""

    def __init__(self) -> None:
        self.op: Operation | None = None

    @workflow.run
    async def run(self, data: OnboardInput) -> dict[str, Any]:
        req = data.request
        self.op = op = Operation(req.tenant_id, OperationKind.ONBOARD, data.actor)
        await op.record("billing")
        billing = await call(
            BillingActivities.start_subscription,
            StartSubscriptionInput(
                tenant_id=req.tenant_id,
                name=req.name,
                email=str(req.email),
                price_id=data.price_id,
                idempotency_scope=op.idempotency_scope,
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
            failed = failure(err, "onboarding")
            await op.record("failed", "failed", error=str(failed))
            raise failed from err
        result = {
            "tenant_id": tenant.tenant_id,
            "state": tenant.state.value,
            "plan": tenant.plan,
            "billing": billing.model_dump(mode="json"),
        }
        await op.record("completed", "completed", result=result)
        return result

    @workflow.query
    def progress(self) -> dict[str, Any]:
        """Current step of the onboarding."""
        return {"operation": "onboard", "step": self.op.step if self.op else "queued"}
