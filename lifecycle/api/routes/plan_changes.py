"""``/tenants/{id}``: upgrade, downgrade (and its cancellation and preview), usage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import StrictInt

from lifecycle.api.deps import Lifecycle, Operator, Viewer
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.api.problems import ProblemError
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.plan_changes import (
    DowngradeCancelRequested,
    DowngradePreview,
    DowngradeRequest,
    DowngradeStarted,
    PlanChangePreview,
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


def _usage_problem(
    produce: Callable[[], Awaitable[DowngradeStarted]],
) -> Callable[[], Awaitable[DowngradeStarted]]:
    """``produce`` with UsageExceedsLimits answered as 422 listing ``violations``."""

    async def wrapped() -> DowngradeStarted:
        try:
            return await produce()
        except UsageExceedsLimits as exc:
            raise ProblemError(
                422, exc.detail, violations=[v.model_dump() for v in exc.violations]
            ) from exc

    return wrapped


@router.post("/{tenant_id}/upgrade", status_code=202, response_model=OperationStarted)
async def upgrade(
    tenant_id: TenantId,
    body: UpgradeRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Start an upgrade now (entitlements, then billing with proration); 202 with the workflow
    id, 422 when the target is not above the current plan, 409 when not ACTIVE."""

    async def produce() -> OperationStarted:
        return await lifecycle.plan_changes.upgrade_tenant(tenant_id, body.to_plan, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.post("/{tenant_id}/downgrade", status_code=202, response_model=DowngradeStarted)
async def downgrade(
    tenant_id: TenantId,
    body: DowngradeRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Start a downgrade at period end or immediately (default: the plans file's rule for the
    pair); 202 with the workflow id, 422 listing each resource over the target's limits or
    naming a not_allowed rule, 409 when not ACTIVE."""

    async def produce() -> DowngradeStarted:
        return await lifecycle.plan_changes.downgrade_tenant(
            tenant_id, body.to_plan, body.effective, actor
        )

    return await idempotent(request, lifecycle, idempotency_key, _usage_problem(produce))


@router.post(
    "/{tenant_id}/downgrade/cancel", status_code=202, response_model=DowngradeCancelRequested
)
async def cancel_downgrade(
    tenant_id: TenantId,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Cancel the downgrade waiting for the period end; 409 when none is pending."""

    async def produce() -> DowngradeCancelRequested:
        wid = await lifecycle.plan_changes.cancel_downgrade(tenant_id, actor)
        return DowngradeCancelRequested(workflow_id=wid, tenant_id=tenant_id)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.get("/{tenant_id}/downgrade-preview")
async def downgrade_preview(
    tenant_id: TenantId,
    lifecycle: Lifecycle,
    _: Viewer,
    to_plan: Annotated[str, Query(max_length=64, description="target plan, below the current one")],
) -> DowngradePreview:
    """Would a downgrade to ``to_plan`` pass the usage check? Starts nothing."""
    return await lifecycle.plan_changes.downgrade_preview(tenant_id, to_plan)


@router.get("/{tenant_id}/plan-change-preview")
async def plan_change_preview(
    tenant_id: TenantId,
    lifecycle: Lifecycle,
    _: Viewer,
    to_plan: Annotated[str, Query(max_length=64, description="target plan, above or below")],
) -> PlanChangePreview:
    """What changing to ``to_plan`` would do: the plans file's rule (immediate, end of period
    or not allowed), the usage check, the entitlement diff and the prorated amount from
    Stripe's invoice preview (unavailable in limited mode). Starts nothing."""
    return await lifecycle.plan_changes.plan_change_preview(tenant_id, to_plan)


@router.put("/{tenant_id}/usage")
async def record_usage(
    tenant_id: TenantId, usage: UsageBody, lifecycle: Lifecycle, _: Operator
) -> UsageView:
    """Record current usage per resource; unnamed resources keep their value. Usage above
    the current entitlements is recorded and listed in ``over_limit``."""
    return await lifecycle.plan_changes.record_usage(tenant_id, usage)
