"""``/tenants/{id}``: soft delete, legal hold, deletion certificate."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lifecycle.api.deps import Dpo, Lifecycle, Operator
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.deletion import (
    CertificateView,
    DeleteRequest,
    DeletionStarted,
    LegalHoldAccepted,
    LegalHoldRequest,
    PurgeNowAccepted,
    PurgeNowRequest,
)

router = APIRouter(prefix="/tenants", tags=["deletion"])


@router.post("/{tenant_id}/delete", status_code=202, response_model=DeletionStarted)
async def delete_tenant(
    tenant_id: TenantId,
    body: DeleteRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Soft-delete (GDPR Art. 17): access revoked, billing stopped, data kept for the
    retention period (30..90 days), then purged; 409 unless ACTIVE or SUSPENDED."""

    async def produce() -> DeletionStarted:
        return await lifecycle.deletion.delete_tenant(tenant_id, body, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.post("/{tenant_id}/legal-hold", status_code=202)
async def set_legal_hold(
    tenant_id: TenantId, lifecycle: Lifecycle, actor: Dpo, body: LegalHoldRequest | None = None
) -> LegalHoldAccepted:
    """Place a legal hold: the purge does not run while it stands."""
    return await lifecycle.deletion.set_legal_hold(tenant_id, True, body, actor)


@router.delete("/{tenant_id}/legal-hold", status_code=202, response_model=LegalHoldAccepted)
async def release_legal_hold(
    tenant_id: TenantId, lifecycle: Lifecycle, actor: Dpo
) -> LegalHoldAccepted:
    """Release the legal hold: a purge past its time proceeds."""
    return await lifecycle.deletion.set_legal_hold(tenant_id, False, None, actor)


@router.post("/{tenant_id}/purge", status_code=202, response_model=PurgeNowAccepted)
async def purge_now(
    tenant_id: TenantId, body: PurgeNowRequest, lifecycle: Lifecycle, actor: Dpo
) -> PurgeNowAccepted:
    """Purge a DELETED tenant now, waiving the rest of its retention on a written request
    (GDPR Art. 17(1)); ``confirm`` must be the tenant id (422). 409 under a legal hold, once
    the purge started or ran, or during a reactivation. Audited; the certificate records
    ``retention_waived``."""
    return await lifecycle.deletion.purge_now(tenant_id, body, actor)


@router.get("/{tenant_id}/deletion-certificate")
async def deletion_certificate(
    tenant_id: TenantId, lifecycle: Lifecycle, _: Dpo
) -> CertificateView:
    """The signed certificate of a purged tenant (verify: ``tenantctl certificate verify``);
    404 before the purge."""
    return await lifecycle.deletion.deletion_certificate(tenant_id)
