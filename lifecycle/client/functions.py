"""The specification's function-style calls: synchronous, with its argument names and result
shapes, each a thin wrapper over one :class:`LifecycleClient` call::

    from lifecycle import upgrade_tenant, export_tenant_data, delete_tenant

    upgrade_tenant("acme", "enterprise")  # {"workflow_id": "tenant-acme-upgrade", ...}
    export_tenant_data("acme")  # {"export_id", "status", "estimated_completion", ...}
    delete_tenant("acme", retention_days=30)
    # {"deletion_id", "can_reactivate", "retention_days", "hard_delete_scheduled_at", ...}

Each call validates its arguments with the models of the specification's routes
(``lifecycle.domain.compat``: pydantic ``ValidationError`` naming the argument), connects with
``settings`` (default: ``Settings()``, the environment and ``.env``), starts the operation and
returns the 202 answer of the matching route as a JSON-ready ``dict`` (the specification's
callers index it: ``result["export_id"]``). The operation goes on in Temporal; follow it with
``LifecycleClient.operation(workflow_id)`` or ``GET /operations/{workflow_id}``. Domain errors
are raised as they are: TenantNotFound (404), StateConflict (409), InvalidInput (422).

From a running event loop (a Jupyter cell, an async application) the call runs on a thread
of its own, so it works there too; it still blocks the calling thread until it returns, so
an application that runs a worker in that same loop calls it through
``asyncio.to_thread`` (a reactivation waits for the worker to answer its update).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.domain.compat import (
    DeleteTenantData,
    DowngradeTenantData,
    ExportTenantData,
    ReactivateTenantData,
    UpgradeTenantData,
)
from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.exports import ExportType
from lifecycle.domain.plan_changes import DowngradeStarted, Effective
from lifecycle.domain.reactivation import ReactivateRequest

#: The audit log's actor of the function-style calls, unless ``actor=`` names another.
ACTOR = "python"


def _run(
    call: Callable[[LifecycleClient], Awaitable[BaseModel]], settings: Settings | None
) -> dict[str, Any]:
    """Connect, run ``call`` on the client, close; the result as JSON-ready data."""

    async def main() -> dict[str, Any]:
        async with await LifecycleClient.connect(settings or Settings()) as lc:
            return (await call(lc)).model_dump(mode="json")

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def upgrade_tenant(
    tenant_id: str | None = None,
    new_plan: str | None = None,
    tenant_data: dict[str, Any] | None = None,
    *,
    actor: str = ACTOR,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Upgrade ``tenant_id`` to ``new_plan`` now (``POST /upgrade``); returns
    ``workflow_id``, ``run_id``, ``tenant_id``, ``operation``, ``status``."""
    args = UpgradeTenantData.model_validate(
        {"tenant_id": tenant_id, "new_plan": new_plan, "tenant_data": tenant_data},
    )
    return _run(
        lambda lc: lc.plan_changes.upgrade_tenant(args.tenant_id, args.new_plan, actor), settings
    )


def downgrade_tenant(
    tenant_id: str | None = None,
    new_plan: str | None = None,
    tenant_data: dict[str, Any] | None = None,
    effective: Effective | None = None,
    *,
    actor: str = ACTOR,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Downgrade ``tenant_id`` to ``new_plan`` at the period's end or ``immediately``
    (default: the plans file's rule for the pair; ``POST /downgrade``); returns the upgrade's
    fields and ``effective``. Raises UsageExceedsLimits (an InvalidInput listing
    ``violations``) when usage is over the target's limits."""
    args = DowngradeTenantData.model_validate(
        {
            "tenant_id": tenant_id,
            "new_plan": new_plan,
            "tenant_data": tenant_data,
            "effective": effective,
        },
    )

    async def call(lc: LifecycleClient) -> DowngradeStarted:
        return await lc.plan_changes.downgrade_tenant(
            args.tenant_id, args.new_plan, args.effective, actor
        )

    return _run(call, settings)


def export_tenant_data(
    tenant_id: str | None = None,
    export_type: ExportType = "full",
    tenant_data: dict[str, Any] | None = None,
    *,
    actor: str = ACTOR,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Export the tenant's data (GDPR Art. 15/20; ``POST /export``); returns ``export_id``,
    ``status``, ``estimated_completion`` (UTC ISO 8601), ``workflow_id``, ``tenant_id``."""
    args = ExportTenantData.model_validate(
        {"tenant_id": tenant_id, "export_type": export_type, "tenant_data": tenant_data},
    )
    return _run(
        lambda lc: lc.exports.export_tenant(args.tenant_id, args.export_type, actor), settings
    )


def delete_tenant(
    tenant_id: str | None = None,
    retention_days: int | None = None,
    tenant_data: dict[str, Any] | None = None,
    reason: str | None = None,
    requested_by: str | None = None,
    *,
    actor: str = ACTOR,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Soft-delete the tenant (GDPR Art. 17; ``POST /delete``), kept ``retention_days``
    (30..90, default SOFT_DELETE_RETENTION_DAYS) before the purge; returns ``deletion_id``,
    ``can_reactivate``, ``retention_days``, ``hard_delete_scheduled_at`` (UTC ISO 8601),
    ``workflow_id``, ``tenant_id``. ``requested_by`` defaults to ``actor``."""
    args = DeleteTenantData.model_validate(
        {
            "tenant_id": tenant_id,
            "retention_days": retention_days,
            "tenant_data": tenant_data,
            "reason": reason,
            "requested_by": requested_by,
        },
    )
    request = DeleteRequest(
        requested_by=args.requested_by or actor,
        reason=args.reason,
        retention_days=args.retention_days,
    )
    return _run(lambda lc: lc.deletion.delete_tenant(args.tenant_id, request, actor), settings)


def reactivate_tenant(
    tenant_id: str | None = None,
    plan: str | None = None,
    tenant_data: dict[str, Any] | None = None,
    requested_by: str | None = None,
    *,
    actor: str = ACTOR,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Reactivate a SUSPENDED tenant, or a DELETED one within retention
    (``POST /reactivate``), on ``plan`` (default its plan before); returns the operation's
    ``workflow_id`` and ``status``."""
    args = ReactivateTenantData.model_validate(
        {
            "tenant_id": tenant_id,
            "plan": plan,
            "tenant_data": tenant_data,
            "requested_by": requested_by,
        },
    )
    request = ReactivateRequest(plan=args.plan, requested_by=args.requested_by)
    return _run(
        lambda lc: lc.reactivation.reactivate_tenant(args.tenant_id, request, actor), settings
    )
