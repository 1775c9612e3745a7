"""``LifecycleClient``: the one Python entry point that starts lifecycle workflows, sends
signals and reads state. The API, the CLI and users' own code all go through it.

    async with await LifecycleClient.connect(Settings()) as lc:
        started = await lc.onboard_tenant(OnboardRequest(tenant_id="acme", ...))
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from lifecycle.client.deletion import DeletionOperations
from lifecycle.config import Settings
from lifecycle.domain.errors import StateConflict
from lifecycle.domain.exports import ExportInput, ExportType, ExportUpdate, ExportView
from lifecycle.domain.operations import OperationKind, search_attributes, workflow_id
from lifecycle.domain.plan_changes import (
    CancelDowngrade,
    DowngradePreview,
    Effective,
    UsageExceedsLimits,
    UsageView,
    check_usage_update,
    plan_change_input,
    require_active,
)
from lifecycle.domain.plans import Plan, usage_violations
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OnboardInput, OnboardRequest, OperationView, TenantView
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.exports import ExportRepository
from lifecycle.persistence.tables import Export, utcnow
from lifecycle.persistence.tenants import TenantRepository
from lifecycle.storage.exports import ExportStorage

#: How long a status read waits for a running workflow to answer its ``progress`` query.
#: Queries are answered by a worker; with none polling, Temporal would hold the request for
#: its own default (30 s on the dev server) before the recorded progress is returned.
PROGRESS_QUERY_TIMEOUT = timedelta(seconds=2)


@dataclass(frozen=True)
class OperationStarted:
    """A workflow the client started (or found already started for the same request)."""

    workflow_id: str
    run_id: str | None
    tenant_id: str
    operation: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "tenant_id": self.tenant_id,
            "operation": self.operation,
            "status": "queued",
        }


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """Connect to Temporal with the pydantic data converter (shared by worker and client);
    ``runtime`` carries the SDK's telemetry (the worker's Prometheus endpoint)."""
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )


class LifecycleClient(DeletionOperations):
    """Starts lifecycle operations as Temporal workflows and reads tenants and operations.

    Soft deletion, legal hold, reactivation, suspension and billing events:
    :class:`~lifecycle.client.deletion.DeletionOperations`."""

    def __init__(self, settings: Settings, temporal: Client, repository: TenantRepository):
        self.settings, self.temporal, self.repository = settings, temporal, repository

    @classmethod
    async def connect(cls, settings: Settings, *, run_migrations: bool = True) -> LifecycleClient:
        """Open the control-plane database (migrating it) and connect to Temporal."""
        engine = create_engine(settings.db_url)
        if run_migrations:
            await migrate(engine)
        temporal = await connect_temporal(settings)
        return cls(settings, temporal, TenantRepository(Sessions(engine)))

    async def close(self) -> None:
        await self.repository.sessions.engine.dispose()

    async def __aenter__(self) -> LifecycleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- starting workflows ---------------------------------------------------------------

    async def start(
        self,
        workflow: Any,
        arg: Any,
        *,
        tenant_id: str,
        kind: OperationKind,
        suffix: str | None = None,
        reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_delay: timedelta | None = None,
    ) -> OperationStarted:
        """Start ``workflow`` under its deterministic id; one running run per id.

        Raises :class:`StateConflict` when an operation with this id is already running
        (or, with a reject-duplicate ``reuse`` policy, ever ran).
        """
        wid = workflow_id(tenant_id, kind, suffix)
        try:
            handle = await self.temporal.start_workflow(
                workflow,
                arg,
                id=wid,
                task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=reuse,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=search_attributes(tenant_id, kind),
                static_summary=f"{kind.value} {tenant_id}",
                start_delay=start_delay,
            )
        except WorkflowAlreadyStartedError as exc:
            raise StateConflict(
                f"a {kind.value} operation for tenant '{tenant_id}' is already running or "
                f"done (workflow {wid})"
            ) from exc
        return OperationStarted(wid, handle.result_run_id, tenant_id, kind.value)

    async def onboard_tenant(self, request: OnboardRequest, actor: str = "api") -> OperationStarted:
        """Start onboarding ``request.tenant_id`` on ``request.plan``.

        Raises InvalidInput (unknown plan) and StateConflict (tenant exists or is being
        onboarded) before anything starts.
        """
        plan = self.settings.plans.get(request.plan)
        if await self.repository.exists(request.tenant_id):
            raise StateConflict(f"tenant '{request.tenant_id}' already exists")
        return await self.start_onboarding(request, plan, actor)

    async def start_onboarding(
        self, request: OnboardRequest, plan: Plan, actor: str = "api"
    ) -> OperationStarted:
        """Start the onboarding workflow of ``request`` on ``plan`` without reading the
        control plane first (:meth:`onboard_tenant` checks that the tenant is new).

        Raises StateConflict when an onboarding with this id is running or completed.
        """
        from workflows.onboarding import OnboardingWorkflow

        data = OnboardInput(
            request=request, limits=plan.limits.as_dict(), price_id=plan.price_id, actor=actor
        )
        return await self.start(
            OnboardingWorkflow.run,
            data,
            tenant_id=request.tenant_id,
            kind=OperationKind.ONBOARD,
            reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )

    # -- plan changes and usage -------------------------------------------------------------

    async def upgrade_tenant(
        self, tenant_id: str, to_plan: str, actor: str = "api"
    ) -> OperationStarted:
        """Start upgrading to ``to_plan`` now, billed with PRORATION_BEHAVIOR.

        Raises TenantNotFound, InvalidInput (target not above the current plan, naming both)
        and StateConflict (tenant not ACTIVE, naming its state; upgrade already running)
        before anything starts. A downgrade waiting for the period end is cancelled by it.
        """
        from workflows.upgrade import UpgradeWorkflow

        tenant = await self.repository.get(tenant_id)
        catalog = self.settings.plans
        target = catalog.require_upgrade(tenant.plan, to_plan)
        require_active(tenant_id, tenant.state, "upgrade")
        data = plan_change_input(
            catalog,
            tenant_id,
            tenant.plan,
            target,
            proration_behavior=self.settings.proration_behavior,
            actor=actor,
        )
        return await self.start(
            UpgradeWorkflow.run, data, tenant_id=tenant_id, kind=OperationKind.UPGRADE
        )

    async def downgrade_tenant(
        self,
        tenant_id: str,
        to_plan: str,
        effective: Effective = "period_end",
        actor: str = "api",
    ) -> OperationStarted:
        """Start downgrading to ``to_plan`` at the billing period's end or immediately.

        Raises TenantNotFound, InvalidInput (target not below the current plan),
        UsageExceedsLimits (an InvalidInput listing each resource over the target's limit)
        and StateConflict (not ACTIVE; a downgrade already pending or running).
        """
        from workflows.downgrade import DowngradeWorkflow

        preview = await self.downgrade_preview(tenant_id, to_plan)
        tenant = await self.repository.get(tenant_id)
        require_active(tenant_id, tenant.state, "downgrade")
        if preview.violations:
            raise UsageExceedsLimits(tenant_id, to_plan, preview.violations)
        catalog = self.settings.plans
        data = plan_change_input(
            catalog,
            tenant_id,
            tenant.plan,
            catalog.get(to_plan),
            effective=effective,
            proration_behavior=self.settings.proration_behavior,
            actor=actor,
        )
        return await self.start(
            DowngradeWorkflow.run, data, tenant_id=tenant_id, kind=OperationKind.DOWNGRADE
        )

    async def downgrade_preview(self, tenant_id: str, to_plan: str) -> DowngradePreview:
        """Would a downgrade to ``to_plan`` be accepted by usage? Starts nothing.

        Raises TenantNotFound and InvalidInput (target not below the current plan).
        """
        tenant = await self.repository.get(tenant_id)
        target = self.settings.plans.require_downgrade(tenant.plan, to_plan)
        violations = usage_violations(tenant.usage, target.limits)
        return DowngradePreview(
            tenant_id=tenant_id,
            from_plan=tenant.plan,
            to_plan=target.name,
            allowed=not violations,
            usage=tenant.usage,
            limits=target.limits.as_dict(),
            violations=violations,
        )

    async def cancel_downgrade(self, tenant_id: str, actor: str = "api") -> str:
        """Signal ``cancel_downgrade`` to the tenant's pending downgrade; returns its workflow
        id. Raises TenantNotFound and StateConflict when no downgrade is pending."""
        from workflows.downgrade import DowngradeWorkflow

        tenant = await self.repository.get(tenant_id)
        pending = tenant.pending_plan_change or {}
        wid = pending.get("workflow_id")
        conflict = StateConflict(
            f"tenant '{tenant_id}' has no pending downgrade (state {tenant.state.value}, "
            f"plan '{tenant.plan}')"
        )
        if not wid:
            raise conflict
        try:
            await self.handle(wid).signal(
                DowngradeWorkflow.cancel_downgrade, CancelDowngrade(actor=actor)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise conflict from exc
            raise
        return wid

    async def record_usage(self, tenant_id: str, usage: dict[str, int]) -> UsageView:
        """Record current usage (resource -> amount; unnamed resources keep their value).

        Usage above the current entitlements is recorded and listed in ``over_limit``.
        Raises TenantNotFound and InvalidInput (unknown resource, negative amount).
        """
        tenant = await self.repository.record_usage(tenant_id, check_usage_update(usage))
        return UsageView(
            tenant_id=tenant_id,
            usage=tenant.usage,
            entitlements=tenant.entitlements,
            over_limit=usage_violations(tenant.usage, tenant.entitlements),
        )

    # -- reading state --------------------------------------------------------------------

    async def get_tenant(self, tenant_id: str) -> TenantView:
        """The tenant row; raises TenantNotFound."""
        return await self.repository.get(tenant_id)

    def handle(self, wid: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(wid)

    async def operation(self, wid: str) -> OperationView | None:
        """Status of an operation from Temporal (running, completed, failed...) merged with the
        step and result the control plane recorded; None when Temporal does not know it."""
        handle = self.handle(wid)
        try:
            desc = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        recorded = await self.repository.operation(wid)
        status = desc.status.name.lower() if desc.status else "unknown"
        view = recorded or OperationView(workflow_id=wid, status=status)
        view.status = status
        view.started_at = view.started_at or desc.start_time
        view.finished_at = desc.close_time
        if desc.status == WorkflowExecutionStatus.RUNNING:
            try:
                progress = await handle.query("progress", rpc_timeout=PROGRESS_QUERY_TIMEOUT)
                view.step = progress.get("step", view.step)
                view.result = {**(view.result or {}), "progress": progress}
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

    # -- exports (GDPR Art. 15/20) --------------------------------------------------------

    @cached_property
    def exports(self) -> ExportRepository:
        return ExportRepository(self.repository.sessions)

    @cached_property
    def export_storage(self) -> ExportStorage:
        return ExportStorage.from_settings(self.settings, signing=True)

    async def export_tenant(
        self, tenant_id: str, export_type: ExportType = "full", actor: str = "api"
    ) -> dict[str, Any]:
        """Start an export of everything ``tenant_id`` owns in the data map; returns
        ``{export_id, workflow_id, tenant_id, status: "queued", estimated_completion}``.

        Raises TenantNotFound, and StateConflict unless the tenant is ACTIVE (the workflow's
        compare-and-set to EXPORTING settles a race between two requests).
        """
        tenant = await self.repository.get(tenant_id)
        if tenant.state is not TenantState.ACTIVE:
            raise StateConflict(f"tenant '{tenant_id}' is {tenant.state}; export needs ACTIVE")
        export_id = uuid.uuid4().hex
        wid = workflow_id(tenant_id, OperationKind.EXPORT, export_id)
        eta = utcnow() + await self.exports.typical_duration(tenant_id)
        await self.exports.create(
            export_id=export_id,
            tenant_id=tenant_id,
            workflow_id=wid,
            export_type=export_type,
            requested_by=actor,
            estimated_completion=eta,
        )
        from workflows.export import ExportWorkflow

        data = ExportInput(
            tenant_id=tenant_id,
            export_id=export_id,
            export_type=export_type,
            actor=actor,
            chunk_bytes=int(self.settings.data_export_chunk_size_mb * 1024 * 1024),
            retention_days=self.settings.export_retention_days,
        )
        try:
            await self.start(
                ExportWorkflow.run,
                data,
                tenant_id=tenant_id,
                kind=OperationKind.EXPORT,
                suffix=export_id,
            )
        except BaseException as exc:
            await self.exports.update(
                ExportUpdate(export_id=export_id, status="failed", error=f"not started: {exc}")
            )
            raise
        return {
            "export_id": export_id,
            "workflow_id": wid,
            "tenant_id": tenant_id,
            "status": "queued",
            "estimated_completion": eta.isoformat(),
        }

    async def get_export(self, export_id: str) -> ExportView:
        """The export's status and progress (live from the workflow while it runs); for a
        completed export a download link valid EXPORT_LINK_TTL_DAYS (at most 7 days, and no
        longer than the archive is kept). Raises ExportNotFound."""
        return await self._export_view(await self.exports.get(export_id))

    async def list_exports(self, tenant_id: str) -> list[ExportView]:
        """A tenant's exports, newest first (raises TenantNotFound)."""
        await self.repository.get(tenant_id)
        return [await self._export_view(row) for row in await self.exports.list(tenant_id)]

    async def _export_view(self, row: Export) -> ExportView:
        view = ExportView.model_validate(row, from_attributes=True)
        view.archive_expires_at = row.expires_at
        if row.status in ("queued", "running"):
            try:
                live = await self.handle(row.workflow_id).query(
                    "progress", rpc_timeout=PROGRESS_QUERY_TIMEOUT
                )
                view.progress = {k: v for k, v in live.items() if isinstance(v, int)}
            except RPCError:
                pass  # no worker polling right now: the recorded progress stands
        elif row.status == "completed" and row.expires_at is not None:
            now = utcnow()
            until = min(now + timedelta(days=self.settings.export_link_ttl_days), row.expires_at)
            view.expires_at = until
            view.download_url = await self.export_storage.download_url(
                row.tenant_id, row.export_id, int(until.timestamp()), int(now.timestamp())
            )
        return view
