"""Suspension: ACTIVE -> SUSPENDED with access revoked (entitlements zeroed).

Billing keeps the subscription while suspended (no pause): Stripe's own dunning goes on, and
reactivation needs nothing but the entitlements back. ``SuspensionWorkflow`` is the admin's
(``tenant-<id>-suspend``); ``PaymentFailureWorkflow`` (``tenant-<id>-payment-failure``) is
billing's dunning (:mod:`lifecycle.domain.dunning`):

1. ``invoice.payment_failed`` starts it with the plan's ladder; the tenant's ``dunning``
   status is set (``dunning-started``).
2. For each step: a durable timer until its day (counted from the first unpaid invoice),
   cut short by an ``invoice_paid`` signal that settles every overdue invoice; then the step
   applies (after any running operation ends) and is audited as ``dunning-step``
   (kind, day, plan). ``invoice_failed`` adds another overdue invoice.
3. After the last step (unless it ended the ladder) it waits PAYMENT window days more.
4. Paid at any point: the tenant is back in full service at once on its plan and
   entitlements (read-only lifted, or SUSPENDED -> REACTIVATING -> ACTIVE through
   :func:`~workflows.reactivation.restore_service`), audited ``payment-recovered``. Until then
   a ``read_only`` step stays in force across plan changes (the control plane writes any new
   plan's limits with ``read_only = 1`` while the dunning status says so).

Executions started before the ladder (``workflow.patched("dunning-ladder")``) keep the single
grace timer: PAYMENT_FAILURE_GRACE_DAYS, then suspend (or, with ENABLE_AUTO_DOWNGRADE, move to
the lowest plan).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.billing import (
        BillingActivities,
        CancelSubscriptionInput,
        PauseCollectionInput,
    )
    from activities.deletion import DeletionActivities
    from activities.provisioning import ProvisioningActivities, ProvisionInput
    from activities.tenants import TenantActivities
    from lifecycle.domain.billing_events import (
        InvoiceFailed,
        InvoicePaid,
        PaymentFailureInput,
        PaymentFailureProgress,
        PaymentFailureResult,
        settles,
    )
    from lifecycle.domain.deletion import DeletionInput
    from lifecycle.domain.dunning import (
        NEEDS_ACTIVE,
        READ_ONLY,
        TERMINAL,
        DunningStatus,
        DunningStep,
        DunningUpdate,
        status_at,
    )
    from lifecycle.domain.operations import OperationKind, search_attributes, workflow_id
    from lifecycle.domain.plan_changes import StepEventInput
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.suspension import (
        PauseInput,
        PauseResult,
        ResumeSignal,
        SuspensionInput,
        SuspensionResult,
    )
    from lifecycle.domain.tenants import OperationProgress, TenantView
    from workflows.common import (
        Operation,
        audit_event,
        call,
        control_plane,
        idempotency_scope,
        read_tenant,
    )
    from workflows.deletion import DeletionWorkflow
    from workflows.reactivation import restore_service

S = TenantState
#: States of an operation in flight; the payment-failure path waits for it to end.
BUSY = frozenset({S.UPGRADING, S.DOWNGRADING, S.EXPORTING, S.REACTIVATING})
BUSY_POLL = timedelta(minutes=1)
#: ``workflow.patched`` id (2026-12-03): ``invoice_paid`` cancels the pending suspension only
#: for the failed invoice or a settled subscription (before: any paid invoice did).
INVOICE_PAID_MATCH = "invoice-paid-match"
#: ``workflow.patched`` id (2026-12-03, issue 17): the payment-failure workflow climbs the
#: plan's dunning ladder (before: one grace timer, then suspend or auto-downgrade).
DUNNING_LADDER = "dunning-ladder"


async def suspend(
    op: Operation,
    tenant: TenantView,
    reason: str,
    kind: str | None = None,
    resume_at: datetime | None = None,
) -> TenantView:
    """ACTIVE -> SUSPENDED, every entitlement zeroed, ``suspended_reason`` set, and with
    ``kind`` the ``suspension`` column (``{"kind": ..., "resume_at": ISO UTC or None}``)."""
    await op.record("revoke-access")
    changes: dict[str, Any] = {"suspended_reason": reason}
    if kind is not None:
        at = resume_at.isoformat() if resume_at else None
        changes["suspension"] = {"kind": kind, "resume_at": at}
    return await op.transition(
        [S.ACTIVE],
        S.SUSPENDED,
        reason=reason,
        entitlements={resource: 0 for resource in tenant.entitlements},
        changes=changes,
    )


async def downgrade_unpaid(
    op: Operation, tenant: TenantView, to_plan: str | None, why: str
) -> tuple[TenantView, str]:
    """ACTIVE -> DOWNGRADING -> ACTIVE on ``to_plan`` (None: the lowest plan), the paid
    subscription cancelled (skipped in limited mode); a tenant already on or below that plan
    is suspended instead (``suspension.kind = "dunning"``). Usage above the plan's limits does
    not block this: the tenant stopped paying for it. ``why`` starts the audit reason (e.g.
    ``payment failed: invoice in_1``); returns the tenant and the outcome."""
    lowest = await call(DeletionActivities.resolve_plan, to_plan)
    if tenant.plan == lowest.name or tenant.plan in lowest.below:
        reason = why.replace("payment failed", "payment failed on the lowest plan", 1)
        return await suspend(op, tenant, reason, "dunning"), "suspended"
    await op.record("auto-downgrade")
    reason = f"{why}; moved to {lowest.name}"
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
            tenant = await suspend(op, tenant, data.reason, "admin")
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
class PauseWorkflow:
    """Pause an ACTIVE tenant (``tenant-<id>-pause``):

    1. ACTIVE -> SUSPENDED, entitlements zeroed, ``suspension = {kind: "paused", resume_at}``.
    2. Billing: the subscription's ``pause_collection`` (PAUSE_COLLECTION_BEHAVIOR, with
       ``resumes_at``); when that fails the tenant is restored and the pause fails.
    3. A durable timer until ``resume_at`` (none: until resumed), cut short by the ``resume``
       signal (``POST /tenants/{id}/resume``).
    4. The reactivation path (:func:`~workflows.reactivation.restore_service`): REACTIVATING,
       collection resumed on the kept subscription, the plan's entitlements, ACTIVE. A tenant
       that something else moved meanwhile (reactivated, deleted) is left as it is.
    """

    @workflow.init
    def __init__(self, data: PauseInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.PAUSE, data.actor)
        self.resumed: ResumeSignal | None = None

    @workflow.signal
    def resume(self, signal: ResumeSignal) -> None:
        """Resume now (the timer is cut short)."""
        self.resumed = signal

    @workflow.run
    async def run(self, data: PauseInput) -> PauseResult:
        op = self.op
        try:
            tenant = await read_tenant(data.tenant_id)
            plan = await call(DeletionActivities.resolve_plan, tenant.plan)
            tenant = await suspend(op, tenant, data.reason, "paused", data.resume_at)
            await op.record("pause-collection")
            try:
                await call(
                    BillingActivities.pause_collection,
                    PauseCollectionInput(
                        tenant_id=tenant.tenant_id,
                        subscription_id=tenant.billing_subscription_id,
                        behavior=data.behavior,
                        resumes_at=data.resume_at,
                        idempotency_scope=op.idempotency_scope,
                    ),
                    summary=f"pause collection ({data.behavior})",
                )
            except ActivityError:
                await asyncio.shield(restore_service(op, tenant, plan))
                raise
            await op.record("paused")
            until = data.resume_at
            remaining = until - workflow.now() if until else None
            if remaining is None or remaining > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self.resumed is not None,
                        timeout=remaining,
                        timeout_summary=f"paused until {until}",
                    )
                except TimeoutError:
                    pass
            tenant = await read_tenant(data.tenant_id)
            kind = tenant.suspension.kind if tenant.suspension else None
            if tenant.state is not S.SUSPENDED or kind != "paused":
                outcome = f"ended: tenant is {tenant.state}"
            else:
                tenant = await restore_service(op, tenant, plan)
                outcome = "resumed early" if self.resumed else "resumed on schedule"
        except ActivityError as err:
            raise await op.fail(err, "pause") from err
        return await op.complete(
            PauseResult(
                tenant_id=tenant.tenant_id, state=tenant.state, plan=tenant.plan, outcome=outcome
            )
        )

    @workflow.query
    def progress(self) -> OperationProgress:
        """Current step of the pause."""
        return self.op.progress()


@workflow.defn
class PaymentFailureWorkflow:
    """Dunning after a failed payment: the plan's ladder of steps until the overdue invoices
    are paid (before the ``dunning-ladder`` patch: a grace period, then suspension or
    automatic downgrade)."""

    @workflow.init
    def __init__(self, data: PaymentFailureInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.PAYMENT_FAILURE, "billing")
        self.invoice_id = data.invoice_id
        self.open_invoices = [data.invoice_id] if data.invoice_id is not None else []
        self.paid: InvoicePaid | None = None
        self.dunning: DunningStatus | None = None

    @workflow.signal
    def invoice_paid(self, paid: InvoicePaid | None = None) -> None:
        """``invoice.paid`` arrived: the pending suspension is cancelled when it is the failed
        invoice or the subscription is settled (:func:`settles`); other payments are logged
        and change nothing. On a ladder every overdue invoice must be paid."""
        paid = paid or InvoicePaid()
        if workflow.patched(DUNNING_LADDER):
            if paid.invoice_id in self.open_invoices:
                self.open_invoices.remove(paid.invoice_id)
            if paid.subscription_settled or self.invoice_id is None or not self.open_invoices:
                self.paid = paid
            else:
                workflow.logger.info("invoice %s paid; %s still open", paid, self.open_invoices)
            return
        if workflow.patched(INVOICE_PAID_MATCH) and not settles(paid, self.invoice_id):
            workflow.logger.info(
                "invoice %s paid; the failed invoice %s is still open",
                paid.invoice_id,
                self.invoice_id,
            )
            return
        self.paid = paid

    @workflow.signal
    def invoice_failed(self, failed: InvoiceFailed) -> None:
        """Another invoice failed during dunning: it must be paid too before the tenant is
        restored (the ladder's clock keeps counting from the first unpaid invoice)."""
        if failed.invoice_id is not None and failed.invoice_id not in self.open_invoices:
            self.open_invoices.append(failed.invoice_id)

    @workflow.run
    async def run(self, data: PaymentFailureInput) -> PaymentFailureResult:
        if workflow.patched(DUNNING_LADDER):
            return await self._climb(data)
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
            tenant = await self._idle(data.tenant_id)
            if self.paid is not None:
                outcome = "recovered"
                await self._event("payment-recovered", data, invoice_paid=self.paid.invoice_id)
            elif tenant.state is not S.ACTIVE:
                outcome = f"no action: tenant is {tenant.state}"
                await self._event("payment-failure-no-action", data, state=tenant.state.value)
            elif data.auto_downgrade:
                tenant, outcome = await downgrade_unpaid(
                    op, tenant, None, f"payment failed: invoice {data.invoice_id}"
                )
            else:
                reason = f"payment failed: invoice {data.invoice_id}"
                tenant, outcome = await suspend(op, tenant, reason, "dunning"), "suspended"
        except ActivityError as err:
            raise await op.fail(err, "payment failure handling") from err
        return await op.complete(
            PaymentFailureResult(
                tenant_id=tenant.tenant_id, state=tenant.state, plan=tenant.plan, outcome=outcome
            )
        )

    async def _idle(self, tenant_id: str) -> TenantView:
        """The tenant once no other operation runs on it (or once paid meanwhile)."""
        tenant = await read_tenant(tenant_id)
        await self.op.record("wait-for-operation")
        while tenant.state in BUSY and self.paid is None:
            await workflow.sleep(BUSY_POLL, summary=f"wait: tenant is {tenant.state}")
            tenant = await read_tenant(tenant_id)
        return tenant

    async def _climb(self, data: PaymentFailureInput) -> PaymentFailureResult:
        """The ladder (steps 1-4 of the module docstring)."""
        op, ladder = self.op, data.ladder
        first = workflow.now()
        try:
            tenant = await read_tenant(data.tenant_id)
            plan = tenant.plan
            await self._mark(
                status_at(ladder, first, 0, first, plan),
                "dunning-started",
                "started",
                {"invoice": data.invoice_id, "plan": plan},
            )
            outcome, applied = "payment pending", 0
            while applied < len(ladder) and self.paid is None:
                step = ladder[applied]
                await op.record(f"dunning: {step.kind} on day {step.day}")
                if await self._paid_by(first + timedelta(days=step.day), f"{step.kind}"):
                    break
                tenant = await self._idle(data.tenant_id)
                if self.paid is not None:
                    break
                if (
                    step.kind in NEEDS_ACTIVE
                    and tenant.state is not S.ACTIVE
                    or (
                        step.kind == "cancel_and_delete"
                        and tenant.state not in (S.ACTIVE, S.SUSPENDED)
                    )
                ):
                    return await self._no_action(data, tenant)
                tenant, outcome = await self._apply(step, tenant, data)
                applied += 1
                detail: dict[str, str | int | None] = {
                    "kind": step.kind,
                    "day": step.day,
                    "plan": plan,
                }
                status = status_at(ladder, first, applied, workflow.now(), plan)
                if step.kind in TERMINAL:
                    await self._mark(None, "dunning-step", f"step-{applied}", detail)
                    return await self._result(tenant, outcome)
                await self._mark(status, "dunning-step", f"step-{applied}", detail)
            if self.paid is None:
                await op.record("payment-window")
                window = workflow.now() + timedelta(days=data.payment_window_days)
                await self._paid_by(window, "payment window")
            if self.paid is not None:
                tenant = await self._restore(data)
                outcome = "recovered"
            else:
                await self._mark(None, "dunning-ended", "ended", {"state": tenant.state.value})
        except ActivityError as err:
            raise await op.fail(err, "payment failure handling") from err
        return await self._result(tenant, outcome)

    async def _paid_by(self, due: datetime, summary: str) -> bool:
        """Wait on a durable timer until ``due`` unless paid first; whether paid."""
        remaining = due - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: self.paid is not None, timeout=remaining, timeout_summary=summary
                )
            except TimeoutError:
                pass
        return self.paid is not None

    async def _apply(
        self, step: DunningStep, tenant: TenantView, data: PaymentFailureInput
    ) -> tuple[TenantView, str]:
        """Apply one step to the tenant (its state checked by the caller); returns the tenant
        and the outcome so far."""
        op = self.op
        if step.kind == "read_only":
            await self._provision(tenant, {**tenant.entitlements, READ_ONLY: 1}, "read-only")
            return await read_tenant(tenant.tenant_id), "read-only"
        if step.kind == "suspend":
            reason = f"payment failed: invoice {data.invoice_id}"
            return await suspend(op, tenant, reason, "dunning"), "suspended"
        if step.kind == "downgrade":
            return await downgrade_unpaid(
                op, tenant, step.to_plan, f"payment failed: invoice {data.invoice_id}"
            )
        if step.kind == "cancel_and_delete":
            await op.record("cancel-and-delete")
            await workflow.start_child_workflow(
                DeletionWorkflow.run,
                DeletionInput(
                    tenant_id=tenant.tenant_id,
                    requested_by="billing",
                    reason=f"unpaid: invoice {data.invoice_id}",
                    retention_days=data.retention_days,
                    actor="billing",
                ),
                id=workflow_id(tenant.tenant_id, OperationKind.DELETION),
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"soft delete: unpaid invoice {data.invoice_id}",
                search_attributes=search_attributes(tenant.tenant_id, OperationKind.DELETION),
            )
            return tenant, "cancelled and deleted"
        return tenant, "notified"

    async def _restore(self, data: PaymentFailureInput) -> TenantView:
        """Full service at once on the tenant's plan (the one when payment failed, unless an
        operator changed it meanwhile): a dunning suspension reactivated, the plan's
        entitlements; the dunning status cleared with ``payment-recovered``, which lifts
        ``read_only`` in the same transaction."""
        tenant = await read_tenant(data.tenant_id)
        # the plan in force: an operator's plan change during dunning stands (same activity,
        # another argument: histories replay unchanged)
        resolved = await call(DeletionActivities.resolve_plan, tenant.plan)
        if (
            tenant.state is S.SUSPENDED
            and tenant.suspension
            and tenant.suspension.kind == "dunning"
        ):
            tenant = await restore_service(self.op, tenant, resolved)
        elif tenant.state is S.ACTIVE and READ_ONLY in tenant.entitlements:
            await self._provision(tenant, resolved.limits, "restore-entitlements")
        paid = self.paid.invoice_id if self.paid else None
        await self._mark(None, "payment-recovered", "recovered", {"invoice_paid": paid})
        return await read_tenant(data.tenant_id)

    async def _provision(self, tenant: TenantView, limits: dict[str, int], step: str) -> None:
        await self.op.record(step)
        await call(
            ProvisioningActivities.provision_entitlements,
            ProvisionInput(
                tenant_id=tenant.tenant_id,
                plan=tenant.plan,
                limits=limits,
                event=StepEventInput(
                    tenant_id=tenant.tenant_id,
                    operation=step,
                    workflow_id=self.op.workflow_id,
                    actor=self.op.actor,
                    key=f"{idempotency_scope()}:{step}",
                    detail={"step": step, "plan": tenant.plan},
                ),
            ),
            summary=f"{step}: {tenant.plan}",
        )

    async def _mark(
        self,
        status: DunningStatus | None,
        operation: str,
        key: str,
        detail: dict[str, str | int | None],
    ) -> None:
        """Set the tenant's dunning status (None: clear it) with the audit row ``operation``."""
        self.dunning = status
        await control_plane(
            TenantActivities.set_dunning,
            DunningUpdate(
                tenant_id=self.op.tenant_id,
                workflow_id=self.op.workflow_id,
                status=status,
                operation=operation,
                key=f"{idempotency_scope()}:{key}",
                detail=detail,
            ),
            summary=operation,
        )

    async def _no_action(
        self, data: PaymentFailureInput, tenant: TenantView
    ) -> PaymentFailureResult:
        """The tenant left ACTIVE by another way (admin suspension, deletion): the ladder
        stops there."""
        await self._mark(
            None, "payment-failure-no-action", "no-action", {"state": tenant.state.value}
        )
        return await self._result(tenant, f"no action: tenant is {tenant.state}")

    async def _result(self, tenant: TenantView, outcome: str) -> PaymentFailureResult:
        return await self.op.complete(
            PaymentFailureResult(
                tenant_id=tenant.tenant_id, state=tenant.state, plan=tenant.plan, outcome=outcome
            )
        )

    async def _event(self, operation: str, data: PaymentFailureInput, **detail: Any) -> None:
        await audit_event(
            data.tenant_id, operation, {"invoice": data.invoice_id, **detail}, actor="billing"
        )

    @workflow.query
    def progress(self) -> PaymentFailureProgress:
        """Current step, whether the invoices were paid meanwhile, those still open and the
        place on the dunning ladder."""
        return PaymentFailureProgress(
            operation=self.op.kind,
            step=self.op.current_step,
            paid=self.paid is not None,
            invoice_id=self.invoice_id,
            open_invoices=list(self.open_invoices),
            dunning=self.dunning,
        )
