"""``/tenants/{id}/reactivate``: a SUSPENDED tenant back to ACTIVE, or a DELETED one within
retention."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lifecycle.api.deps import Lifecycle, Operator
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.reactivation import ReactivateRequest

router = APIRouter(prefix="/tenants", tags=["reactivation"])


@router.post("/{tenant_id}/reactivate", status_code=202, response_model=OperationStarted)
async def reactivate_tenant(
    tenant_id: TenantId,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    body: ReactivateRequest | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Reactivate a SUSPENDED tenant, or a DELETED one within retention; 409 naming why
    not (purged at ..., purge running, retention over, reactivation disabled)."""

    async def produce() -> OperationStarted:
        return await lifecycle.reactivation.reactivate_tenant(
            tenant_id, body or ReactivateRequest(), actor
        )

    return await idempotent(request, lifecycle, idempotency_key, produce)
