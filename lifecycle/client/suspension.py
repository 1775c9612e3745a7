"""Suspension: an ACTIVE tenant's access revoked, its subscription kept; a pause (suspended,
billing collection paused, resumed at a date or early)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.service import RPCError

from lifecycle.client.base import Service, not_found
from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.operations import (
    OperationKind,
    OperationStarted,
    workflow_id,
)
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import (
    PauseInput,
    PauseRequest,
    ResumeSignal,
    SuspendRequest,
    SuspensionInput,
)


class SuspensionService(Service):
    """Starts suspensions and pauses, resumes paused tenants."""

    async def suspend_tenant(
        self, tenant_id: str, request: SuspendRequest, actor: str = "api"
    ) -> OperationStarted:
        """Suspend an ACTIVE tenant: access revoked, subscription kept. Raises
        TenantNotFound, StateConflict naming the state."""
        from workflows.suspension import SuspensionWorkflow

        tenant = await self.core.repository.get(tenant_id)
        if tenant.state is not TenantState.ACTIVE:
            raise StateConflict(
                f"tenant '{tenant_id}' is {tenant.state}; suspend needs state ACTIVE"
            )
        started = await self.core.start(
            SuspensionWorkflow.run,
            SuspensionInput(tenant_id=tenant_id, reason=request.reason, actor=actor),
            tenant_id=tenant_id,
            kind=OperationKind.SUSPEND,
        )
        return started

    async def pause_tenant(
        self, tenant_id: str, request: PauseRequest, actor: str = "api"
    ) -> OperationStarted:
        """Pause an ACTIVE tenant until ``request.resume_at`` (or until resumed): SUSPENDED
        with ``suspension.kind = "paused"``, collection paused with
        PAUSE_COLLECTION_BEHAVIOR. Raises TenantNotFound, InvalidInput (``resume_at`` not in
        the future), StateConflict naming the state."""
        from workflows.suspension import PauseWorkflow

        if request.resume_at is not None and request.resume_at <= datetime.now(UTC):
            raise InvalidInput(f"resume_at: {request.resume_at.isoformat()} is not in the future")
        tenant = await self.core.repository.get(tenant_id)
        if tenant.state is not TenantState.ACTIVE:
            raise StateConflict(f"tenant '{tenant_id}' is {tenant.state}; pause needs state ACTIVE")
        data = PauseInput(
            tenant_id=tenant_id,
            reason=request.reason,
            resume_at=request.resume_at,
            behavior=self.core.settings.pause_collection_behavior,
            actor=actor,
        )
        return await self.core.start(
            PauseWorkflow.run, data, tenant_id=tenant_id, kind=OperationKind.PAUSE
        )

    async def resume_tenant(self, tenant_id: str, actor: str = "api") -> OperationStarted:
        """Resume a paused tenant now, through the pause workflow's reactivation path
        (collection resumed, the plan's entitlements back). Raises TenantNotFound,
        StateConflict when the tenant is not paused."""
        from workflows.suspension import PauseWorkflow

        tenant = await self.core.repository.get(tenant_id)
        kind = tenant.suspension.kind if tenant.suspension else None
        if tenant.state is not TenantState.SUSPENDED or kind != "paused":
            now = f"{tenant.state}" + (f" ({kind})" if kind else "")
            raise StateConflict(f"tenant '{tenant_id}' is {now}; resume needs a paused tenant")
        wid = workflow_id(tenant_id, OperationKind.PAUSE)
        try:
            await self.core.handle(wid).signal(PauseWorkflow.resume, ResumeSignal(actor=actor))
        except RPCError as exc:
            if not not_found(exc):
                raise
            raise StateConflict(
                f"tenant '{tenant_id}' is paused but its pause workflow {wid} is not running; "
                "reactivate it instead"
            ) from exc
        return OperationStarted(
            workflow_id=wid, run_id=None, tenant_id=tenant_id, operation="resume", status="resuming"
        )
