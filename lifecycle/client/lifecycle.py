"""``LifecycleClient``: the one Python entry point that starts lifecycle workflows, sends
signals and reads state. The API, the CLI and users' own code all go through it.

It is composed of one service per feature, found by the feature's name::

    async with await LifecycleClient.connect(Settings()) as lc:
        started = await lc.onboarding.onboard_tenant(OnboardRequest(tenant_id="acme", ...))
        await lc.plan_changes.upgrade_tenant("acme", "enterprise")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from lifecycle.client.base import PROGRESS_QUERY_TIMEOUT, Core, connect_temporal
from lifecycle.client.billing_events import BillingEventService
from lifecycle.client.deletion import DeletionService
from lifecycle.client.events import EventService
from lifecycle.client.exports import ExportService
from lifecycle.client.onboarding import OnboardingService
from lifecycle.client.plan_changes import PlanChangeService
from lifecycle.client.plan_migrations import PlanMigrationService
from lifecycle.client.reactivation import ReactivationService
from lifecycle.client.reconciliation import ReconciliationService
from lifecycle.client.suspension import SuspensionService
from lifecycle.config import Settings
from lifecycle.domain.tenants import EventView, OperationProgress, OperationView, TenantView
from lifecycle.persistence.engine import Sessions, control_plane_engine, migrate
from lifecycle.persistence.tenants import TenantRepository


def progress_query(workflow_type: str) -> Callable[[Any], OperationProgress] | None:
    """The ``progress`` query of lifecycle workflow type ``workflow_type``; None for a type
    without one (the export's retention timer) or not of this product."""
    from workflows.deletion import DeletionWorkflow
    from workflows.downgrade import DowngradeWorkflow
    from workflows.export import ExportWorkflow
    from workflows.onboarding import OnboardingWorkflow
    from workflows.reactivation import ReactivationWorkflow
    from workflows.suspension import PauseWorkflow, PaymentFailureWorkflow, SuspensionWorkflow
    from workflows.upgrade import UpgradeWorkflow

    queries: dict[str, Callable[[Any], OperationProgress]] = {
        "OnboardingWorkflow": OnboardingWorkflow.progress,
        "UpgradeWorkflow": UpgradeWorkflow.progress,
        "DowngradeWorkflow": DowngradeWorkflow.progress,
        "DeletionWorkflow": DeletionWorkflow.progress,
        "ReactivationWorkflow": ReactivationWorkflow.progress,
        "SuspensionWorkflow": SuspensionWorkflow.progress,
        "PauseWorkflow": PauseWorkflow.progress,
        "PaymentFailureWorkflow": PaymentFailureWorkflow.progress,
        "ExportWorkflow": ExportWorkflow.progress,
    }
    return queries.get(workflow_type)


class LifecycleClient:
    """Starts lifecycle operations as Temporal workflows and reads tenants and operations.

    One attribute per feature: ``onboarding``, ``plan_changes``, ``exports``, ``deletion``,
    ``suspension``, ``reactivation``, ``billing_events``, ``outbound_events`` (``lc.events``
    is the audit log; the outbound lifecycle events have their own service).
    """

    def __init__(self, settings: Settings, temporal: Client, repository: TenantRepository):
        self.core = Core(settings, temporal, repository)
        self.onboarding = OnboardingService(self.core)
        self.plan_changes = PlanChangeService(self.core)
        self.exports = ExportService(self.core)
        self.deletion = DeletionService(self.core)
        self.suspension = SuspensionService(self.core)
        self.reactivation = ReactivationService(self.core)
        self.billing_events = BillingEventService(self.core)
        self.reconciliation = ReconciliationService(self.core)
        self.plan_migrations = PlanMigrationService(self.core)
        self.outbound_events = EventService(self.core)

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def temporal(self) -> Client:
        return self.core.temporal

    @property
    def repository(self) -> TenantRepository:
        return self.core.repository

    @classmethod
    async def connect(cls, settings: Settings, *, run_migrations: bool = True) -> LifecycleClient:
        """Open the control-plane database (migrating it) and connect to Temporal; each
        Temporal call gives up after TEMPORAL_RPC_TIMEOUT_SECONDS (RPCError)."""
        engine = control_plane_engine(settings)
        if run_migrations:
            await migrate(engine)
        temporal = await connect_temporal(settings, bounded=True)
        return cls(settings, temporal, TenantRepository(Sessions(engine)))

    async def close(self) -> None:
        await self.repository.sessions.engine.dispose()

    async def __aenter__(self) -> LifecycleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def get_tenant(self, tenant_id: str) -> TenantView:
        """The tenant row; raises TenantNotFound."""
        return await self.repository.get(tenant_id)

    async def list_tenants(
        self,
        *,
        state: str | None = None,
        plan: str | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[TenantView], int]:
        """One page of tenants ordered by id and the total matching the filters; ``search``
        matches a part of the id or the name, case-insensitively."""
        return await self.repository.list(
            state=state, plan=plan, search=search, limit=limit, offset=offset
        )

    async def tenant_counts(self) -> dict[str, int]:
        """Number of tenants per state."""
        return await self.repository.count_by_state()

    async def events(self, tenant_id: str, *, limit: int = 100, offset: int = 0) -> list[EventView]:
        """One page of the tenant's audit log, oldest first; raises TenantNotFound."""
        await self.repository.get(tenant_id)
        return await self.repository.events(tenant_id, limit=limit, offset=offset)

    async def tenant_operations(
        self, tenant_id: str, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[OperationView], int]:
        """One page of every operation run recorded for the tenant, latest first, and the
        total; raises TenantNotFound for an unknown tenant."""
        await self.repository.get(tenant_id)
        return await self.repository.tenant_operations(tenant_id, limit=limit, offset=offset)

    async def operations_by_day(self, days: int = 14) -> dict[date, dict[str, int]]:
        """Operation runs of the last ``days`` UTC days (today included) per start day and
        status; days without a run are absent."""
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return await self.repository.operations_by_day(today - timedelta(days=days - 1))

    async def failed_operations(self, limit: int = 20) -> list[OperationView]:
        """The latest failed operation runs, newest first, each with its error (the cause)."""
        return await self.repository.failed_operations(limit)

    async def purges_due(self, days: int = 7) -> list[TenantView]:
        """Soft-deleted tenants whose purge is scheduled within ``days`` days from now,
        earliest first (overdue ones included: a legal hold keeps them)."""
        return await self.repository.purges_due(datetime.now(UTC) + timedelta(days=days))

    async def operation(self, wid: str) -> OperationView | None:
        """The latest run of an operation: its status from Temporal (running, completed,
        failed...) merged with the step and result the control plane recorded for that run, and
        in ``runs`` every run recorded under ``wid``, latest first; None when Temporal does not
        know ``wid``."""
        handle = self.core.handle(wid)
        try:
            desc = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        recorded = await self.repository.operation(wid, desc.run_id)
        status = desc.status.name.lower() if desc.status else "unknown"
        status = "cancelled" if status == "canceled" else status  # the operations' spelling
        view = recorded or OperationView(workflow_id=wid, status=status)
        view.run_id, view.status = desc.run_id, status
        view.runs = await self.repository.operation_runs(wid)
        view.started_at = view.started_at or desc.start_time
        view.finished_at = desc.close_time
        query = progress_query(desc.workflow_type)
        if desc.status == WorkflowExecutionStatus.RUNNING and query is not None:
            try:
                progress = await handle.query(query, rpc_timeout=PROGRESS_QUERY_TIMEOUT)
                view.step = progress.step
                view.result = {**(view.result or {}), "progress": progress.model_dump(mode="json")}
            except RPCError:
                pass  # no worker polling right now: the recorded step stands
        elif desc.status == WorkflowExecutionStatus.COMPLETED and view.result is None:
            view.result = await handle.result()
        elif desc.status == WorkflowExecutionStatus.FAILED and view.error is None:
            try:
                await handle.result()
            except Exception as exc:  # the failure itself is the answer here
                cause = getattr(exc, "cause", None)
                view.error = str(cause or exc)
        return view
