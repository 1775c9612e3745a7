"""Control-plane reads and writes of bulk plan migrations (one transaction each, safe to
retry): count the tenants, page through them, record the ones not moved."""

from __future__ import annotations

from temporalio import activity

from activities import domain_errors
from lifecycle.domain.plan_migrations import (
    MigrationBatch,
    MigrationBatchQuery,
    MigrationFailuresInput,
)
from lifecycle.persistence.plan_migrations import PlanMigrationRepository


class PlanMigrationActivities:
    """The bulk plan migration's database steps, through ``repository``."""

    def __init__(self, repository: PlanMigrationRepository) -> None:
        self.repository = repository

    @activity.defn
    @domain_errors
    async def count_migration_tenants(self, data: MigrationBatchQuery) -> int:
        """How many tenants of ``data.from_plan`` match ``data.filter``."""
        return await self.repository.count(data.from_plan, data.filter)

    @activity.defn
    @domain_errors
    async def migration_batch(self, data: MigrationBatchQuery) -> MigrationBatch:
        """The next page of tenants to migrate (see ``PlanMigrationRepository.batch``)."""
        return await self.repository.batch(data)

    @activity.defn
    @domain_errors
    async def record_migration_failures(self, data: MigrationFailuresInput) -> None:
        """Record the tenants not moved, with their causes."""
        await self.repository.record_failures(data)
