"""Current usage of a tenant's resources, as the usage checks of plan changes read it.

This source reads what ``PUT /tenants/{id}/usage`` recorded in the control plane; a source
that asks the SaaS application directly replaces this class in ``worker.build_activities``.
"""

from __future__ import annotations

from temporalio import activity

from activities import domain_errors
from lifecycle.persistence.tenants import TenantRepository


class UsageActivities:
    """Usage reads from the control-plane database."""

    def __init__(self, repository: TenantRepository) -> None:
        self.repository = repository

    @activity.defn
    @domain_errors
    async def current_usage(self, tenant_id: str) -> dict[str, int]:
        """Resource -> current amount (counts; ``storage_gb`` in GB); unrecorded ones are 0."""
        return dict((await self.repository.get(tenant_id)).usage)
