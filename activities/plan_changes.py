"""Control-plane writes of plan changes that are not state transitions: the pending plan
change shown while a downgrade waits."""

from __future__ import annotations

from temporalio import activity

from activities import domain_errors
from lifecycle.domain.plan_changes import PendingChangeInput
from lifecycle.domain.tenants import TenantView
from lifecycle.persistence.tenants import TenantRepository


class PlanChangeActivities:
    """One transaction per call, safe to retry (its audit row is written once per key)."""

    def __init__(self, repository: TenantRepository) -> None:
        self.repository = repository

    @activity.defn
    @domain_errors
    async def set_pending_plan_change(self, data: PendingChangeInput) -> TenantView:
        """Set or clear the tenant's ``pending_plan_change`` with an audit row."""
        return await self.repository.set_pending_plan_change(data)
