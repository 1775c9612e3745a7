"""``/tenants/{id}/suspend``: revoke an ACTIVE tenant's access, keep its subscription."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lifecycle.api.deps import Lifecycle, Operator
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.suspension import SuspendRequest

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
