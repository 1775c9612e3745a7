"""``/tenants/{id}/suspend``: revoke an ACTIVE tenant's access, keep its subscription;
``/tenants/{id}/pause`` and ``/resume``: a suspension with billing collection paused, resumed
at a date or early."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lifecycle.api.deps import Lifecycle, Operator
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.suspension import PauseRequest, SuspendRequest

router = APIRouter(prefix="/tenants", tags=["suspension"])


@router.post("/{tenant_id}/suspend", status_code=202, response_model=OperationStarted)
async def suspend_tenant(
    tenant_id: TenantId,
    body: SuspendRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Suspend an ACTIVE tenant: access revoked, subscription kept; 409 otherwise."""

    async def produce() -> OperationStarted:
        return await lifecycle.suspension.suspend_tenant(tenant_id, body, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.post("/{tenant_id}/pause", status_code=202, response_model=OperationStarted)
async def pause_tenant(
    tenant_id: TenantId,
    body: PauseRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Pause an ACTIVE tenant (SUSPENDED, ``suspension.kind = "paused"``, billing collection
    paused) until ``resume_at`` or ``POST .../resume``; 409 otherwise, 422 for a past
    ``resume_at``."""

    async def produce() -> OperationStarted:
        return await lifecycle.suspension.pause_tenant(tenant_id, body, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.post("/{tenant_id}/resume", status_code=202, response_model=OperationStarted)
async def resume_tenant(
    tenant_id: TenantId,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Resume a paused tenant now (the reactivation path, billing resumed); 409 when the
    tenant is not paused."""

    async def produce() -> OperationStarted:
        return await lifecycle.suspension.resume_tenant(tenant_id, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)
