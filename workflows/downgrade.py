"""Downgrade: move an ACTIVE tenant to a lower plan, at the billing period's end (default) or
immediately. Workflow id ``tenant-<id>-downgrade``.

At period end the tenant stays ACTIVE with ``pending_plan_change`` set while a durable timer
runs until the current period's end (the subscription's, or in limited mode the next monthly
anniversary of the tenant's creation); the ``cancel_downgrade`` signal, or an upgrade, cancels
it. When the timer fires, usage is checked again (it may have grown), then the plan-change
saga runs: entitlements reduced, billing changed without proration (the new price applies from
the next invoice), ACTIVE. Immediately: the same saga now, with proration (a credit).

Period-end schedules (patch ``downgrade-schedule``, issue 12 defect 8): when the downgrade is
scheduled, a Stripe subscription schedule is created (phase 1: the current price until
``current_period_end``; phase 2: the lower price), so Stripe renews at the lower price even if
it renews before the timer fires. Its id is in ``pending_plan_change.schedule_id``. A cancel,
or a superseding upgrade (which signals ``cancel_downgrade``), releases it. At the timer the
saga only applies the entitlements and checks the price (billing's ``unless_current``: no call
when the schedule took effect), then the schedule is released (its phase is applied). Refused
or not applied at period end: the schedule is released and the previous price put back
(``restore-price``, no proration). Executions started before keep the old path (the price
changed at the timer).
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.billing import (
        BillingActivities,
        ChangePriceInput,
        PeriodInput,
        ReleaseScheduleInput,
        ScheduleChangeInput,
    )
    from activities.plan_changes import PlanChangeActivities
    from activities.usage import UsageActivities
    from lifecycle.domain.operations import OperationKind
    from lifecycle.domain.plan_changes import (
        CancelDowngrade,
        DowngradeCancelled,
        DowngradeProgress,
        DowngradeResult,
        PendingChangeInput,
        PlanChangeInput,
        UsageExceedsLimits,
        pending_change,
    )
    from lifecycle.domain.plans import usage_violations
    from lifecycle.domain.states import TenantState
    from workflows.common import Operation, call, read_tenant
    from workflows.plan_change import PlanChangeSaga, settles_steps, step_key

#: ``workflow.patched`` id (2026-12-04): a period-end downgrade is billed by a Stripe
#: subscription schedule created when it is scheduled (before: the price changed at the timer,
#: one period late when Stripe renewed first).
DOWNGRADE_SCHEDULE = "downgrade-schedule"


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus ``months`` calendar months, the day clamped to the month's length."""
    year, month0 = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return moment.replace(year=year, month=month0 + 1, day=day)


def next_anniversary(anchor: datetime, after: datetime) -> datetime:
    """The first monthly anniversary of ``anchor`` (``anchor`` itself included) later than
    ``after``: the end of the current billing period when billing is not available."""
    months = 0
    while (candidate := add_months(anchor, months)) <= after:
        months += 1
    return candidate


@workflow.defn
class DowngradeWorkflow:
    """Downgrade ``data.tenant_id`` from ``data.from_plan`` to ``data.to_plan``."""

    @workflow.init
    def __init__(self, data: PlanChangeInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.DOWNGRADE, data.actor)
        self.data = data
        self.effective_at: datetime | None = None
        self.cancel: CancelDowngrade | None = None
        self.scheduled = False  # a Stripe schedule bills the change at period end
        self.schedule_id: str | None = None
        self.use_schedule = False  # patched: schedules the period-end price change

    @workflow.run
    async def run(self, data: PlanChangeInput) -> DowngradeResult | DowngradeCancelled:
        # the patches first, before any other command (see plan_change.settles_steps)
        op, settle = self.op, settles_steps()
        self.use_schedule = workflow.patched(DOWNGRADE_SCHEDULE)
        op.fold_steps()
        at_period_end = data.effective == "period_end"
        if at_period_end:
            await self._wait_for_period_end(data)
            if self.cancel is not None:
                return await self._cancelled(self.cancel)
        await self._check_usage(data)
        proration = "none" if at_period_end else data.proration_behavior
        saga = PlanChangeSaga(
            op, data, TenantState.DOWNGRADING, proration, settle, scheduled=self.scheduled
        )
        try:
            await saga.lock({"effective": data.effective})
        except ApplicationError as err:
            if at_period_end:  # e.g. SUSPENDED meanwhile: no change, say why
                await self._undo_schedule()
                await self._clear_pending(f"not applied at period end: {err.message}")
            raise
        changed = await saga.apply()
        if at_period_end:  # its phase applied: nothing left for the schedule to do
            await self._release_schedule()
        result = DowngradeResult(
            **changed.model_dump(), effective=data.effective, effective_at=self._effective_at_iso
        )
        return await op.complete(result)

    @workflow.signal
    def cancel_downgrade(self, request: CancelDowngrade) -> None:
        """Cancel a downgrade still waiting for the period end (ignored once it applies)."""
        if self.cancel is None:
            self.cancel = request

    @workflow.query
    def progress(self) -> DowngradeProgress:
        """Current step, target plan and when the downgrade takes effect (UTC)."""
        return DowngradeProgress(
            operation=self.op.kind,
            step=self.op.current_step,
            to_plan=self.data.to_plan,
            effective=self.data.effective,
            effective_at=self._effective_at_iso,
        )

    @property
    def _effective_at_iso(self) -> str | None:
        return self.effective_at.isoformat() if self.effective_at else None

    # -- steps -----------------------------------------------------------------------------

    async def _wait_for_period_end(self, data: PlanChangeInput) -> None:
        """Show the pending change, then sleep durably until the period ends or a cancel."""
        op = self.op
        await op.record("scheduling")
        tenant = await read_tenant(data.tenant_id)
        period = await call(
            BillingActivities.current_period,
            PeriodInput(tenant_id=data.tenant_id, subscription_id=tenant.billing_subscription_id),
            summary="current billing period",
        )
        self.effective_at = period.period_end or next_anniversary(
            tenant.billing_period_end or tenant.created_at, workflow.now()
        )
        try:
            if self.use_schedule:
                self.scheduled = True
                scheduled = await call(
                    BillingActivities.schedule_price_change,
                    ScheduleChangeInput(
                        tenant_id=data.tenant_id,
                        subscription_id=tenant.billing_subscription_id,
                        price_id=data.price_id,
                        idempotency_scope=op.idempotency_scope,
                    ),
                    summary=f"schedule {data.price_id} at period end",
                )
                self.schedule_id = scheduled.detail.get("schedule_id")
            await call(
                PlanChangeActivities.set_pending_plan_change,
                PendingChangeInput(
                    tenant_id=data.tenant_id,
                    change=pending_change(
                        data, op.workflow_id, self.effective_at, self.schedule_id
                    ),
                    workflow_id=op.workflow_id,
                    operation=op.kind,
                    actor=data.actor,
                    key=step_key("pending"),
                ),
                summary=f"pending: {data.to_plan} at {self.effective_at:%Y-%m-%d}",
            )
        except ActivityError as err:
            raise await op.fail(err, op.kind) from err
        await op.record("waiting-for-period-end")
        delay = self.effective_at - workflow.now()
        if delay > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: self.cancel is not None,
                    timeout=delay,
                    timeout_summary="billing period end",
                )
            except TimeoutError:
                pass

    async def _check_usage(self, data: PlanChangeInput) -> None:
        """Refuse (non-retryable ``UsageExceedsLimits``) when usage exceeds the target."""
        usage = await self.op.step(
            "usage-check", UsageActivities.current_usage, data.tenant_id, summary="usage"
        )
        violations = usage_violations(usage, data.limits)
        if not violations:
            return
        message = UsageExceedsLimits(data.tenant_id, data.to_plan, violations).detail
        if data.effective == "period_end":
            await self._undo_schedule()
            await self._clear_pending(f"refused at period end: {message}")
        await self.op.record("refused", "failed", error=message)
        raise ApplicationError(
            message,
            {"violations": [v.model_dump() for v in violations]},
            type="UsageExceedsLimits",
            non_retryable=True,
        )

    async def _clear_pending(self, reason: str, actor: str | None = None) -> None:
        await call(
            PlanChangeActivities.set_pending_plan_change,
            PendingChangeInput(
                tenant_id=self.data.tenant_id,
                change=None,
                workflow_id=self.op.workflow_id,
                operation=self.op.kind,
                actor=actor or self.op.actor,
                reason=reason,
                key=step_key("clear-pending"),
            ),
            summary="clear pending plan change",
        )

    async def _release_schedule(self) -> bool:
        """Patched path: release the period-end schedule, if there is one (False: none)."""
        if not self.scheduled or self.schedule_id is None:
            return False
        await call(
            BillingActivities.release_schedule,
            ReleaseScheduleInput(
                tenant_id=self.data.tenant_id,
                schedule_id=self.schedule_id,
                idempotency_scope=self.op.idempotency_scope,
            ),
            summary="release the period-end schedule",
        )
        return True

    async def _undo_schedule(self) -> None:
        """Patched path, the downgrade not applied: release the schedule (a cancel before the
        period end) and put the previous price back if the schedule already moved it."""
        if not await self._release_schedule():
            return
        data = self.data
        if self.cancel is not None and workflow.now() < (self.effective_at or workflow.now()):
            return  # cancelled during the wait: the schedule never moved the price
        tenant = await read_tenant(data.tenant_id)
        await call(
            BillingActivities.change_price,
            ChangePriceInput(
                tenant_id=data.tenant_id,
                subscription_id=tenant.billing_subscription_id,
                price_id=data.previous_price_id,
                proration_behavior="none",
                idempotency_key=step_key("restore-price"),
                unless_current=True,
            ),
            summary=f"restore-price: {data.previous_price_id}",
        )

    async def _cancelled(self, request: CancelDowngrade) -> DowngradeCancelled:
        await self._undo_schedule()
        await self._clear_pending(f"downgrade cancelled: {request.reason}", request.actor)
        result = DowngradeCancelled(
            tenant_id=self.data.tenant_id,
            plan=self.data.from_plan,
            to_plan=self.data.to_plan,
            effective_at=self._effective_at_iso,
            cancelled_by=request.actor,
            reason=request.reason,
        )
        await self.op.record("cancelled", "completed", result=result)
        return result
