"""``/tenants``: onboard, read, list and audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from lifecycle.api.deps import Lifecycle, Operator, Viewer
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.domain.onboarding import OnboardRequest
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TENANT_ID_PATTERN, EventView, OperationPage, TenantView

router = APIRouter(prefix="/tenants", tags=["tenants"])
TenantId = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description="tenant slug")]

#: Largest page offset accepted: far beyond any real listing, and inside every database's
#: 64-bit OFFSET.
MAX_OFFSET = 2**31 - 1
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]


@router.post("", status_code=202, response_model=OperationStarted)
async def onboard(
    body: OnboardRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Start onboarding; 202 with the workflow id, 409 when the tenant exists."""

    async def produce() -> OperationStarted:
        return await lifecycle.onboarding.onboard_tenant(body, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.get("")
async def list_tenants(
    lifecycle: Lifecycle,
    _: Viewer,
    state: TenantState | None = None,
    plan: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """One page of tenants, filtered by state and plan, ordered by id."""
    if plan is not None:
        lifecycle.settings.plans.get(plan)
    items, total = await lifecycle.repository.list(
        state=state.value if state else None, plan=plan, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{tenant_id}")
async def get_tenant(tenant_id: TenantId, lifecycle: Lifecycle, _: Viewer) -> TenantView:
    """The tenant, its entitlements, usage and pending plan change; 404 when unknown."""
    return await lifecycle.get_tenant(tenant_id)


@router.get("/{tenant_id}/events")
async def events(
    tenant_id: TenantId,
    lifecycle: Lifecycle,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[EventView]:
    """The tenant's audit log, oldest first."""
    await lifecycle.get_tenant(tenant_id)
    return await lifecycle.repository.events(tenant_id, limit=limit, offset=offset)


@router.get("/{tenant_id}/operations")
async def operations(
    tenant_id: TenantId,
    lifecycle: Lifecycle,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> OperationPage:
    """Every operation run of the tenant (re-runs under one workflow id included), latest
    first, as the control plane recorded them; 404 when the tenant is unknown."""
    items, total = await lifecycle.tenant_operations(tenant_id, limit=limit, offset=offset)
    return OperationPage(items=items, total=total, limit=limit, offset=offset)
