"""The plan-change saga shared by upgrade and downgrade.

    ACTIVE -> UPGRADING|DOWNGRADING        compare-and-set + audit (the lock)
    provision the target entitlements      undo: restore the previous entitlements
    change the subscription item's price   undo: put the previous price back (if changed)
    commit plan, -> ACTIVE                 compare-and-set + audit

Entitlements come before billing (docs/architecture.md: "provision the new entitlements *before*
billing"), so a tenant is never billed for limits it does not have. Each undo is registered
before its step runs (the step may succeed and still report a failure, e.g. a timeout after
Stripe committed), tolerates "nothing to undo", and runs under ``asyncio.shield`` in reverse
order; then the tenant returns to ACTIVE on its previous plan with the failure, its cause and
every undo's outcome in the audit row and in the operation's result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities, ChangePriceInput
    from activities.provisioning import ProvisioningActivities, ProvisionInput
    from lifecycle.domain.billing import BillingResult
    from lifecycle.domain.plan_changes import (
        Compensation,
        PlanChangeCompensated,
        PlanChangeInput,
        PlanChangeResult,
        StepCause,
        StepEventInput,
    )
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import TenantView
    from workflows.common import Operation, Status, call, idempotency_scope

Undo = Callable[[], Awaitable[str]]


def step_key(step: str) -> str:
    """Idempotency key of one saga step of this workflow run: the same for every attempt of
    the activity and after a worker crash, different for a later run under the same id."""
    return f"{idempotency_scope()}:{step}"


def _cause(err: BaseException) -> StepCause:
    """Type and message of what made a step fail (the activity's error when there is one)."""
    if isinstance(err, asyncio.CancelledError):
        return StepCause(type="Cancelled", message="the operation was cancelled")
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    return StepCause(type=kind or type(cause).__name__, message=str(cause))


class PlanChangeSaga:
    """Runs one plan change for ``op``; ``busy`` is the state held while it runs and
    ``proration_behavior`` Stripe's proration for the price change."""

    def __init__(
        self,
        op: Operation,
        data: PlanChangeInput,
        busy: TenantState,
        proration_behavior: str,
    ) -> None:
        self.op, self.data, self.busy = op, data, busy
        self.proration_behavior = proration_behavior
        self.tenant: TenantView  # as locked: previous entitlements, subscription

    async def lock(self, lock_detail: dict[str, Any] | None = None) -> None:
        """ACTIVE -> ``busy`` (clearing any pending plan change); raises a non-retryable
        ApplicationError (``StateConflict`` naming the state) when the tenant is not ACTIVE."""
        op, data = self.op, self.data
        await op.record("lock")
        try:
            self.tenant = await op.transition(
                [TenantState.ACTIVE],
                self.busy,
                changes={"pending_plan_change": None},
                detail={
                    "from_plan": data.from_plan,
                    "to_plan": data.to_plan,
                    **(lock_detail or {}),
                },
            )
        except ActivityError as err:
            raise await op.fail(err, op.kind) from err

    async def apply(self) -> PlanChangeResult:
        """Provision, bill, commit; returns the change for the caller to complete the
        operation with (:meth:`Operation.complete`). Raises a non-retryable ApplicationError
        typed by the cause (e.g. ``CardDeclined``) after compensating."""
        op, data = self.op, self.data
        undo: list[tuple[str, Undo]] = []
        try:
            await op.record("provision-entitlements")
            undo.append(("restore-entitlements", self._restore_entitlements))
            await self._provision(data.to_plan, data.limits, "provision-entitlements")
            await op.record("billing")
            undo.append(("revert-billing", self._revert_billing))
            billing = await self._change_price(data.price_id, "billing")
            await op.record("commit")
            await op.transition(
                [self.busy],
                TenantState.ACTIVE,
                changes={"plan": data.to_plan},
                detail={
                    "from_plan": data.from_plan,
                    "to_plan": data.to_plan,
                    "billing": billing.model_dump(mode="json"),
                },
            )
        except (Exception, asyncio.CancelledError) as err:
            await self._compensate(err, undo)
        return PlanChangeResult(
            tenant_id=data.tenant_id,
            state=TenantState.ACTIVE,
            from_plan=data.from_plan,
            plan=data.to_plan,
            entitlements=data.limits,
            billing=billing,
            applied_at=workflow.now().isoformat(),
        )

    # -- steps -----------------------------------------------------------------------------

    async def _provision(self, plan: str, limits: dict[str, int], step: str) -> None:
        await call(
            ProvisioningActivities.provision_entitlements,
            ProvisionInput(
                tenant_id=self.data.tenant_id,
                plan=plan,
                limits=limits,
                event=StepEventInput(
                    tenant_id=self.data.tenant_id,
                    operation=self.op.kind,
                    workflow_id=self.op.workflow_id,
                    actor=self.op.actor,
                    key=step_key(step),
                    detail={"step": step, "plan": plan},
                ),
            ),
            summary=f"{step}: {plan}",
        )

    async def _change_price(self, price_id: str, step: str, *, undo: bool = False) -> BillingResult:
        return await call(
            BillingActivities.change_price,
            ChangePriceInput(
                tenant_id=self.data.tenant_id,
                subscription_id=self.tenant.billing_subscription_id,
                price_id=price_id,
                proration_behavior=self.proration_behavior,
                idempotency_key=step_key(step),
                unless_current=undo,
            ),
            summary=f"{step}: {price_id}",
        )

    async def _restore_entitlements(self) -> str:
        previous = self.tenant.entitlements
        await self._provision(self.data.from_plan, previous, "restore-entitlements")
        return f"restored the {self.data.from_plan} entitlements"

    async def _revert_billing(self) -> str:
        result = await self._change_price(self.data.previous_price_id, "revert-billing", undo=True)
        if result.skipped:
            return "skipped (no billing)"
        if not result.detail.get("changed"):
            return "nothing to undo"
        return f"subscription back on {self.data.previous_price_id}"

    async def _compensate(self, err: BaseException, undo: list[tuple[str, Undo]]) -> NoReturn:
        """Undo the completed steps in reverse, return to ACTIVE on the previous plan, record
        the failure and re-raise it (a cancellation stays a cancellation)."""
        op, data = self.op, self.data
        failed_step, cause = op.current_step, _cause(err)
        message = (
            f"{op.kind} from '{data.from_plan}' to '{data.to_plan}' failed at step "
            f"{failed_step}: {cause.message}"
        )
        outcomes = []
        for name, action in reversed(undo):
            try:
                outcome = await asyncio.shield(action())
            except ActivityError as undo_err:
                outcome = f"failed: {_cause(undo_err).message}"
            outcomes.append(Compensation(step=name, outcome=outcome))
        result = PlanChangeCompensated(
            tenant_id=data.tenant_id,
            state=TenantState.ACTIVE,
            plan=data.from_plan,
            failed_step=failed_step,
            failure=message,
            cause=cause,
            compensations=outcomes,
        )
        audit = result.model_dump(mode="json", include={"failed_step", "cause", "compensations"})
        await asyncio.shield(
            op.transition([self.busy], TenantState.ACTIVE, reason=message, detail=audit)
        )
        cancelled = isinstance(err, asyncio.CancelledError)
        status: Status = "cancelled" if cancelled else "failed"
        await asyncio.shield(op.record("compensated", status, result=result, error=message))
        if cancelled:
            raise err
        details = result.model_dump(mode="json")
        raise ApplicationError(message, details, type=cause.type, non_retryable=True) from err
