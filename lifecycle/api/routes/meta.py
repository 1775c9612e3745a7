"""Operations, plans, configuration and health."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from lifecycle.api.deps import Admin, Lifecycle, Viewer
from lifecycle.api.metrics import render_metrics
from lifecycle.api.problems import ProblemError
from lifecycle.domain.tenants import OperationView
from lifecycle.persistence.tables import utcnow

router = APIRouter(tags=["meta"])

#: Workflow ids of this product are ``tenant-<id>-<operation>[-<suffix>]``; printable ASCII
#: without spaces, at most Temporal's 255, covers them and any other workflow of the namespace.
WorkflowId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,254}$", description="workflow id")
]


@router.get("/operations/{workflow_id}")
async def operation(workflow_id: WorkflowId, lifecycle: Lifecycle, _: Viewer) -> OperationView:
    """The latest run of an operation: status (from Temporal), step reached and result or
    error, and ``runs``: every recorded run under this workflow id, latest first."""
    view = await lifecycle.operation(workflow_id)
    if view is None:
        raise ProblemError(404, f"operation '{workflow_id}' does not exist")
    return view


@router.get("/plans")
async def plans(lifecycle: Lifecycle, _: Viewer) -> list[dict[str, Any]]:
    """The plan hierarchy, lowest first, with limits and price ids."""
    return [p.model_dump() for p in lifecycle.settings.plans.plans]


@router.get("/config")
async def config(lifecycle: Lifecycle, _: Admin) -> dict[str, Any]:
    """Effective configuration with every secret redacted."""
    return lifecycle.settings.redacted()


@router.get("/health")
async def health(lifecycle: Lifecycle) -> JSONResponse:
    """200 when the database and Temporal answer, 503 naming what is down."""
    checks: dict[str, str] = {}
    try:
        async with lifecycle.repository.sessions() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "down"; its text is the diagnosis
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        await lifecycle.temporal.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"down: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get("/status")
async def status(lifecycle: Lifecycle, _: Viewer) -> dict[str, Any]:
    """Tenants per state, running operations per kind, purges due in the next 7 days."""
    by_status, _durations = await lifecycle.repository.operation_stats(())
    now = utcnow()
    due = await lifecycle.repository.purges_due(now + timedelta(days=7))
    return {
        "tenants_by_state": await lifecycle.repository.count_by_state(),
        "running_operations": {k: n for (k, s), n in sorted(by_status.items()) if s == "running"},
        "purges_due_7d": [
            {"tenant_id": t.tenant_id, "purge_scheduled_at": t.purge_scheduled_at} for t in due
        ],
        "at": now,
    }


@router.get("/metrics", include_in_schema=False)
async def metrics(lifecycle: Lifecycle) -> Response:
    """Prometheus text exposition (no token: scrape endpoints are network-restricted);
    404 when ENABLE_METRICS is false."""
    if not lifecycle.settings.enable_metrics:
        raise ProblemError(404, "metrics are disabled (ENABLE_METRICS=false)")
    return Response(await render_metrics(lifecycle.repository), media_type=CONTENT_TYPE_LATEST)
