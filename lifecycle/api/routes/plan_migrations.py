"""``/bulk/plan-migrations``: move every tenant of a plan to another plan or price (issue 19,
target 5), read the progress, pause, resume, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from lifecycle.api.deps import Admin, Lifecycle, Viewer
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.domain.plan_migrations import (
    PlanMigrationProgress,
    PlanMigrationRequest,
    PlanMigrationStarted,
)

router = APIRouter(prefix="/bulk/plan-migrations", tags=["bulk plan migrations"])

MigrationId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{16}$", description="the migration id (16 hex digits)")
]


@router.post("", status_code=202, response_model=PlanMigrationStarted)
async def start_migration(
    body: PlanMigrationRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Admin,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Start moving every tenant of ``from_plan`` (matching ``filter``) to ``to_plan`` or
    ``to_price_id``: 202 with the migration id; 422 for an unknown plan, the same plan
    without ``to_price_id``, or ``period_end`` for a migration that is not a downgrade."""

    async def produce() -> PlanMigrationStarted:
        return await lifecycle.plan_migrations.start(body, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.get("/{migration_id}", response_model=PlanMigrationProgress)
async def migration_progress(
    migration_id: MigrationId, lifecycle: Lifecycle, _: Viewer
) -> PlanMigrationProgress:
    """Status and counts (done, failed, in flight, remaining) and the tenants not moved with
    their causes; 404 for an unknown migration."""
    return await lifecycle.plan_migrations.progress(migration_id)


@router.post("/{migration_id}/pause", response_model=PlanMigrationProgress)
async def pause_migration(
    migration_id: MigrationId, lifecycle: Lifecycle, actor: Admin
) -> PlanMigrationProgress:
    """Start no more tenants until resumed (those in flight finish); 404 for an unknown
    migration, 409 once it has ended."""
    return await lifecycle.plan_migrations.control(migration_id, "pause", actor)


@router.post("/{migration_id}/resume", response_model=PlanMigrationProgress)
async def resume_migration(
    migration_id: MigrationId, lifecycle: Lifecycle, actor: Admin
) -> PlanMigrationProgress:
    """Go on after a pause; 404 for an unknown migration, 409 once it has ended."""
    return await lifecycle.plan_migrations.control(migration_id, "resume", actor)


@router.post("/{migration_id}/cancel", response_model=PlanMigrationProgress)
async def cancel_migration(
    migration_id: MigrationId, lifecycle: Lifecycle, actor: Admin
) -> PlanMigrationProgress:
    """Start no more tenants, ever: the migration ends ``cancelled`` once those in flight
    have ended (never cut off mid-saga); 404 for an unknown migration, 409 once it has
    ended."""
    return await lifecycle.plan_migrations.control(migration_id, "cancel", actor)
