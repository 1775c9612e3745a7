"""The specification's flat routes, for callers written against its API table.

Route and body fields (``lifecycle.domain.compat``) -> the resource route it runs:

- ``POST /upgrade``: ``tenant_id``, ``new_plan`` -> ``POST /tenants/{id}/upgrade``
- ``POST /downgrade``: ``tenant_id``, ``new_plan``, ``effective``
  -> ``POST /tenants/{id}/downgrade``
- ``POST /export``: ``tenant_id``, ``export_type`` -> ``POST /tenants/{id}/exports``
- ``POST /delete``: ``tenant_id``, ``requested_by``, ``reason``, ``retention_days``
  -> ``POST /tenants/{id}/delete``
- ``POST /reactivate``: ``tenant_id``, ``plan``, ``requested_by``
  -> ``POST /tenants/{id}/reactivate``

Every body may carry the specification's ``tenant_data`` record (only its ``tenant_id`` is
read). Each route validates its body, then calls the resource route's own function: the same
role (operator), ``Idempotency-Key`` handling, problems (404, 409 naming the state, 422 naming
the field) and 202 result.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lifecycle.api.deps import Lifecycle, Operator
from lifecycle.api.idempotency import IdempotencyHeader
from lifecycle.api.routes import deletion, exports, plan_changes, reactivation
from lifecycle.domain.compat import (
    DeleteTenantData,
    DowngradeTenantData,
    ExportTenantData,
    ReactivateTenantData,
    UpgradeTenantData,
)
from lifecycle.domain.deletion import DeleteRequest, DeletionStarted
from lifecycle.domain.exports import ExportRequest, ExportStarted
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.plan_changes import DowngradeRequest, DowngradeStarted, UpgradeRequest
from lifecycle.domain.reactivation import ReactivateRequest

router = APIRouter(tags=["compatibility"])


@router.post("/upgrade", status_code=202, response_model=OperationStarted)
async def upgrade(
    body: UpgradeTenantData,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """The specification's upgrade: ``POST /tenants/{tenant_id}/upgrade`` with
    ``to_plan = new_plan``."""
    return await plan_changes.upgrade(
        body.tenant_id,
        UpgradeRequest(to_plan=body.new_plan),
        request,
        lifecycle,
        actor,
        idempotency_key,
    )


@router.post("/downgrade", status_code=202, response_model=DowngradeStarted)
async def downgrade(
    body: DowngradeTenantData,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """The specification's downgrade: ``POST /tenants/{tenant_id}/downgrade`` with
    ``to_plan = new_plan``; 422 lists each resource over the target's limits."""
    return await plan_changes.downgrade(
        body.tenant_id,
        DowngradeRequest(to_plan=body.new_plan, effective=body.effective),
        request,
        lifecycle,
        actor,
        idempotency_key,
    )


@router.post("/export", status_code=202, response_model=ExportStarted)
async def export(
    body: ExportTenantData,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """The specification's export: ``POST /tenants/{tenant_id}/exports``; 202 with
    ``export_id``, ``status`` and ``estimated_completion``."""
    return await exports.start_export(
        body.tenant_id,
        request,
        lifecycle,
        actor,
        ExportRequest(export_type=body.export_type),
        idempotency_key,
    )


@router.post("/delete", status_code=202, response_model=DeletionStarted)
async def delete(
    body: DeleteTenantData,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """The specification's soft delete: ``POST /tenants/{tenant_id}/delete``
    (``requested_by`` defaults to the token's name); 202 with ``deletion_id``,
    ``can_reactivate``, ``retention_days`` and ``hard_delete_scheduled_at``."""
    return await deletion.delete_tenant(
        body.tenant_id,
        DeleteRequest(
            requested_by=body.requested_by or actor,
            reason=body.reason,
            retention_days=body.retention_days,
        ),
        request,
        lifecycle,
        actor,
        idempotency_key,
    )


@router.post("/reactivate", status_code=202, response_model=OperationStarted)
async def reactivate(
    body: ReactivateTenantData,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """The specification's reactivation: ``POST /tenants/{tenant_id}/reactivate`` of a
    SUSPENDED tenant, or a DELETED one within retention."""
    return await reactivation.reactivate_tenant(
        body.tenant_id,
        request,
        lifecycle,
        actor,
        ReactivateRequest(plan=body.plan, requested_by=body.requested_by),
        idempotency_key,
    )
