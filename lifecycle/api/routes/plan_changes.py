"""``/tenants/{id}``: upgrade, downgrade (and its cancellation and preview), usage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import StrictInt

from lifecycle.api.deps import Actor, IdempotencyHeader, Lifecycle, idempotent
from lifecycle.api.problems import ProblemError
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.plan_changes import (
    DowngradePreview,
    DowngradeRequest,
    UpgradeRequest,
    UsageExceedsLimits,
    UsageView,
)

router = APIRouter(prefix="/tenants", tags=["plan changes"])

#: ``{"users": 50, "storage_gb": 40}``: resource -> current amount (counts, GB).
UsageBody = Annotated[
    dict[str, StrictInt],
    Body(examples=[{"users": 50, "storage_gb": 40}]),
]


def _usage_problem(produce: Callable[[], Awaitable[dict[str, Any]]]) -> Any:
    """``produce`` with UsageExceedsLimits answered as 422 listing ``violations``."""

    async def wrapped() -> dict[str, Any]:
        try:
            return await produce()
        except UsageExceedsLimits as exc:
            raise ProblemError(
                422, exc.detail, violations=[v.model_dump() for v in exc.violations]
            ) from exc

    return wrapped


@router.post("/{tenant_id}/upgrade", status_code=202)
async def upgrade(
    tenant_id: TenantId,
    body: UpgradeRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Actor,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Start an upgrade now (entitlements, then billing with proration); 202 with the workflow
    id, 422 when the target is not above the current plan, 409 when not ACTIVE."""

    async def produce() -> dict[str, Any]:
        return (await lifecycle.upgrade_tenant(tenant_id, body.to_plan, actor)).as_dict()

    return await idempotent(request, lifecycle, idempotency_key, produce)  # type: ignore[return-value]


@router.post("/{tenant_id}/downgrade", status_code=202)
async def downgrade(
    tenant_id: TenantId,
    body: DowngradeRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Actor,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Start a downgrade at period end (default) or immediately; 202 with the workflow id,
    422 listing each resource over the target's limits, 409 when not ACTIVE."""

    async def produce() -> dict[str, Any]:
        started = await lifecycle.downgrade_tenant(tenant_id, body.to_plan, body.effective, actor)
        return {**started.as_dict(), "effective": body.effective}

    return await idempotent(request, lifecycle, idempotency_key, _usage_problem(produce))  # type: ignore[return-value]


@router.post("/{tenant_id}/downgrade/cancel", status_code=202)
async def cancel_downgrade(
    tenant_id: TenantId,
    request: Request,
    lifecycle: Lifecycle,
    actor: Actor,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Cancel the downgrade waiting for the period end; 409 when none is pending."""

    async def produce() -> dict[str, Any]:
        wid = await lifecycle.cancel_downgrade(tenant_id, actor)
        return {"workflow_id": wid, "tenant_id": tenant_id, "status": "cancel requested"}

    return await idempotent(request, lifecycle, idempotency_key, produce)  # type: ignore[return-value]


@router.get("/{tenant_id}/downgrade-preview")
async def downgrade_preview(
    tenant_id: TenantId,
    lifecycle: Lifecycle,
    _: Actor,
    to_plan: Annotated[str, Query(description="target plan, below the current one")],
) -> DowngradePreview:
    """Would a downgrade to ``to_plan`` pass the usage check? Starts nothing."""
    return await lifecycle.downgrade_preview(tenant_id, to_plan)


@router.put("/{tenant_id}/usage")
async def record_usage(
    tenant_id: TenantId, usage: UsageBody, lifecycle: Lifecycle, _: Actor
) -> UsageView:
    """Record current usage per resource; unnamed resources keep their value. Usage above
    the current entitlements is recorded and listed in ``over_limit``."""
    return await lifecycle.record_usage(tenant_id, usage)
