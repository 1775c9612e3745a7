"""``/tenants/{id}``: soft delete, reactivate, suspend, legal hold, deletion certificate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from lifecycle.api.deps import Actor, IdempotencyHeader, Lifecycle, idempotent
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.deletion import (
    CertificateView,
    DeleteRequest,
    LegalHoldRequest,
    ReactivateRequest,
    SuspendRequest,
)

router = APIRouter(prefix="/tenants", tags=["deletion"])


@router.post("/{tenant_id}/delete", status_code=202)
async def delete_tenant(
    tenant_id: TenantId,
    body: DeleteRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Actor,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Soft-delete (GDPR Art. 17): access revoked, billing stopped, data kept for the
    retention period (30..90 days), then purged; 409 unless ACTIVE or SUSPENDED."""

    async def produce() -> dict[str, Any]:
        return await lifecycle.delete_tenant(tenant_id, body, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)  # type: ignore[return-value]


@router.post("/{tenant_id}/reactivate", status_code=202)
async def reactivate_tenant(
    tenant_id: TenantId,
    request: Request,
    lifecycle: Lifecycle,
    actor: Actor,
    body: ReactivateRequest | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Reactivate a SUSPENDED tenant, or a DELETED one within retention; 409 naming why
    not (purged at ..., purge running, retention over, reactivation disabled)."""

    async def produce() -> dict[str, Any]:
        return await lifecycle.reactivate_tenant(tenant_id, body or ReactivateRequest(), actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)  # type: ignore[return-value]


@router.post("/{tenant_id}/suspend", status_code=202)
async def suspend_tenant(
    tenant_id: TenantId,
    body: SuspendRequest,
    request: Request,
    lifecycle: Lifecycle,
    actor: Actor,
    idempotency_key: IdempotencyHeader = None,
) -> dict[str, Any]:
    """Suspend an ACTIVE tenant: access revoked, subscription kept; 409 otherwise."""

    async def produce() -> dict[str, Any]:
        return await lifecycle.suspend_tenant(tenant_id, body, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)  # type: ignore[return-value]


@router.post("/{tenant_id}/legal-hold", status_code=202)
async def set_legal_hold(
    tenant_id: TenantId, lifecycle: Lifecycle, actor: Actor, body: LegalHoldRequest | None = None
) -> dict[str, Any]:
    """Place a legal hold: the purge does not run while it stands."""
    return await lifecycle.set_legal_hold(tenant_id, True, body, actor)


@router.delete("/{tenant_id}/legal-hold", status_code=202)
async def release_legal_hold(
    tenant_id: TenantId, lifecycle: Lifecycle, actor: Actor
) -> dict[str, Any]:
    """Release the legal hold: a purge past its time proceeds."""
    return await lifecycle.set_legal_hold(tenant_id, False, None, actor)


@router.get("/{tenant_id}/deletion-certificate")
async def deletion_certificate(
    tenant_id: TenantId, lifecycle: Lifecycle, _: Actor
) -> CertificateView:
    """The signed certificate of a purged tenant (verify: ``tenantctl certificate verify``);
    404 before the purge."""
    return await lifecycle.deletion_certificate(tenant_id)
