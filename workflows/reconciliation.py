"""Billing reconciliation (issue 12). Started by the Temporal Schedule
``tenant-billing-reconciliation`` every RECONCILE_INTERVAL, or by ``tenantctl reconcile``.

1. Read the tenants with billing a page at a time (``billing_page``).
2. Compare each page with Stripe (``compare_billing``): plan price, state, subscription and
   pending downgrade against the subscription's status, price and schedule.
3. Audit every drift (``billing-drift``, both sides).
4. With ``autofix``, repair the unambiguous kinds through the billing activities, keyed
   ``<workflow id>:<run id>:fix:<tenant>:<kind>``: a price that differs from the plan is set
   to the plan's (no proration); a paid ACTIVE tenant without subscription gets one (stored
   on the tenant); a DELETED tenant's live subscription is cancelled. Everything else is
   reported for an operator.
5. Complete the operation (kind ``reconciliation``) with the report.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities, CancelSubscriptionInput, ChangePriceInput
    from activities.reconciliation import ReconciliationActivities
    from lifecycle.domain.operations import OperationKind
    from lifecycle.domain.reconciliation import (
        ALL_TENANTS,
        AttachSubscriptionInput,
        BillingPageInput,
        Drift,
        DriftEventInput,
        DriftKind,
        ReconcileInput,
        ReconciliationReport,
        started_now,
    )
    from lifecycle.domain.tenants import OperationProgress
    from workflows.common import Operation, call, idempotency_scope


@workflow.defn
class ReconciliationWorkflow:
    """Compare every tenant's billing with Stripe; report (and with ``autofix`` repair)."""

    @workflow.init
    def __init__(self, data: ReconcileInput) -> None:
        self.op = Operation(ALL_TENANTS, OperationKind.RECONCILIATION, data.actor)

    @workflow.run
    async def run(self, data: ReconcileInput) -> ReconciliationReport:
        op = self.op
        report = started_now(op.workflow_id, workflow.now(), data.autofix)
        offset: int | None = 0
        while offset is not None:
            await op.record(f"page at {offset}")
            page = await call(
                ReconciliationActivities.billing_page,
                BillingPageInput(offset=offset, limit=data.page_size),
                summary=f"tenants {offset}+",
            )
            report.skipped = page.limited
            offset = page.next_offset
            if not page.tenants:
                continue
            report.tenants_checked += len(page.tenants)
            drifts = await call(
                ReconciliationActivities.compare_billing, page.tenants, summary="compare"
            )
            for drift in drifts:
                if data.autofix and drift.fixable:
                    drift.fix = await self._repair(drift)
                await call(
                    ReconciliationActivities.record_drift,
                    DriftEventInput(drift=drift, workflow_id=op.workflow_id, actor=op.actor),
                    summary=f"drift {drift.kind}: {drift.tenant_id}",
                )
                report.drifts.append(drift)
        report.finished_at = workflow.now().isoformat()
        return await op.complete(report)

    async def _repair(self, drift: Drift) -> str:
        """Repair one fixable drift; returns what was done."""
        cp, scope = drift.control_plane, idempotency_scope()
        key = f"{scope}:fix:{cp.tenant_id}:{drift.kind}"
        if drift.kind is DriftKind.DELETED_BUT_BILLED:
            await call(
                BillingActivities.cancel_subscription,
                CancelSubscriptionInput(
                    tenant_id=cp.tenant_id,
                    subscription_id=cp.subscription_id,
                    idempotency_scope=scope,
                    step=f"fix:{cp.tenant_id}:{drift.kind}",
                ),
                summary=f"fix: cancel {cp.subscription_id}",
            )
            return f"subscription {cp.subscription_id} cancelled"
        missing = drift.kind is DriftKind.NO_SUBSCRIPTION
        billed = await call(
            BillingActivities.change_price,
            ChangePriceInput(
                tenant_id=cp.tenant_id,
                subscription_id=None if missing else cp.subscription_id,
                price_id=cp.price_id,
                proration_behavior="none",
                idempotency_key=key,
                unless_current=drift.kind is DriftKind.PRICE_DIFFERS,
                customer_id=cp.customer_id,
                name=cp.name,
                email=cp.email,
            ),
            summary=f"fix: {cp.tenant_id} on {cp.price_id}",
        )
        if drift.kind is DriftKind.NO_SUBSCRIPTION and billed.subscription_id:
            await call(
                ReconciliationActivities.attach_subscription,
                AttachSubscriptionInput(
                    tenant_id=cp.tenant_id,
                    customer_id=billed.customer_id,
                    subscription_id=billed.subscription_id,
                    workflow_id=self.op.workflow_id,
                    actor=self.op.actor,
                ),
                summary=f"fix: store {billed.subscription_id}",
            )
            return f"subscription {billed.subscription_id} created on {cp.price_id}"
        return f"price set to {cp.price_id} (no proration)"

    @workflow.query
    def progress(self) -> OperationProgress:
        """Current step (the page being compared)."""
        return self.op.progress()
