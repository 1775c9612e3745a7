"""Billing reconciliation (issue 12): the control plane's billing facts of a tenant compared
with Stripe's, each difference a :class:`Drift` of one :class:`DriftKind`. Pure: the
comparison (:func:`find_drift`) runs in activities and is unit-tested without I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from lifecycle.domain.base import DomainModel

#: Id of the Temporal Schedule that runs :class:`ReconcileInput` every RECONCILE_INTERVAL.
RECONCILIATION_SCHEDULE_ID = "tenant-billing-reconciliation"
#: ``tenant_id`` of the reconciliation's operation rows (it spans every tenant).
ALL_TENANTS = "*"
#: Statuses of a Stripe subscription that bills.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})
#: Statuses of a subscription that will never bill again (``missing``: unknown to Stripe).
GONE_STATUSES = frozenset({"canceled", "incomplete_expired", "missing"})


class DriftKind(StrEnum):
    """What differs; the first three are repaired with ``--fix`` / RECONCILE_AUTOFIX."""

    PRICE_DIFFERS = "price-differs"  # Stripe's price is not the plan's
    NO_SUBSCRIPTION = "no-subscription"  # a paid ACTIVE tenant without a live subscription
    DELETED_BUT_BILLED = "deleted-but-billed"  # a DELETED tenant's subscription still live
    SUBSCRIPTION_NOT_LIVE = "subscription-not-live"  # paid ACTIVE, subscription unpaid/paused
    SCHEDULE_DIFFERS = "schedule-differs"  # pending downgrade and Stripe schedule disagree


FIXABLE = frozenset(
    {DriftKind.PRICE_DIFFERS, DriftKind.NO_SUBSCRIPTION, DriftKind.DELETED_BUT_BILLED}
)


class ControlPlaneBilling(DomainModel):
    """The control plane's side of one tenant: its plan and that plan's price, state,
    subscription and the Stripe schedule of its pending downgrade (if any) with the price
    that schedule moves to."""

    tenant_id: str
    name: str | None = None
    email: str | None = None
    plan: str
    price_id: str
    paid: bool
    state: str
    customer_id: str | None
    subscription_id: str | None
    pending_schedule_id: str | None = None
    pending_price_id: str | None = None


class StripeBilling(DomainModel):
    """Stripe's side: the subscription's status (``missing`` when Stripe has none by that
    id), its item's price and its attached schedule."""

    status: str
    price_id: str | None = None
    schedule_id: str | None = None


class Drift(DomainModel):
    """One difference, with both sides; ``fix`` says what repaired it (None: reported)."""

    tenant_id: str
    kind: DriftKind
    fixable: bool
    control_plane: ControlPlaneBilling
    stripe: StripeBilling | None
    fix: str | None = None


def find_drift(cp: ControlPlaneBilling, stripe: StripeBilling | None) -> list[DriftKind]:
    """The kinds of drift between ``cp`` and ``stripe`` (None: the tenant has no
    subscription id). A tenant being changed by a workflow (not ACTIVE/SUSPENDED/DELETED)
    is skipped: its operation owns billing until it ends.

    A paid ACTIVE tenant whose subscription is gone (none, ``missing``, ``canceled``,
    ``incomplete_expired``) needs a new one (``no-subscription``); one that is ``unpaid``,
    ``paused`` or ``incomplete`` is a payment matter for an operator
    (``subscription-not-live``). A free ACTIVE tenant may be without one (automatic
    downgrade)."""
    if cp.state not in ("ACTIVE", "SUSPENDED", "DELETED"):
        return []
    live = stripe is not None and stripe.status in LIVE_STATUSES
    if cp.state == "DELETED":
        return [DriftKind.DELETED_BUT_BILLED] if live else []
    if cp.state == "SUSPENDED" and not live:
        return []  # reactivation subscribes again
    if stripe is None or stripe.status in GONE_STATUSES:
        return [DriftKind.NO_SUBSCRIPTION] if cp.paid else []
    if not live:
        return [DriftKind.SUBSCRIPTION_NOT_LIVE] if cp.paid else []
    found = []
    scheduled = cp.pending_schedule_id is not None and stripe.schedule_id == cp.pending_schedule_id
    # the period ended and the schedule moved the price; the workflow's timer applies next
    moved = scheduled and stripe.price_id == cp.pending_price_id
    if stripe.price_id != cp.price_id and not moved:
        found.append(DriftKind.PRICE_DIFFERS)
    if stripe.schedule_id != cp.pending_schedule_id:
        found.append(DriftKind.SCHEDULE_DIFFERS)
    return found


class ReconcileInput(DomainModel):
    """Input of the reconciliation workflow: repair the fixable kinds (``autofix``); tenants
    read ``page_size`` at a time."""

    autofix: bool = False
    page_size: int = Field(100, ge=1, le=1000)
    actor: str = "schedule"


class BillingPageInput(DomainModel):
    """One page of the tenants with billing, ordered by id: ``offset``, ``limit``."""

    offset: int = 0
    limit: int = 100


class BillingPage(DomainModel):
    """The tenants of one page and the next page's offset (None: last page); ``limited``:
    no STRIPE_API_KEY, nothing to compare."""

    tenants: list[ControlPlaneBilling]
    next_offset: int | None
    limited: bool = False


class DriftEventInput(DomainModel):
    """Audit one drift (operation ``billing-drift``) of the reconciliation ``workflow_id``."""

    drift: Drift
    workflow_id: str
    actor: str


class AttachSubscriptionInput(DomainModel):
    """Store a subscription created by a repair on the tenant, audited."""

    tenant_id: str
    customer_id: str | None
    subscription_id: str
    workflow_id: str
    actor: str


class ReconciliationReport(BaseModel):
    """The result of one reconciliation: every drift found (and repaired, ``fix``), counts
    by kind, the tenants compared; times UTC ISO-8601. ``skipped``: limited mode."""

    workflow_id: str
    started_at: str
    finished_at: str | None = None
    autofix: bool
    skipped: bool = False
    tenants_checked: int = 0
    drifts: list[Drift] = Field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Drifts by kind (every kind, 0 included)."""
        return {k.value: sum(d.kind is k for d in self.drifts) for k in DriftKind}

    @property
    def unrepaired(self) -> int:
        """Drifts left for an operator."""
        return sum(d.fix is None for d in self.drifts)


def started_now(workflow_id: str, now: datetime, autofix: bool) -> ReconciliationReport:
    """An empty report of a run starting at ``now``."""
    return ReconciliationReport(
        workflow_id=workflow_id, started_at=now.isoformat(), autofix=autofix
    )
