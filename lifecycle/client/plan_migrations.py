"""Bulk plan migrations: start one (resolved from the plan catalogue and checked before
anything starts), read its progress and the tenants it did not move, pause, resume, cancel."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from lifecycle.client.base import PROGRESS_QUERY_TIMEOUT, Service, not_found, update_or_conflict
from lifecycle.domain.errors import InvalidInput
from lifecycle.domain.plan_migrations import (
    MigrationControl,
    MigrationNotFound,
    PlanMigrationInput,
    PlanMigrationProgress,
    PlanMigrationRequest,
    PlanMigrationStarted,
    migration_kind,
    migration_workflow_id,
)
from lifecycle.persistence.plan_migrations import PlanMigrationRepository

#: The pause, resume and cancel updates, by name (the workflow's handlers).
CONTROLS = ("pause", "resume", "cancel")


class PlanMigrationService(Service):
    """Starts and steers bulk plan migrations (``PlanMigrationWorkflow``)."""

    async def start(
        self, request: PlanMigrationRequest, actor: str = "api"
    ) -> PlanMigrationStarted:
        """Start moving the tenants of ``request.from_plan`` (matching its filter).

        Raises InvalidInput (unknown plan; the same plan without ``to_price_id``; a pair the
        plans file's change rules mark ``not_allowed``; ``period_end`` for a migration that is
        not a downgrade) before anything starts.
        """
        from workflows.plan_migration import PlanMigrationWorkflow

        catalog, settings = self.core.settings.plans, self.core.settings
        source = catalog.get(request.from_plan)
        target = catalog.get(request.to_plan or request.from_plan)
        kind = migration_kind(
            catalog.rank(source.name), catalog.rank(target.name), request.to_price_id
        )
        if source.name != target.name and catalog.rule(source.name, target.name) == "not_allowed":
            raise InvalidInput(
                f"to_plan: no tenant may move from '{source.name}' to '{target.name}': the plans "
                f"file's rule [changes.{source.name}] {target.name} is not_allowed"
            )
        if request.effective == "period_end" and kind != "downgrade":
            raise InvalidInput(
                "effective 'period_end' applies to a migration to a lower plan only; "
                f"'{source.name}' -> '{target.name}' moves now (effective 'immediately')"
            )
        migration_id = uuid.uuid4().hex[:16]
        data = PlanMigrationInput(
            migration_id=migration_id,
            kind=kind,
            from_plan=source.name,
            to_plan=target.name,
            limits=target.limits.as_dict(),
            price_id=request.to_price_id or target.price_id,
            previous_price_id=source.price_id,
            effective=request.effective,
            proration_behavior=settings.proration_behavior,
            filter=request.filter,
            concurrency=request.concurrency,
            actor=actor,
        )
        wid = migration_workflow_id(migration_id)
        handle = await self.core.temporal.start_workflow(
            PlanMigrationWorkflow.run,
            data,
            id=wid,
            task_queue=settings.temporal_task_queue,
            static_summary=f"plan migration {source.name} -> {target.name}",
        )
        return PlanMigrationStarted(
            migration_id=migration_id,
            workflow_id=wid,
            run_id=handle.result_run_id,
            kind=kind,
            from_plan=data.from_plan,
            to_plan=data.to_plan,
            price_id=data.price_id,
            effective=data.effective,
        )

    async def progress(self, migration_id: str) -> PlanMigrationProgress:
        """Counts (done, failed, in flight, remaining), status, and the tenants not moved
        with their causes (the first 1000 by id). Raises MigrationNotFound."""
        from workflows.plan_migration import PlanMigrationWorkflow

        wid = migration_workflow_id(migration_id)
        handle = self.core.temporal.get_workflow_handle_for(PlanMigrationWorkflow.run, wid)
        try:
            described = await handle.describe()
            if described.status == WorkflowExecutionStatus.COMPLETED:
                progress = await handle.result()
            else:
                progress = await handle.query(
                    PlanMigrationWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT * 5
                )
        except RPCError as exc:
            if not_found(exc):
                raise MigrationNotFound(migration_id) from exc
            raise
        failures = await PlanMigrationRepository(self.core.repository).failures(migration_id)
        return progress.model_copy(update={"failures": failures})

    async def control(
        self, migration_id: str, action: str, actor: str = "api"
    ) -> PlanMigrationProgress:
        """Send ``action`` (``pause``, ``resume`` or ``cancel``) to the migration; returns its
        progress as the workflow answered. Raises MigrationNotFound, StateConflict (it has
        ended) and InvalidInput (an unknown action)."""
        if action not in CONTROLS:
            raise InvalidInput(f"unknown action '{action}'; one of {', '.join(CONTROLS)}")
        handle = self.core.handle(migration_workflow_id(migration_id))

        async def ended() -> str:
            return (
                f"plan migration '{migration_id}' has ended ({await self._described(migration_id)})"
            )

        control = MigrationControl(actor=actor)
        answer: PlanMigrationProgress = await update_or_conflict(
            handle, action, control, ended, result_type=PlanMigrationProgress
        )
        return answer

    async def _described(self, migration_id: str) -> str:
        """The closed migration's status name; raises MigrationNotFound when there is none."""
        try:
            described = await self.core.handle(migration_workflow_id(migration_id)).describe()
        except RPCError as exc:
            if not_found(exc):
                raise MigrationNotFound(migration_id) from exc
            raise
        return described.status.name.lower() if described.status else "closed"
