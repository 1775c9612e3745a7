"""Bulk plan migration: move every tenant of one plan to another plan (or another price of the
same plan), each by its own upgrade or downgrade workflow as a child. Workflow id
``plan-migration-<id>``.

    1. count the tenants of ``from_plan`` matching the filter (once, for ``remaining``)
    2. page through them in id order; for each: not ACTIVE, or (downgrade) usage over the
       target's limits -> listed as failed with the cause, no child; else start the child
       ``tenant-<id>-upgrade|downgrade`` (the usual saga), at most ``concurrency`` at once
    3. a child that fails (card declined, state changed meanwhile, ...) is listed with the
       cause from its error type, never retried by the migration
    4. every ``continue_as_new_after`` children (or when Temporal suggests it): wait for
       the children in flight, then continue as new from the last tenant id started, with
       the counts, so the history stays bounded for 10,000 tenants and more

Billing writes are bounded by BILLING_RATE_LIMIT in the billing activities, for all workers
together; ``concurrency`` only bounds the children in flight. ``pause`` stops starting
children (those in flight finish), ``resume`` goes on, ``cancel`` stops starting them for
good: the workflow ends ``cancelled`` once the children in flight have ended (they are never
cut off mid-saga). A downgrade at ``period_end`` counts as done once started: it waits for
its tenant's period end on its own (``ParentClosePolicy.ABANDON``, like every child, so that
nothing in flight is terminated with the migration).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.plan_migrations import PlanMigrationActivities
    from lifecycle.domain.operations import OperationKind, search_attributes, workflow_id
    from lifecycle.domain.plan_changes import PlanChangeInput
    from lifecycle.domain.plan_migrations import (
        MigrationBatchQuery,
        MigrationControl,
        MigrationFailure,
        MigrationFailuresInput,
        MigrationStatus,
        MigrationTenant,
        PlanMigrationInput,
        PlanMigrationProgress,
    )
    from lifecycle.domain.states import TenantState
    from workflows.common import call
    from workflows.downgrade import DowngradeWorkflow
    from workflows.upgrade import UpgradeWorkflow

#: Tenants read per page.
PAGE_SIZE = 100
#: Failures buffered before they are written to the control plane.
FAILURES_PER_WRITE = 50
#: Longest error message kept per failed tenant (characters).
MESSAGE_CHARS = 500


@workflow.defn
class PlanMigrationWorkflow:
    """Migrate the tenants of ``data.from_plan`` as ``data`` says (see the module)."""

    @workflow.init
    def __init__(self, data: PlanMigrationInput) -> None:
        self.data = data
        self.in_flight = 0
        self.children: set[asyncio.Future[None]] = set()  # referenced until they end
        self.unrecorded: list[MigrationFailure] = []
        self.finished = False

    @workflow.run
    async def run(self, data: PlanMigrationInput) -> PlanMigrationProgress:
        if not data.started_at:
            data.started_at = workflow.now().isoformat()
        if data.total is None:
            data.total = await call(
                PlanMigrationActivities.count_migration_tenants,
                self._query(None),
                summary="count tenants",
            )
        queue: list[MigrationTenant] = []
        fetched_after, started = data.cursor, 0
        while True:
            if data.paused:  # list the failures so far while nothing moves
                await self._record_failures(force=True)
            await workflow.wait_condition(
                lambda: (
                    data.cancel_requested_by is not None
                    or (not data.paused and self.in_flight < data.concurrency)
                )
            )
            if data.cancel_requested_by is not None:
                break
            if not queue:
                await self._record_failures()
                page = await call(
                    PlanMigrationActivities.migration_batch,
                    self._query(fetched_after),
                    summary=f"tenants after {fetched_after or 'the first'}",
                )
                if not page.tenants:
                    break
                queue, fetched_after = page.tenants, page.tenants[-1].tenant_id
                continue  # paused or cancelled meanwhile: ask again
            tenant = queue.pop(0)
            data.cursor = tenant.tenant_id
            self.in_flight += 1
            child = asyncio.ensure_future(self._migrate(tenant))
            self.children.add(child)
            child.add_done_callback(self.children.discard)
            started += 1
            suggested = workflow.info().is_continue_as_new_suggested()
            if started >= data.continue_as_new_after or suggested:
                await self._drain()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(data)
        await self._drain()
        self.finished = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    # -- handlers ----------------------------------------------------------------------------

    @workflow.query
    def progress(self) -> PlanMigrationProgress:
        """Counts so far (``failures`` are read from the control plane by the client)."""
        data = self.data
        handled = data.done + data.failed + self.in_flight
        remaining = None if data.total is None else max(0, data.total - handled)
        if self.finished:
            remaining = 0
        return PlanMigrationProgress(
            migration_id=data.migration_id,
            workflow_id=workflow.info().workflow_id,
            status=self._status(),
            from_plan=data.from_plan,
            to_plan=data.to_plan,
            price_id=data.price_id,
            effective=data.effective,
            total=data.total,
            done=data.done,
            failed=data.failed,
            in_flight=self.in_flight,
            remaining=remaining,
            started_at=data.started_at,
            cancelled_by=data.cancel_requested_by,
        )

    @workflow.update
    def pause(self, request: MigrationControl) -> PlanMigrationProgress:
        """Start no more children until ``resume`` (those in flight finish)."""
        workflow.logger.info("plan migration paused by %s", request.actor)
        self.data.paused = True
        return self.progress()

    @workflow.update
    def resume(self, request: MigrationControl) -> PlanMigrationProgress:
        """Go on starting children after a ``pause``."""
        workflow.logger.info("plan migration resumed by %s", request.actor)
        self.data.paused = False
        return self.progress()

    @workflow.update
    def cancel(self, request: MigrationControl) -> PlanMigrationProgress:
        """Start no more children, ever; the migration ends ``cancelled`` once the children in
        flight have ended."""
        if self.data.cancel_requested_by is None:
            self.data.cancel_requested_by = request.actor
        return self.progress()

    @pause.validator
    @resume.validator
    @cancel.validator
    def _still_running(self, request: MigrationControl) -> None:
        if self.finished:
            raise ApplicationError(
                f"plan migration {self.data.migration_id} has ended ({self._status()})",
                type="StateConflict",
            )

    # -- steps -------------------------------------------------------------------------------

    def _status(self) -> MigrationStatus:
        data = self.data
        if data.cancel_requested_by is not None:
            return "cancelled" if self.finished else "cancelling"
        if self.finished:
            return "completed"
        return "paused" if data.paused else "running"

    def _query(self, after: str | None) -> MigrationBatchQuery:
        data = self.data
        return MigrationBatchQuery(
            from_plan=data.from_plan,
            filter=data.filter,
            after=after,
            limit=PAGE_SIZE,
            limits=data.limits if data.kind == "downgrade" else None,
        )

    async def _drain(self) -> None:
        await workflow.wait_condition(lambda: self.in_flight == 0)
        await self._record_failures(force=True)

    async def _record_failures(self, force: bool = False) -> None:
        if not self.unrecorded or (not force and len(self.unrecorded) < FAILURES_PER_WRITE):
            return
        failures, self.unrecorded = self.unrecorded, []
        await call(
            PlanMigrationActivities.record_migration_failures,
            MigrationFailuresInput(migration_id=self.data.migration_id, failures=failures),
            summary=f"record {len(failures)} failed tenants",
        )

    def _failed(self, tenant_id: str, cause: str, message: str) -> None:
        self.data.failed += 1
        self.unrecorded.append(
            MigrationFailure(tenant_id=tenant_id, cause=cause, message=message[:MESSAGE_CHARS])
        )

    async def _migrate(self, tenant: MigrationTenant) -> None:
        try:
            await self._migrate_one(tenant)
        finally:
            self.in_flight -= 1

    async def _migrate_one(self, tenant: MigrationTenant) -> None:
        data, tid = self.data, tenant.tenant_id
        if tenant.state != TenantState.ACTIVE:
            message = f"tenant '{tid}' is {tenant.state}; a plan change needs ACTIVE"
            return self._failed(tid, "StateConflict", message)
        if tenant.over_limit:
            message = f"usage exceeds the '{data.to_plan}' limits: {tenant.over_limit}"
            return self._failed(tid, "UsageExceedsLimits", message)
        kind = OperationKind.UPGRADE if data.kind == "upgrade" else OperationKind.DOWNGRADE
        change = PlanChangeInput(
            tenant_id=tid,
            from_plan=data.from_plan,
            to_plan=data.to_plan,
            limits=data.limits,
            price_id=data.price_id,
            previous_price_id=data.previous_price_id,
            effective=data.effective if kind is OperationKind.DOWNGRADE else "immediately",
            proration_behavior=data.proration_behavior,
            actor=data.actor,
        )
        run = UpgradeWorkflow.run if kind is OperationKind.UPGRADE else DowngradeWorkflow.run
        try:
            handle = await workflow.start_child_workflow(
                run,
                change,
                id=workflow_id(tid, kind),
                search_attributes=search_attributes(tid, kind),
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{kind.value} {tid} ({data.migration_id})",
            )
        except WorkflowAlreadyStartedError:
            message = f"a {kind.value} of tenant '{tid}' is already running"
            return self._failed(tid, "StateConflict", message)
        if data.effective == "period_end" and kind is OperationKind.DOWNGRADE:
            data.done += 1  # scheduled: it applies at the tenant's period end
            return None
        try:
            await handle
        except ChildWorkflowError as err:
            cause = err.cause
            kind_ = cause.type if isinstance(cause, ApplicationError) and cause.type else None
            return self._failed(tid, kind_ or type(cause or err).__name__, str(cause or err))
        data.done += 1
        return None
