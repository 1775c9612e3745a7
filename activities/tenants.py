"""Activities on the control plane's own tables: tenant rows, audit log, operations."""

from __future__ import annotations

from temporalio import activity

from activities import domain_errors
from lifecycle.domain.dunning import DunningUpdate
from lifecycle.domain.onboarding import CreateTenantInput
from lifecycle.domain.tenants import OperationUpdate, TenantView, TransitionInput
from lifecycle.persistence.tenants import TenantRepository


class TenantActivities:
    """Control-plane writes, each one transaction, each safe to retry."""

    def __init__(self, repository: TenantRepository) -> None:
        self.repository = repository

    @activity.defn
    @domain_errors
    async def get_tenant(self, tenant_id: str) -> TenantView:
        """Read the tenant row (TenantNotFound is non-retryable)."""
        return await self.repository.get(tenant_id)

    @activity.defn
    @domain_errors
    async def create_tenant(self, data: CreateTenantInput) -> TenantView:
        """Insert the ACTIVE tenant with entitlements and its audit row (idempotent)."""
        return await self.repository.create_tenant(data)

    @activity.defn
    @domain_errors
    async def transition_tenant(self, change: TransitionInput) -> TenantView:
        """Compare-and-set the tenant's state plus one audit row, and the operation's step
        (``change.record``) in the row of the calling workflow's run, in one transaction
        (idempotent per workflow)."""
        activity.logger.info(
            "tenant %s: %s -> %s (%s)",
            change.tenant_id,
            "/".join(change.from_states),
            change.to_state,
            change.operation,
        )
        return await self.repository.transition(change, activity.info().workflow_run_id or "")

    @activity.defn
    @domain_errors
    async def set_dunning(self, data: DunningUpdate) -> TenantView:
        """Set or clear the tenant's dunning status with its audit row (once per key)."""
        return await self.repository.set_dunning(data)

    @activity.defn
    async def record_operation(self, update: OperationUpdate) -> None:
        """Mirror an operation's step or outcome into the ``operations`` table, in the row of
        the calling workflow's run."""
        await self.repository.record_operation(update, activity.info().workflow_run_id or "")
