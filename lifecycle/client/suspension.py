"""Suspension: an ACTIVE tenant's access revoked, its subscription kept."""

from __future__ import annotations

from lifecycle.client.base import Service
from lifecycle.domain.errors import StateConflict
from lifecycle.domain.operations import (
    OperationKind,
    OperationStarted,
)
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest, SuspensionInput


class SuspensionService(Service):
    """Starts suspensions."""

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
