"""Suspension: ACTIVE -> SUSPENDED with access revoked (entitlements zeroed).

Billing keeps the subscription while suspended (no pause): Stripe's own dunning goes on, and
reactivation needs nothing but the entitlements back. ``SuspensionWorkflow`` is the admin's
(``tenant-<id>-suspend``); ``PaymentFailureWorkflow`` (``tenant-<id>-payment-failure``) is
billing's: after ``invoice.payment_failed`` it waits PAYMENT_FAILURE_GRACE_DAYS on a durable
timer, cancelled by an ``invoice_paid`` signal, then suspends the tenant (or, with
ENABLE_AUTO_DOWNGRADE, moves it to the lowest plan).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities, CancelSubscriptionInput
    from activities.deletion import DeletionActivities
    from lifecycle.domain.billing_events import (
        InvoicePaid,
        PaymentFailureInput,
        PaymentFailureProgress,
        PaymentFailureResult,
        settles,
    )
    from lifecycle.domain.operations import OperationKind
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.suspension import SuspensionInput, SuspensionResult
    from lifecycle.domain.tenants import OperationProgress, TenantEvent, TenantView
    from workflows.common import Operation, call, read_tenant

S = TenantState
#: States of an operation in flight; the payment-failure path waits for it to end.
BUSY = frozenset({S.UPGRADING, S.DOWNGRADING, S.EXPORTING, S.REACTIVATING})
BUSY_POLL = timedelta(minutes=1)
#: ``workflow.patched`` id (2026-12-03): ``invoice_paid`` cancels the pending suspension only
#: for the failed invoice or a settled subscription (before: any paid invoice did).
INVOICE_PAID_MATCH = "invoice-paid-match"


async def suspend(op: Operation, tenant: TenantView, reason: str) -> TenantView:
    """ACTIVE -> SUSPENDED, every entitlement zeroed, ``suspended_reason`` set."""
    await op.record("revoke-access")
    return await op.transition(
        [S.ACTIVE],
        S.SUSPENDED,
        reason=reason,
        entitlements={resource: 0 for resource in tenant.entitlements},
        changes={"suspended_reason": reason},
    )


@workflow.defn
class SuspensionWorkflow:
    """Suspend an ACTIVE tenant (admin action)."""

    @workflow.init
    def __init__(self, data: SuspensionInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.SUSPEND, data.actor)

    @workflow.run
    async def run(self, data: SuspensionInput) -> SuspensionResult:
        op = self.op
        try:
            tenant = await read_tenant(data.tenant_id)
            tenant = await suspend(op, tenant, data.reason)
        except ActivityError as err:
            raise await op.fail(err, "suspension") from err
        return await op.complete(
            SuspensionResult(
                tenant_id=tenant.tenant_id,
                state=tenant.state,
                plan=tenant.plan,
                outcome="suspended",
            )
        )

    @workflow.query
    def progress(self) -> OperationProgress:
        """Current step of the suspension."""
        return self.op.progress()


@workflow.defn
class PaymentFailureWorkflow:
    """Grace period after a failed payment, then suspension or automatic downgrade."""

    @workflow.init
    def __init__(self, data: PaymentFailureInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.PAYMENT_FAILURE, "billing")
        self.invoice_id = data.invoice_id
        self.paid: InvoicePaid | None = None

    @workflow.signal
    def invoice_paid(self, paid: InvoicePaid | None = None) -> None:
        """``invoice.paid`` arrived: the pending suspension is cancelled when it is the failed
        invoice or the subscription is settled (:func:`settles`); other payments are logged
        and change nothing."""
        paid = paid or InvoicePaid()
        if workflow.patched(INVOICE_PAID_MATCH) and not settles(paid, self.invoice_id):
            workflow.logger.info(
                "invoice %s paid; the failed invoice %s is still open",
                paid.invoice_id,
                self.invoice_id,
            )
            return
        self.paid = paid

    @workflow.run
    async def run(self, data: PaymentFailureInput) -> PaymentFailureResult:
        op = self.op
        await op.record("grace-period")
        try:
            await workflow.wait_condition(
                lambda: self.paid is not None,
                timeout=timedelta(days=data.grace_days),
                timeout_summary=f"payment grace of {data.grace_days} days",
            )
        except TimeoutError:
            pass
        try:
            tenant = await read_tenant(data.tenant_id)
            await op.record("wait-for-operation")
            while tenant.state in BUSY and self.paid is None:
                await workflow.sleep(BUSY_POLL, summary=f"wait: tenant is {tenant.state}")
                tenant = await read_tenant(data.tenant_id)
            if self.paid is not None:
                outcome = "recovered"
                await self._event("payment-recovered", data, invoice_paid=self.paid.invoice_id)
            elif tenant.state is not S.ACTIVE:
                outcome = f"no action: tenant is {tenant.state}"
                await self._event("payment-failure-no-action", data, state=tenant.state.value)
            elif data.auto_downgrade:
                tenant, outcome = await self._downgrade(op, tenant, data)
            else:
                reason = f"payment failed: invoice {data.invoice_id}"
                tenant, outcome = await suspend(op, tenant, reason), "suspended"
        except ActivityError as err:
            raise await op.fail(err, "payment failure handling") from err
        return await op.complete(
            PaymentFailureResult(
                tenant_id=tenant.tenant_id, state=tenant.state, plan=tenant.plan, outcome=outcome
            )
        )

    async def _downgrade(
        self, op: Operation, tenant: TenantView, data: PaymentFailureInput
    ) -> tuple[TenantView, str]:
        """ENABLE_AUTO_DOWNGRADE: ACTIVE -> DOWNGRADING -> ACTIVE on the lowest plan, the paid
        subscription cancelled (skipped in limited mode); a tenant already on the lowest plan
        is suspended instead. Usage above the lowest plan's limits does not block this: the
        tenant stopped paying for it."""
        lowest = await call(DeletionActivities.resolve_plan, None)
        if tenant.plan == lowest.name:
            reason = f"payment failed on the lowest plan: invoice {data.invoice_id}"
            return await suspend(op, tenant, reason), "suspended"
        await op.record("auto-downgrade")
        reason = f"payment failed: invoice {data.invoice_id}; moved to {lowest.name}"
        await op.transition([S.ACTIVE], S.DOWNGRADING, reason=reason, detail={"to": lowest.name})
        billing = await call(
            BillingActivities.cancel_subscription,
            CancelSubscriptionInput(
                tenant_id=tenant.tenant_id,
                subscription_id=tenant.billing_subscription_id,
                idempotency_scope=op.idempotency_scope,
                step="auto-downgrade-cancel",
            ),
            summary="cancel the paid subscription",
        )
        tenant = await op.transition(
            [S.DOWNGRADING],
            S.ACTIVE,
            entitlements=lowest.limits,
            changes={"plan": lowest.name, "billing_subscription_id": None},
            detail={"plan": lowest.name, "billing": billing.model_dump(mode="json")},
        )
        return tenant, f"downgraded to {lowest.name}"

    async def _event(self, operation: str, data: PaymentFailureInput, **detail: Any) -> None:
        await call(
            DeletionActivities.record_tenant_event,
            TenantEvent(
                tenant_id=data.tenant_id,
                operation=operation,
                workflow_id=workflow.info().workflow_id,
                actor="billing",
                detail={"invoice": data.invoice_id, **detail},
            ),
        )

    @workflow.query
    def progress(self) -> PaymentFailureProgress:
        """Current step and whether the invoice was paid meanwhile."""
        return PaymentFailureProgress(
            operation=self.op.kind,
            step=self.op.current_step,
            paid=self.paid is not None,
            invoice_id=self.invoice_id,
        )
