"""Plan changes (upgrade, downgrade) and usage: typed inputs and the checks made before any
workflow starts. Pure: importable from workflow code.

Rules (docs/architecture.md, "Operations"): an upgrade targets a plan strictly above the
current one; a downgrade one strictly below, and is refused while current usage exceeds any
target limit; the plans file's change rules refuse ``not_allowed`` pairs and say whether a
change applies now or at the period's end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.billing import BillingResult
from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.plans import RESOURCES, ChangeRule, Plan, PlanCatalog, UsageViolation
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OperationProgress
from lifecycle.domain.text import Printable

Effective = Literal["period_end", "immediately"]

#: Largest usage amount accepted per resource (a count or GB): far above any real tenant,
#: and exact in every JSON reader (below 2**53).
MAX_USAGE_AMOUNT = 10**12
ProrationBehavior = Literal["create_prorations", "always_invoice", "none"]


class UpgradeRequest(DomainModel):
    """Body of ``POST /tenants/{id}/upgrade``."""

    to_plan: Printable = Field(max_length=64)


class DowngradeRequest(DomainModel):
    """Body of ``POST /tenants/{id}/downgrade``: at the billing period's end (no proration)
    or immediately (with a proration credit); without ``effective``, as the plans file's
    change rule for the pair says."""

    to_plan: Printable = Field(max_length=64)
    effective: Effective | None = Field(
        None,
        description="when it applies; default: the plans file's rule for the pair "
        "(end_of_period unless the operator changed it)",
    )


class PlanChangeInput(DomainModel):
    """Input of the upgrade and downgrade workflows, resolved from the plan catalogue.

    ``proration_behavior`` is the Stripe setting for a change made now (PRORATION_BEHAVIOR);
    a downgrade at period end always bills without proration.
    """

    tenant_id: str
    from_plan: str
    to_plan: str
    limits: dict[str, int]
    price_id: str
    previous_price_id: str
    effective: Effective = "immediately"
    proration_behavior: ProrationBehavior = "create_prorations"
    actor: str = "api"


class CancelDowngrade(DomainModel):
    """Payload of the downgrade workflow's ``cancel_downgrade`` signal."""

    actor: str = "api"
    reason: str = "cancelled on request"


class UsageExceedsLimits(InvalidInput):
    """Current usage exceeds the target plan's limits; ``violations`` names each resource."""

    def __init__(self, tenant_id: str, to_plan: str, violations: list[UsageViolation]) -> None:
        listed = ", ".join(str(v) for v in violations)
        super().__init__(
            f"tenant '{tenant_id}' uses more than plan '{to_plan}' allows: {listed}; reduce "
            "usage before downgrading"
        )
        self.violations = violations


class PlanChangeNotAllowed(InvalidInput):
    """The plans file's change rules say ``not_allowed`` for this (from, to) pair (422 on
    ``to_plan``)."""

    def __init__(self, tenant_id: str, from_plan: str, to_plan: str) -> None:
        super().__init__(
            f"to_plan: tenant '{tenant_id}' cannot change from plan '{from_plan}' to "
            f"'{to_plan}': the plans file's rule [changes.{from_plan}] {to_plan} is not_allowed"
        )


def require_allowed(catalog: PlanCatalog, tenant_id: str, current: str, target: str) -> ChangeRule:
    """The rule of moving ``tenant_id`` from plan ``current`` to ``target``; raises
    :class:`PlanChangeNotAllowed` when it is ``not_allowed`` and InvalidInput for an unknown
    plan."""
    rule = catalog.rule(current, target)
    if rule == "not_allowed":
        raise PlanChangeNotAllowed(tenant_id, current, target)
    return rule


class EntitlementChange(BaseModel):
    """One resource's limit now and on the target plan (-1 unlimited)."""

    resource: str
    current: int
    target: int
    change: Literal["more", "less", "same"]


def entitlement_diff(current: dict[str, int], target: dict[str, int]) -> list[EntitlementChange]:
    """Per resource of either side, the current and target limits and which way it moves
    (unlimited counts as the most; a resource missing on a side counts as 0)."""

    def rank(limit: int) -> float:
        return float("inf") if limit == -1 else limit

    out = []
    for resource in sorted(set(current) | set(target)):
        now, then = current.get(resource, 0), target.get(resource, 0)
        change: Literal["more", "less", "same"] = (
            "same" if rank(now) == rank(then) else "more" if rank(then) > rank(now) else "less"
        )
        out.append(EntitlementChange(resource=resource, current=now, target=then, change=change))
    return out


class ProrationLine(BaseModel):
    """A line of Stripe's invoice preview: amount in cents (negative = credit)."""

    description: str
    amount_cents: int
    proration: bool


class ProrationPreview(BaseModel):
    """The prorated amount of a plan change from Stripe's invoice preview
    (``POST /v1/invoices/create_preview``): ``amount_cents`` is the sum of the proration lines
    (negative = a credit), ``next_invoice_cents`` the preview invoice's total. Without billing
    (limited mode, no subscription, Stripe failing) ``available`` is false and ``reason``
    says why; no amount is made up."""

    available: bool
    proration_behavior: str
    reason: str | None = None
    currency: str | None = None
    amount_cents: int | None = None
    next_invoice_cents: int | None = None
    lines: list[ProrationLine] = Field(default_factory=list)


class PlanChangePreview(BaseModel):
    """Answer of ``GET /tenants/{id}/plan-change-preview?to_plan=``: the plans file's rule,
    the usage check, the entitlement diff and Stripe's proration; starts nothing.

    ``allowed`` is false when the rule is ``not_allowed``, the tenant is not ACTIVE, or (a
    downgrade) usage exceeds a target limit; ``reasons`` says which. ``effective`` is when
    the change would apply by the rule (None when not allowed by it).
    """

    tenant_id: str
    from_plan: str
    to_plan: str
    direction: Literal["upgrade", "downgrade"]
    rule: ChangeRule
    effective: Effective | None
    allowed: bool
    reasons: list[str]
    usage: dict[str, int]
    limits: dict[str, int]
    violations: list[UsageViolation]
    entitlements: list[EntitlementChange]
    proration: ProrationPreview


class DowngradePreview(BaseModel):
    """Answer of ``GET /tenants/{id}/downgrade-preview``: would the downgrade be accepted?"""

    tenant_id: str
    from_plan: str
    to_plan: str
    allowed: bool
    usage: dict[str, int]
    limits: dict[str, int]
    violations: list[UsageViolation]


class UsageView(BaseModel):
    """Recorded usage of a tenant and the resources over its current entitlements."""

    tenant_id: str
    usage: dict[str, int]
    entitlements: dict[str, int]
    over_limit: list[UsageViolation]


class PendingChangeInput(DomainModel):
    """Set (``change``) or clear (``change=None``) a tenant's pending plan change, audited.

    Setting needs the tenant ACTIVE on ``change["from_plan"]``; clearing only clears a pending
    change of ``workflow_id`` (anything else is "nothing to undo"). ``key`` makes a retried
    call write its audit row once.
    """

    tenant_id: str
    change: dict[str, Any] | None
    workflow_id: str
    operation: str
    actor: str = "system"
    reason: str | None = None
    key: str


class StepEventInput(DomainModel):
    """An audit row for a saga step that is not a state change; written once per ``key``."""

    tenant_id: str
    operation: str
    workflow_id: str
    actor: str = "system"
    key: str
    detail: dict[str, Any] = Field(default_factory=dict)


def check_usage_update(usage: dict[str, int]) -> dict[str, int]:
    """Return ``usage`` if every resource is known and every amount lies in
    0..MAX_USAGE_AMOUNT, else InvalidInput naming the offending resources."""
    if not usage:
        raise InvalidInput(f"name at least one resource: {', '.join(RESOURCES)}")
    unknown = sorted(set(usage) - set(RESOURCES))
    if unknown:
        raise InvalidInput(
            f"unknown resource(s) {', '.join(unknown)}; known resources: {', '.join(RESOURCES)}"
        )
    negative = sorted(r for r, v in usage.items() if v < 0)
    if negative:
        raise InvalidInput(f"usage must be >= 0: {', '.join(f'{r}={usage[r]}' for r in negative)}")
    huge = sorted(r for r, v in usage.items() if v > MAX_USAGE_AMOUNT)
    if huge:
        raise InvalidInput(
            f"usage must be <= {MAX_USAGE_AMOUNT}: {', '.join(f'{r}={usage[r]}' for r in huge)}"
        )
    return usage


def require_active(tenant_id: str, state: TenantState, operation: str) -> None:
    """Raise StateConflict naming the current state unless the tenant is ACTIVE."""
    if state is not TenantState.ACTIVE:
        raise StateConflict(f"tenant '{tenant_id}' is {state.value}; {operation} needs ACTIVE")


def plan_change_input(
    catalog: PlanCatalog,
    tenant_id: str,
    current: str,
    target: Plan,
    **fields: Any,
) -> PlanChangeInput:
    """The workflow input for moving ``tenant_id`` from plan ``current`` to ``target``."""
    return PlanChangeInput(
        tenant_id=tenant_id,
        from_plan=current,
        to_plan=target.name,
        limits=target.limits.as_dict(),
        price_id=target.price_id,
        previous_price_id=catalog.get(current).price_id,
        **fields,
    )


def pending_change(
    data: PlanChangeInput,
    workflow_id: str,
    effective_at: datetime,
    schedule_id: str | None = None,
) -> dict[str, Any]:
    """The ``pending_plan_change`` shown on the tenant while a downgrade waits; with the
    Stripe subscription schedule that bills it (``schedule_id``) when there is one."""
    change = {
        "operation": "downgrade",
        "from_plan": data.from_plan,
        "to_plan": data.to_plan,
        "effective_at": effective_at.isoformat(),
        "workflow_id": workflow_id,
        "requested_by": data.actor,
    }
    return change | ({"schedule_id": schedule_id} if schedule_id else {})


class DowngradeStarted(OperationStarted):
    """The 202 answer of a downgrade: when it takes effect."""

    effective: Effective


class DowngradeCancelRequested(BaseModel):
    """The 202 answer of cancelling a pending downgrade (a signal to its workflow)."""

    workflow_id: str
    tenant_id: str
    status: str = "cancel requested"


# -- activity and workflow results ----------------------------------------------------------


class ProvisionResult(BaseModel):
    """Result of the ``provision_entitlements`` activity: the limits now in force.
    ``webhook_status`` is kept for the histories of executions from before the provisioning
    webhook became an event subscriber (it was the webhook's HTTP status); now always None."""

    entitlements: dict[str, int]
    webhook_status: int | None = None


class PlanChangeResult(BaseModel):
    """Result of an applied upgrade (and base of a downgrade's): the tenant ACTIVE on
    ``plan`` with its entitlements; ``applied_at`` is the workflow's time in ISO 8601."""

    outcome: Literal["changed"] = "changed"
    tenant_id: str
    state: TenantState
    from_plan: str
    plan: str
    entitlements: dict[str, int]
    billing: BillingResult
    applied_at: str


class DowngradeResult(PlanChangeResult):
    """Result of an applied downgrade: when it was asked to take effect, and (period end)
    when the period ended, ISO 8601."""

    effective: Effective
    effective_at: str | None = None


class DowngradeCancelled(BaseModel):
    """Result of a downgrade cancelled while it waited for the period end."""

    outcome: Literal["cancelled"] = "cancelled"
    tenant_id: str
    plan: str
    to_plan: str
    effective_at: str | None = None
    cancelled_by: str
    reason: str


class StepCause(BaseModel):
    """What made a saga step fail: the activity error's type (e.g. ``CardDeclined``) and
    message."""

    type: str
    message: str


class Compensation(BaseModel):
    """One undo run after a failed plan change, and its outcome."""

    step: str
    outcome: str


#: Prefix of the reason the client gives a plan change's cancellation: the workflow reads the
#: actor back from ``workflow.cancellation_reason()`` for the audit row.
CANCELLED_BY = "cancelled by "


def cancel_reason(actor: str, reason: str = "on request") -> str:
    """The Temporal cancellation reason naming ``actor``: ``"cancelled by <actor>: <reason>"``."""
    return f"{CANCELLED_BY}{actor}: {reason}"


def cancelling_actor(reason: str | None) -> str:
    """The actor named by a cancellation reason (:func:`cancel_reason`); a cancel without one
    (the Web UI, ``temporal workflow cancel``) is ``"temporal"``."""
    if reason and reason.startswith(CANCELLED_BY):
        return reason[len(CANCELLED_BY) :].split(":", 1)[0].strip() or "temporal"
    return "temporal"


class PlanChangeCompensated(BaseModel):
    """A failed plan change, compensated: the tenant back ACTIVE on its previous plan. The
    operation's recorded result and the details of its ``ApplicationError``."""

    outcome: Literal["compensated"] = "compensated"
    tenant_id: str
    state: TenantState
    plan: str
    failed_step: str
    failure: str
    cause: StepCause
    compensations: list[Compensation]
    cancelled_by: str | None = Field(default=None, exclude_if=lambda v: v is None)


class DowngradeProgress(OperationProgress):
    """The downgrade's ``progress``: target plan, and when it takes effect (ISO 8601, once
    known)."""

    to_plan: str
    effective: Effective
    effective_at: str | None = None
