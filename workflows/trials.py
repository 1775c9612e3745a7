"""Trials (``tenant-<id>-trial``, started by the client with the onboarding): the
``trial-ending`` notice, then at the trial's end the plan's ``trial_end_behavior`` unless
Stripe has a payment method (steps in :mod:`lifecycle.domain.trials`). It counts the trial
from its own start until the notice, then from the tenant row's ``trial_ends_at``; a tenant
whose onboarding failed ends it (``no action``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from lifecycle.domain.billing_events import PaymentFailureInput
    from lifecycle.domain.operations import OperationKind, search_attributes, workflow_id
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import OperationProgress, TenantView
    from lifecycle.domain.trials import PaymentMethodInput, TrialInput, TrialResult
    from workflows.common import Operation, audit_event, call, read_tenant
    from workflows.suspension import PaymentFailureWorkflow, downgrade_unpaid, suspend


@workflow.defn
class TrialWorkflow:
    """Follow one tenant's trial to its end."""

    @workflow.init
    def __init__(self, data: TrialInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.TRIAL, "billing")

    @workflow.run
    async def run(self, data: TrialInput) -> TrialResult:
        op, terms = self.op, data.terms
        started = workflow.now()
        try:
            await op.record("trial")
            notice = started + timedelta(days=terms.days - terms.notice_days)
            noticed = await self._sleep_until(notice, f"trial-ending notice at {notice}")
            tenant = await self._tenant(data.tenant_id)
            if tenant is None or tenant.trial_ends_at is None:
                return await self._result(data.tenant_id, None, "no action: not onboarded")
            ends = tenant.trial_ends_at
            if noticed:
                days_left = (ends - workflow.now()) // timedelta(days=1)
                await self._event(
                    "trial-ending",
                    data,
                    trial_ends_at=ends.isoformat(),
                    days_left=days_left,
                    plan=tenant.plan,
                )
            await self._sleep_until(ends, f"trial ends at {ends}")
            tenant = await read_tenant(data.tenant_id)
            await op.record("check-payment-method")
            method = await call(
                BillingActivities.has_payment_method,
                PaymentMethodInput(
                    tenant_id=tenant.tenant_id,
                    customer_id=tenant.billing_customer_id,
                    subscription_id=tenant.billing_subscription_id,
                ),
                summary="payment method on file?",
            )
            paid = bool(method.detail.get("payment_method"))
            behavior = terms.end_behavior
            await self._event("trial-ended", data, payment_method=paid, behavior=behavior)
            tenant, outcome = await self._end(tenant, data, paid)
        except ActivityError as err:
            raise await op.fail(err, "trial") from err
        return await self._result(tenant.tenant_id, tenant, outcome)

    async def _tenant(self, tenant_id: str) -> TenantView | None:
        """The tenant, or None when it does not exist (its onboarding failed)."""
        try:
            return await read_tenant(tenant_id)
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "TenantNotFound":
                return None
            raise

    async def _result(self, tenant_id: str, tenant: TenantView | None, outcome: str) -> TrialResult:
        return await self.op.complete(
            TrialResult(
                tenant_id=tenant_id,
                state=tenant.state if tenant else None,
                plan=tenant.plan if tenant else None,
                outcome=outcome,
            )
        )

    async def _end(
        self, tenant: TenantView, data: TrialInput, paid: bool
    ) -> tuple[TenantView, str]:
        """The plan's ``trial_end_behavior`` for a trial without a payment method."""
        if paid:
            return tenant, "paid: payment method on file"
        if tenant.state is not TenantState.ACTIVE:
            return tenant, f"no action: tenant is {tenant.state}"
        why = "trial ended without a payment method"
        behavior = data.terms.end_behavior
        if behavior == "suspend":
            return await suspend(self.op, tenant, why, "trial"), "suspended"
        if behavior == "dunning":
            await self.op.record("dunning")
            result = await workflow.execute_child_workflow(
                PaymentFailureWorkflow.run,
                PaymentFailureInput(
                    tenant_id=tenant.tenant_id,
                    invoice_id=None,
                    event_id=f"trial-end:{workflow.info().workflow_id}",
                    grace_days=0,
                    ladder=data.terms.ladder,
                    payment_window_days=data.terms.payment_window_days,
                    retention_days=data.terms.retention_days,
                ),
                id=workflow_id(tenant.tenant_id, OperationKind.PAYMENT_FAILURE),
                static_summary=f"dunning after the trial of {tenant.tenant_id}",
                search_attributes=search_attributes(
                    tenant.tenant_id, OperationKind.PAYMENT_FAILURE
                ),
            )
            return await read_tenant(tenant.tenant_id), f"dunning: {result.outcome}"
        return await downgrade_unpaid(self.op, tenant, None, why)

    async def _sleep_until(self, at: datetime, summary: str) -> bool:
        """A durable timer until ``at``; False when ``at`` has passed already."""
        remaining = at - workflow.now()
        if remaining <= timedelta(0):
            return False
        await workflow.sleep(remaining, summary=summary)
        return True

    async def _event(self, operation: str, data: TrialInput, **detail: object) -> None:
        await audit_event(data.tenant_id, operation, detail, actor="billing")

    @workflow.query
    def progress(self) -> OperationProgress:
        """Current step of the trial."""
        return self.op.progress()
