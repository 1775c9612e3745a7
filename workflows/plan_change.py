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

Cancellation (patch ``saga-cancellation``): a cancel that arrives while a step runs does not
abandon it. The step's activity is asked to stop and the saga waits until it has ended
(``WAIT_CANCELLATION_COMPLETED``; billing activities heartbeat, so they learn of the cancel,
and let an in-flight Stripe call finish first): a price change may have committed, and
compensation must see it. Compensation then decides from Stripe's state (``revert-billing``
reads the subscription's price) and the workflow ends Canceled, the operation ``cancelled``,
the audit row naming who cancelled (:func:`lifecycle.domain.plan_changes.cancel_reason`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType, ActivityConfig

with workflow.unsafe.imports_passed_through():
    from activities.billing import (
        BillingActivities,
        CancelSubscriptionInput,
        ChangePriceInput,
    )
    from activities.provisioning import ProvisioningActivities, ProvisionInput
    from lifecycle.domain.billing import BillingResult
    from lifecycle.domain.plan_changes import (
        Compensation,
        PlanChangeCompensated,
        PlanChangeInput,
        PlanChangeResult,
        StepCause,
        StepEventInput,
        cancelling_actor,
    )
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import TenantView
    from workflows.common import End, Operation, Status, call, idempotency_scope

Undo = Callable[[], Awaitable[str]]
T = TypeVar("T")
#: ``workflow.patched`` id (2026-12-03): saga steps run to their end when cancelled, and a
#: cancelled plan change ends Canceled (before: compensation raced the in-flight step, and the
#: operation was reported failed).
SAGA_CANCELLATION = "saga-cancellation"
#: Billing activities heartbeat while a Stripe call is in flight; a worker lost mid-call is
#: noticed after this, and a cancel reaches the activity within about this long.
BILLING_HEARTBEAT = timedelta(seconds=10)


def settles_steps() -> bool:
    """Whether this execution runs the ``saga-cancellation`` code. Called first thing in a plan
    change's ``run``, before any other command: a patch marker evaluated later, right after a
    local activity in the same workflow task, is found in history before the replaying code
    asks for it (nondeterminism error after a worker restart, seen in the topology test)."""
    return workflow.patched(SAGA_CANCELLATION)


def settled_options(summary: str, *, heartbeat: bool, settle: bool) -> ActivityConfig:
    """The options of a saga step labelled ``summary``: with ``settle`` (patched executions)
    it must not be abandoned by a cancel: ``WAIT_CANCELLATION_COMPLETED``, and a heartbeat
    timeout for activities that heartbeat (billing)."""
    options: ActivityConfig = {"summary": summary}
    if not settle:
        return options
    options["cancellation_type"] = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
    if heartbeat:
        options["heartbeat_timeout"] = BILLING_HEARTBEAT
    return options


async def settled(step: Awaitable[T]) -> T:
    """Await ``step`` (an activity call); when the workflow is cancelled meanwhile, cancel the
    activity, wait until it has ended (completed or cancelled, whichever it reports), then
    re-raise the cancellation: whatever the step did is then visible to its compensation."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            task.cancel()
        try:
            await task
        except (Exception, asyncio.CancelledError) as ended:
            workflow.logger.info("cancelled step ended: %s", ended)
        raise


def step_key(step: str) -> str:
    """Idempotency key of one saga step of this workflow run: the same for every attempt of
    the activity and after a worker crash, different for a later run under the same id."""
    return f"{idempotency_scope()}:{step}"


def _cause(err: BaseException) -> StepCause:
    """Type and message of what made a step fail (the activity's error when there is one)."""
    if is_cancelled_exception(err):
        return StepCause(type="Cancelled", message="the operation was cancelled")
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    return StepCause(type=kind or type(cause).__name__, message=str(cause))


class PlanChangeSaga:
    """Runs one plan change for ``op``; ``busy`` is the state held while it runs,
    ``proration_behavior`` Stripe's proration for the price change and ``settle`` the
    execution's :func:`settles_steps`. ``scheduled``: a Stripe subscription schedule already
    moved the price, so the billing step only checks it (changes it only if the schedule did
    not, e.g. released in the dashboard)."""

    def __init__(
        self,
        op: Operation,
        data: PlanChangeInput,
        busy: TenantState,
        proration_behavior: str,
        settle: bool,
        scheduled: bool = False,
    ) -> None:
        self.op, self.data, self.busy, self.settle = op, data, busy, settle
        self.proration_behavior = proration_behavior
        self.scheduled = scheduled
        self.tenant: TenantView  # as locked: previous entitlements, subscription
        self.created: BillingResult | None = None  # the subscription the billing step created

    async def lock(self, lock_detail: dict[str, Any] | None = None) -> None:
        """ACTIVE -> ``busy`` (clearing any pending plan change); raises a non-retryable
        ApplicationError (``StateConflict`` naming the state) when the tenant is not ACTIVE."""
        op, data = self.op, self.data
        try:
            self.tenant = await op.transition(
                [TenantState.ACTIVE],
                self.busy,
                step="lock",
                changes={"pending_plan_change": None},
                detail={
                    "from_plan": data.from_plan,
                    "to_plan": data.to_plan,
                    **(lock_detail or {}),
                },
            )
        except ActivityError as err:
            raise await op.fail(err, op.kind) from err

    async def apply(self, complete: bool = False) -> PlanChangeResult:
        """Provision, bill, commit; returns the change for the caller to complete the
        operation with (:meth:`Operation.complete`), or, with ``complete``, after the commit
        recorded the operation completed with it. Raises a non-retryable ApplicationError
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
            changes: dict[str, Any] = {"plan": data.to_plan}
            if billing.detail.get("created"):  # the tenant had no subscription: now it has
                self.created = billing
                changes |= {
                    "billing_customer_id": billing.customer_id,
                    "billing_subscription_id": billing.subscription_id,
                }
            # with ``complete``, the result is known before the commit, which records it
            result = self._result(billing) if complete else None
            await op.transition(
                [self.busy],
                TenantState.ACTIVE,
                step="commit",
                end=End("completed", "completed", result) if result is not None else None,
                changes=changes,
                detail={
                    "from_plan": data.from_plan,
                    "to_plan": data.to_plan,
                    "billing": billing.model_dump(mode="json"),
                },
            )
        except (Exception, asyncio.CancelledError) as err:
            await self._compensate(err, undo)
        return result if result is not None else self._result(billing)

    def _result(self, billing: BillingResult) -> PlanChangeResult:
        data = self.data
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
        options = settled_options(f"{step}: {plan}", heartbeat=False, settle=self.settle)
        call_ = call(
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
            **options,
        )
        await (settled(call_) if self.settle else call_)

    async def _change_price(self, price_id: str, step: str, *, undo: bool = False) -> BillingResult:
        options = settled_options(f"{step}: {price_id}", heartbeat=True, settle=self.settle)
        call_ = call(
            BillingActivities.change_price,
            ChangePriceInput(
                tenant_id=self.data.tenant_id,
                subscription_id=self.tenant.billing_subscription_id,
                price_id=price_id,
                proration_behavior=self.proration_behavior,
                idempotency_key=step_key(step),
                unless_current=undo or self.scheduled,
                customer_id=self.tenant.billing_customer_id,
                name=self.tenant.name,
                email=self.tenant.email,
            ),
            **options,
        )
        return await (settled(call_) if self.settle else call_)

    async def _restore_entitlements(self) -> str:
        previous = self.tenant.entitlements
        await self._provision(self.data.from_plan, previous, "restore-entitlements")
        return f"restored the {self.data.from_plan} entitlements"

    async def _revert_billing(self) -> str:
        if self.created is not None and self.created.subscription_id:
            cancelled = await call(
                BillingActivities.cancel_subscription,
                CancelSubscriptionInput(
                    tenant_id=self.data.tenant_id,
                    subscription_id=self.created.subscription_id,
                    idempotency_scope=idempotency_scope(),
                    step="revert-billing",
                ),
                summary="revert-billing: cancel the new subscription",
            )
            return f"subscription {cancelled.subscription_id} created by the change cancelled"
        result = await self._change_price(self.data.previous_price_id, "revert-billing", undo=True)
        if result.skipped:
            return "skipped (no billing)"
        if not result.detail.get("changed"):
            return "nothing to undo"
        return f"subscription back on {self.data.previous_price_id}"

    async def _compensate(self, err: BaseException, undo: list[tuple[str, Undo]]) -> NoReturn:
        """Undo the completed steps in reverse, return to ACTIVE on the previous plan, record
        the failure and re-raise it. A cancellation (either form: ``asyncio.CancelledError``,
        or an ``ActivityError`` caused by one) stays a cancellation: the operation is recorded
        ``cancelled``, the audit row names who cancelled, and the workflow ends Canceled."""
        op, data = self.op, self.data
        failed_step, cause = op.current_step, _cause(err)
        if self.settle:
            cancelled = is_cancelled_exception(err)
        else:
            cancelled = isinstance(err, asyncio.CancelledError)
        cancelled_by = cancelling_actor(workflow.cancellation_reason()) if cancelled else None
        if cancelled_by is not None:
            message = (
                f"{op.kind} from '{data.from_plan}' to '{data.to_plan}' cancelled by "
                f"{cancelled_by} at step {failed_step}"
            )
        else:
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
            cancelled_by=cancelled_by,
        )
        audit = result.model_dump(
            mode="json", include={"failed_step", "cause", "compensations", "cancelled_by"}
        )
        status: Status = "cancelled" if cancelled else "failed"
        await asyncio.shield(
            op.transition(
                [self.busy],
                TenantState.ACTIVE,
                end=End("compensated", status, result, message),
                reason=message,
                detail=audit,
                actor=cancelled_by,
            )
        )
        if cancelled:
            if isinstance(err, asyncio.CancelledError):
                raise err
            raise asyncio.CancelledError(message) from err
        details = result.model_dump(mode="json")
        raise ApplicationError(message, details, type=cause.type, non_retryable=True) from err
