"""Soft delete, retention, then verified purge with a deletion certificate (GDPR Art. 17).

``tenant-<id>-deletion``:

1. ACTIVE/SUSPENDED -> DELETING: access revoked (entitlements zeroed); billing stopped
   (subscription cancelled without proration or final invoice); -> DELETED. Data untouched.
2. Retention: a durable timer until ``purge_at`` = the workflow's start + retention days,
   re-checked against ``workflow.now()`` so the purge never runs a moment early. A
   ``reactivate`` signal (API: the ``request_reactivation`` update, which rejects with the
   precise reason) ends it with the tenant ACTIVE again; a legal hold keeps it waiting past
   ``purge_at`` until released. The ``purge_now`` update (a written request for immediate
   erasure, validated at once) waives the rest of the retention; the purge then starts at
   once unless a legal hold stands, and the waiver is audited (``retention-waived``) and
   recorded in the certificate. No other path purges before ``purge_at``.
3. Purge: compare-and-set on the tenant row, counts before (kept in history), every store of
   the data map in batches (children first), storage objects, exports, the billing customer;
   re-count (any remainder fails loudly); certificate sealed and tenant row tombstoned.

The workflow is the single place deciding between reactivation and purge: handlers only
record requests, the main loop decides once, and the database compare-and-sets back it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityConfig

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities, CancelSubscriptionInput, DeleteCustomerInput
    from activities.deletion import DeletionActivities
    from activities.purge import PurgeActivities
    from lifecycle.domain.deletion import (
        BeginPurgeInput,
        CompletePurgeInput,
        DeletionInput,
        DeletionProgress,
        DeletionPurged,
        DeletionReactivated,
        DeletionResult,
        LegalHoldChange,
        LegalHoldSignal,
        PurgeStoreInput,
        PurgeTarget,
        RetentionWaiver,
        RetentionWaiverRequest,
        purged_detail,
    )
    from lifecycle.domain.operations import OperationKind
    from lifecycle.domain.reactivation import (
        REACTIVATION_DISABLED,
        ReactivateRequest,
        ReactivationAccepted,
    )
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import TenantEvent, TenantView
    from workflows.common import Operation, audit_event, call, read_tenant
    from workflows.reactivation import restore_service

S = TenantState
#: One table or prefix may hold millions of rows: long, but heartbeating every batch (a
#: batch holds its locks well under a second), so a crashed worker is noticed within 20 s.
PURGE_STORE_OPTIONS = ActivityConfig(
    start_to_close_timeout=timedelta(hours=12), heartbeat_timeout=timedelta(seconds=20)
)
#: ``workflow.patched`` id of purging the stores of one level at once (2026-12-03,
#: :func:`purge_level`); executions started before it purge one store after the other.
PARALLEL_PURGE = "parallel-purge"
#: Verification retries a few times (e.g. an S3 listing lagging), then the purge fails for
#: an operator to see instead of ever reporting a silent success.
VERIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=5,
)
#: Columns of the deletion cleared when the tenant is reactivated.
DELETION_COLUMNS = {
    "deletion_requested_at": None,
    "deletion_requested_by": None,
    "plan_at_deletion": None,
    "purge_scheduled_at": None,
}


async def purge_level(level: list[str], target: PurgeTarget) -> None:
    """Purge the stores of one level (``PurgeActivities.list_purge_levels``) at once, one
    ``purge_store`` activity each. A failure does not cancel the siblings: every activity
    runs to its end, then the first failure is raised (``ActivityError``)."""
    results = await asyncio.gather(
        *(
            call(
                PurgeActivities.purge_store,
                PurgeStoreInput(tenant_id=target.tenant_id, data_key=target.data_key, store=store),
                **(PURGE_STORE_OPTIONS | {"summary": f"purge {store}"}),
            )
            for store in level
        ),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


@workflow.defn
class DeletionWorkflow:
    """Soft-delete a tenant, keep it for the retention period, then purge it (or reactivate)."""

    @workflow.init
    def __init__(self, data: DeletionInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.DELETION, data.actor)
        self.tenant_id, self.reactivation_enabled = data.tenant_id, data.reactivation_enabled
        #: starting -> retained -> reactivating -> reactivated | purging -> purged
        self.phase = "starting"
        self.requested_at = workflow.info().workflow_start_time
        self.purge_at = self.requested_at + timedelta(days=data.retention_days)
        self.purge_started_at: datetime | None = None
        self.purged_at: str | None = None  # as in the certificate
        self.legal_hold: bool | None = None
        self.reactivation: ReactivateRequest | None = None
        self.hold_changes: list[LegalHoldSignal] = []
        self.ignored: list[TenantEvent] = []
        self.before: dict[str, dict[str, int]] | None = None
        self.wakeups = 0
        self.waiver: RetentionWaiver | None = None
        self.waiver_audited = False

    # -- handlers: record requests, never decide ------------------------------------------

    def reactivation_problem(self) -> str | None:
        """Why a reactivation cannot be accepted now, or None."""
        tid = self.tenant_id
        if not self.reactivation_enabled:
            return REACTIVATION_DISABLED
        if self.phase == "purged":
            return purged_detail(tid, self.purged_at)
        if self.phase == "purging":
            return (
                f"tenant '{tid}' cannot be reactivated: its purge started at "
                f"{self.purge_started_at.isoformat() if self.purge_started_at else '?'}"
            )
        if self.waiver is not None:
            return (
                f"tenant '{tid}' cannot be reactivated: its retention was waived at "
                f"{self.waiver.at} by {self.waiver.by} for an immediate purge"
            )
        if self.reactivation is not None or self.phase in ("reactivating", "reactivated"):
            return f"tenant '{tid}' is already being reactivated"
        if workflow.now() >= self.purge_at:
            return (
                f"the retention period of tenant '{tid}' ended at {self.purge_at.isoformat()}; "
                "it can no longer be reactivated"
            )
        return None

    @workflow.signal
    def reactivate(self, request: ReactivateRequest | None = None) -> None:
        """Reactivate within retention (``temporal workflow signal --name reactivate``); a
        signal that comes too late is ignored and recorded in the audit log."""
        request = request or ReactivateRequest()
        problem = self.reactivation_problem()
        if problem is None:
            self.reactivation = request
        else:
            self.ignored.append(
                TenantEvent(
                    tenant_id=self.tenant_id,
                    operation="reactivate-ignored",
                    workflow_id=workflow.info().workflow_id,
                    actor=request.requested_by or "signal",
                    detail={"reason": problem, "plan": request.plan},
                )
            )
        self.wakeups += 1

    @workflow.update
    async def request_reactivation(self, request: ReactivateRequest) -> ReactivationAccepted:
        """The API's reactivation: accepted only when the validator finds no problem."""
        self.reactivation = request
        self.wakeups += 1
        return ReactivationAccepted(accepted=True, plan=request.plan)

    @request_reactivation.validator
    def _validate_reactivation(self, request: ReactivateRequest) -> None:
        if problem := self.reactivation_problem():
            raise ApplicationError(problem, type="StateConflict", non_retryable=True)

    def purge_now_problem(self) -> str | None:
        """Why the retention cannot be waived now, or None (each a 409 at the API)."""
        tid = self.tenant_id
        if self.phase == "purged":
            return purged_detail(tid, self.purged_at)
        if self.phase == "purging":
            started = self.purge_started_at.isoformat() if self.purge_started_at else "?"
            return f"the purge of tenant '{tid}' already started at {started}"
        # "starting" is accepted: the tenant row turns DELETED in an activity a moment before
        # this workflow reaches its retention loop, which then acts on the waiver at once (the
        # service checks the row is DELETED; the topology test's purge right after the
        # deletion met that window under load and got a 409)
        if self.reactivation is not None or self.phase in ("reactivating", "reactivated"):
            return f"tenant '{tid}' is being reactivated; it cannot be purged"
        if self.waiver is not None:
            return (
                f"the retention of tenant '{tid}' was already waived at {self.waiver.at} "
                f"by {self.waiver.by}"
            )
        if self.legal_hold:
            return f"tenant '{tid}' is under legal hold; it cannot be purged while it stands"
        if workflow.now() >= self.purge_at:
            return (
                f"the retention period of tenant '{tid}' ended at {self.purge_at.isoformat()}; "
                "its purge needs no waiver"
            )
        return None

    @workflow.update
    async def purge_now(self, request: RetentionWaiverRequest) -> RetentionWaiver:
        """Waive the rest of the retention (GDPR Art. 17(1): erasure without undue delay
        on the customer's written request); the main loop then purges."""
        self.waiver = RetentionWaiver(
            by=request.requested_by, at=workflow.now().isoformat(), reason=request.reason
        )
        self.wakeups += 1
        return self.waiver

    @purge_now.validator
    def _validate_purge_now(self, request: RetentionWaiverRequest) -> None:
        if problem := self.purge_now_problem():
            raise ApplicationError(problem, type="StateConflict", non_retryable=True)

    @workflow.signal
    def set_legal_hold(self, change: LegalHoldSignal) -> None:
        """Set or release a legal hold; while it stands the purge does not run."""
        if self.phase in ("purging", "purged"):
            self.ignored.append(
                TenantEvent(
                    tenant_id=self.tenant_id,
                    operation="legal-hold-ignored",
                    workflow_id=workflow.info().workflow_id,
                    actor=change.requested_by or "signal",
                    detail={"hold": change.hold, "reason": f"the purge is {self.phase}"},
                )
            )
        else:
            self.legal_hold = change.hold
            self.hold_changes.append(change)
        self.wakeups += 1

    @workflow.query
    def progress(self) -> DeletionProgress:
        """Step, phase, scheduled purge time, legal hold and the counts taken before purge."""
        return DeletionProgress(
            operation=self.op.kind,
            step=self.op.current_step,
            phase=self.phase,
            purge_at=self.purge_at.isoformat(),
            legal_hold=bool(self.legal_hold),
            before=self.before,
            retention_waived=self.waiver,
        )

    # -- the process ------------------------------------------------------------------------

    @workflow.run
    async def run(self, data: DeletionInput) -> DeletionResult:
        op, requested_at = self.op, self.requested_at
        try:
            tenant = await self._soft_delete(op, data, requested_at)
            while True:
                if await self._retain(op) == "reactivate":
                    reactivated = await self._reactivate(op, tenant)
                    if reactivated is not None:
                        return await self._finish(
                            op, DeletionReactivated(state=reactivated.state, plan=reactivated.plan)
                        )
                elif (purged_at := await self._purge(op, data, tenant, requested_at)) is not None:
                    return await self._finish(op, DeletionPurged(purged_at=purged_at))
        except ActivityError as err:
            raise await op.fail(err, f"deletion ({op.current_step})", self._failed) from err

    async def _failed(self, failed: ApplicationError) -> None:
        """Audit a failed deletion (or purge) with the step it failed at."""
        await self._flush_ignored()
        kind = "purge-failed" if self.phase == "purging" else "deletion-failed"
        await self._event(kind, {"step": self.op.current_step, "error": str(failed)})

    async def _soft_delete(
        self, op: Operation, data: DeletionInput, requested_at: datetime
    ) -> TenantView:
        await op.record("revoke-access")
        tenant = await read_tenant(data.tenant_id)
        if self.legal_hold is None:  # no hold signal yet: the row says
            self.legal_hold = tenant.legal_hold
        await op.transition(
            [S.ACTIVE, S.SUSPENDED],
            S.DELETING,
            reason=data.reason,
            entitlements={resource: 0 for resource in tenant.entitlements},
            changes={
                "deletion_requested_at": requested_at,
                "deletion_requested_by": data.requested_by,
                "plan_at_deletion": tenant.plan,
                "purge_scheduled_at": self.purge_at,
            },
            detail={
                "requested_by": data.requested_by,
                "retention_days": data.retention_days,
                "purge_scheduled_at": self.purge_at.isoformat(),
            },
        )
        billing = await op.step(
            "stop-billing",
            BillingActivities.cancel_subscription,
            CancelSubscriptionInput(
                tenant_id=data.tenant_id,
                subscription_id=tenant.billing_subscription_id,
                idempotency_scope=op.idempotency_scope,
            ),
            summary="cancel subscription",
        )
        return await op.transition(
            [S.DELETING], S.DELETED, detail={"billing": billing.model_dump(mode="json")}
        )

    async def _retain(self, op: Operation) -> str:
        """Wait until reactivation is asked for ("reactivate") or ``purge_at`` has passed
        with no legal hold ("purge"); holds are written to the tenant row as they come."""
        self.phase = "retained"
        await op.record("retention")
        while True:
            await self._apply_holds()
            await self._flush_ignored()
            if self.reactivation is not None:
                return "reactivate"
            now = workflow.now()
            if (now >= self.purge_at or self.waiver is not None) and not self.legal_hold:
                return "purge"

            def woken(seen: int = self.wakeups) -> bool:
                return self.wakeups != seen or bool(self.hold_changes)

            try:
                await workflow.wait_condition(
                    woken,
                    timeout=self.purge_at - now if now < self.purge_at else None,
                    timeout_summary="retention period" if now < self.purge_at else None,
                )
            except TimeoutError:
                pass  # the loop re-checks workflow.now() against purge_at

    async def _apply_holds(self) -> None:
        while self.hold_changes:
            change = self.hold_changes.pop(0)
            await call(
                DeletionActivities.set_legal_hold,
                LegalHoldChange(
                    tenant_id=self.tenant_id,
                    hold=change.hold,
                    actor=change.requested_by or "signal",
                    workflow_id=workflow.info().workflow_id,
                    reason=change.reason,
                ),
                summary="legal hold" if change.hold else "release legal hold",
            )

    async def _reactivate(self, op: Operation, tenant: TenantView) -> TenantView | None:
        """Reactivate on the requested plan (default: the plan at deletion). An unknown plan
        (possible from a hand-written CLI signal) is rejected in the audit log and retention
        goes on; returns None then."""
        request = self.reactivation
        assert request is not None
        self.phase = "reactivating"
        try:
            plan = await call(DeletionActivities.resolve_plan, request.plan or tenant.plan)
        except ActivityError as err:
            await self._event("reactivate-rejected", {"reason": str(err.cause or err)})
            self.reactivation, self.phase = None, "retained"
            return None
        op.actor = request.requested_by or op.actor
        tenant = await restore_service(op, tenant, plan, DELETION_COLUMNS)
        self.phase = "reactivated"
        return tenant

    async def _purge(
        self, op: Operation, data: DeletionInput, tenant: TenantView, requested_at: datetime
    ) -> str | None:
        """Purge every store; returns when (as the certificate says), or None when a legal
        hold found on the row stops it first."""
        self.phase, self.purge_started_at = "purging", workflow.now()
        if self.waiver is not None and not self.waiver_audited:
            # read back by the certificate step: the certificate states what was audited
            await self._event(
                "retention-waived",
                {**self.waiver.model_dump(), "purge_scheduled_at": self.purge_at.isoformat()},
                actor=self.waiver.by,
            )
            self.waiver_audited = True
        await op.record("purge")
        try:
            await call(
                DeletionActivities.begin_purge,
                BeginPurgeInput(tenant_id=data.tenant_id, workflow_id=op.workflow_id),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "LegalHoldActive":
                self.legal_hold, self.phase = True, "retained"
                return None
            raise
        target = PurgeTarget(tenant_id=data.tenant_id, data_key=tenant.data_key)
        self.before = await op.step(
            "count-before", PurgeActivities.count_tenant_data, target, summary="count before purge"
        )
        # asked right after a regular activity's result, never after a local one (common.py)
        if workflow.patched(PARALLEL_PURGE):
            levels = await call(PurgeActivities.list_purge_levels, target)
        else:
            levels = [[s] for s in await call(PurgeActivities.list_purge_stores, target)]
        for level in levels:
            await op.record(f"purge {', '.join(level)}"[:64])
            await purge_level(level, target)
        await op.step(
            "purge exports", PurgeActivities.purge_exports, target, summary="purge exports"
        )
        billing = await op.step(
            "delete billing customer",
            BillingActivities.delete_customer,
            DeleteCustomerInput(
                tenant_id=data.tenant_id,
                customer_id=tenant.billing_customer_id,
                idempotency_scope=op.idempotency_scope,
            ),
            summary="delete billing customer",
        )
        after = await op.step(
            "verify",
            PurgeActivities.verify_purge,
            target,
            summary="verify",
            retry_policy=VERIFY_RETRY,
        )
        certificate = await op.step(
            "certificate",
            DeletionActivities.complete_purge,
            CompletePurgeInput(
                tenant_id=data.tenant_id,
                workflow_id=op.workflow_id,
                requested_by=data.requested_by,
                requested_at=requested_at,
                purged_at=workflow.now(),
                retention_days=data.retention_days,
                before=self.before,
                after=after,
                billing=billing.model_dump(mode="json"),
            ),
            summary="certificate and tombstone",
        )
        purged_at = str(certificate.document["purged_at"])
        self.phase, self.purged_at = "purged", purged_at
        return purged_at

    async def _finish(
        self, op: Operation, result: DeletionPurged | DeletionReactivated
    ) -> DeletionPurged | DeletionReactivated:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._apply_holds()
        await self._flush_ignored()
        return await op.complete(result)

    async def _flush_ignored(self) -> None:
        while self.ignored:
            await call(DeletionActivities.record_tenant_event, self.ignored.pop(0))

    async def _event(self, operation: str, detail: dict[str, Any], actor: str = "system") -> None:
        await asyncio.shield(audit_event(self.tenant_id, operation, detail, actor))
