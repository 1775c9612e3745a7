"""``/reconciliation``: billing drift between the control plane and Stripe (issue 12)."""

from __future__ import annotations

from fastapi import APIRouter

from lifecycle.api.deps import Lifecycle, Operator, Viewer
from lifecycle.domain.reconciliation import ReconciliationReport

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"])


@router.get("", response_model=ReconciliationReport)
async def latest_report(lifecycle: Lifecycle, _: Viewer) -> ReconciliationReport:
    """The latest completed reconciliation's report; 404 before the first one."""
    return await lifecycle.reconciliation.latest()


@router.post("", response_model=ReconciliationReport)
async def reconcile(
    lifecycle: Lifecycle, actor: Operator, fix: bool = False
) -> ReconciliationReport:
    """Run a reconciliation now and answer its report; ``?fix=true`` repairs the
    unambiguous drifts (price, missing subscription, a deleted tenant's subscription)."""
    return await lifecycle.reconciliation.reconcile(fix, actor)
