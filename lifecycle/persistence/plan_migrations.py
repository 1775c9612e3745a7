"""Control-plane reads and writes of bulk plan migrations: the pages of tenants a migration
moves (keyset order by id, so a resumed or continued run goes on where it stopped) and the
tenants it did not move, with the cause."""

from __future__ import annotations

from sqlalchemy import Select, func, select

from lifecycle.domain.plan_migrations import (
    MigrationBatch,
    MigrationBatchQuery,
    MigrationFailure,
    MigrationFailuresInput,
    MigrationFilter,
    MigrationTenant,
)
from lifecycle.domain.plans import usage_violations
from lifecycle.domain.states import TenantState
from lifecycle.persistence.tables import PlanMigrationFailure, Tenant, utcnow
from lifecycle.persistence.tenants import TenantRepository


def _matching(from_plan: str, where: MigrationFilter) -> Select[Tenant]:
    """The tenants of ``from_plan`` (not deleted) that ``where`` selects."""
    query = select(Tenant).where(Tenant.plan == from_plan, Tenant.state != TenantState.DELETED)
    if where.tenant_id_prefix:
        query = query.where(Tenant.id.startswith(where.tenant_id_prefix, autoescape=True))
    if where.tenant_ids is not None:
        query = query.where(Tenant.id.in_(where.tenant_ids))
    return query


class PlanMigrationRepository:
    """Bulk-migration queries over the tenant rows of ``tenants``."""

    def __init__(self, tenants: TenantRepository) -> None:
        self.sessions = tenants.sessions

    async def count(self, from_plan: str, where: MigrationFilter) -> int:
        """How many tenants the migration of ``from_plan`` with ``where`` would handle."""
        query = _matching(from_plan, where)
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
        return int(total or 0)

    async def batch(self, data: MigrationBatchQuery) -> MigrationBatch:
        """The next page of tenants after ``data.after``, each with its state and, when
        ``data.limits`` is given, its usage over those limits."""
        query = _matching(data.from_plan, data.filter)
        if data.after is not None:
            query = query.where(Tenant.id > data.after)
        query = query.order_by(Tenant.id).limit(data.limit)
        async with self.sessions() as session:
            rows = (await session.scalars(query)).all()
        tenants = []
        for row in rows:
            over = usage_violations(row.usage or {}, data.limits) if data.limits else []
            tenants.append(
                MigrationTenant(
                    tenant_id=row.id,
                    state=row.state,
                    over_limit=", ".join(str(v) for v in over) or None,
                )
            )
        return MigrationBatch(tenants=tenants)

    async def record_failures(self, data: MigrationFailuresInput) -> None:
        """Record (or overwrite) each failure of ``data.migration_id``: safe to retry."""
        now = utcnow()
        async with self.sessions.begin() as session:
            for failure in data.failures:
                await session.merge(
                    PlanMigrationFailure(
                        migration_id=data.migration_id,
                        tenant_id=failure.tenant_id,
                        cause=failure.cause,
                        message=failure.message,
                        at=now,
                    )
                )

    async def failures(self, migration_id: str, limit: int = 1000) -> list[MigrationFailure]:
        """The first ``limit`` tenants ``migration_id`` did not move, by tenant id."""
        query = (
            select(PlanMigrationFailure)
            .where(PlanMigrationFailure.migration_id == migration_id)
            .order_by(PlanMigrationFailure.tenant_id)
            .limit(limit)
        )
        async with self.sessions() as session:
            rows = (await session.scalars(query)).all()
        return [
            MigrationFailure(tenant_id=r.tenant_id, cause=r.cause, message=r.message) for r in rows
        ]
