"""Dunning: the ladder of steps a tenant climbs while an invoice stays unpaid.

A ladder is a list of :class:`DunningStep`, keyed by whole days since the first unpaid
invoice (``invoice.payment_failed``), declared per plan in the plans file (``dunning = [...]``)
or, for a plan without one, built from PAYMENT_FAILURE_GRACE_DAYS and ENABLE_AUTO_DOWNGRADE
(:func:`default_ladder`: suspend, or move to the lowest plan, after the grace days: the
behaviour before ladders existed). Step kinds:

- ``notify``: an audit event only (``dunning-step``, outbound ``tenant.dunning_step``);
- ``read_only``: the tenant stays ACTIVE, its entitlements carry ``read_only = 1``, data kept;
- ``suspend``: ACTIVE -> SUSPENDED, entitlements zeroed (``suspension.kind = "dunning"``);
- ``downgrade``: ACTIVE -> DOWNGRADING -> ACTIVE on ``to_plan`` (default: the lowest plan),
  the paid subscription cancelled; it ends the ladder (nothing is owed any more);
- ``cancel_and_delete``: soft delete, the retention clock starts; it ends the ladder. Never
  in a default ladder: an operator writes it into the plans file.

Paying the overdue invoices before a ladder ends returns the tenant to full service at once,
on its plan and entitlements. A ``read_only`` step stays in force across plan changes while
the tenant is in dunning (:func:`keeps_read_only`: an operator's plan change writes the new
plan's limits with ``read_only = 1``) until the payment lifts it (``payment-recovered``), or a
``downgrade`` step ends the ladder on the lower plan (:attr:`DunningUpdate.lifts_read_only`).
Pure pydantic models, importable from workflow code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lifecycle.domain.base import DomainModel

DunningKind = Literal["notify", "read_only", "suspend", "downgrade", "cancel_and_delete"]
#: Steps after which the ladder ends: the tenant no longer owes the overdue plan.
TERMINAL: frozenset[str] = frozenset({"downgrade", "cancel_and_delete"})
#: Steps that need the tenant ACTIVE when they apply.
NEEDS_ACTIVE: frozenset[str] = frozenset({"read_only", "suspend", "downgrade"})
#: Longest ladder, in days since the first unpaid invoice.
MAX_DAY = 365
#: The entitlement that marks a tenant read-only (1) during dunning.
READ_ONLY = "read_only"
#: The audit operation of a payment that ends dunning: it lifts the read-only flag.
PAYMENT_RECOVERED = "payment-recovered"


class DunningStep(BaseModel):
    """One rung: on ``day`` (days since the first unpaid invoice, 0..365) apply ``kind``;
    ``to_plan`` only for ``downgrade`` (None: the lowest plan)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: int = Field(ge=0, le=MAX_DAY)
    kind: DunningKind
    to_plan: str | None = None


def check_ladder(steps: list[DunningStep]) -> list[DunningStep]:
    """Return ``steps`` if they form a ladder, else raise ``ValueError`` saying why: days
    non-decreasing; ``to_plan`` only on ``downgrade``; a ``downgrade`` or
    ``cancel_and_delete`` only as the last step; no ``read_only`` or ``downgrade`` after a
    ``suspend`` (both need the tenant ACTIVE)."""
    suspended = False
    for i, step in enumerate(steps):
        if i and step.day < steps[i - 1].day:
            raise ValueError(f"step {i} (day {step.day}) comes before step {i - 1}'s day")
        if step.to_plan is not None and step.kind != "downgrade":
            raise ValueError(f"step {i}: to_plan is only for a downgrade step")
        if step.kind in TERMINAL and i != len(steps) - 1:
            raise ValueError(f"step {i}: {step.kind} ends the ladder, so it must be the last")
        if suspended and step.kind in NEEDS_ACTIVE - {"suspend"}:
            raise ValueError(f"step {i}: {step.kind} cannot follow a suspend step")
        suspended = suspended or step.kind == "suspend"
    return steps


def default_ladder(grace_days: int, auto_downgrade: bool) -> list[DunningStep]:
    """The ladder of a plan that declares none: after ``grace_days`` suspend, or with
    ``auto_downgrade`` move to the lowest plan (PAYMENT_FAILURE_GRACE_DAYS,
    ENABLE_AUTO_DOWNGRADE)."""
    return [DunningStep(day=grace_days, kind="downgrade" if auto_downgrade else "suspend")]


class DunningStatus(BaseModel):
    """A tenant's place on its ladder (``dunning`` of ``GET /tenants/{id}``): ``step`` the
    last applied step's kind (None before the first), ``since`` when it applied (the first
    unpaid invoice's time before), ``next_step`` and ``next_step_at`` (UTC) what comes next
    (None after the last); ``plan`` the plan the tenant was on when payment failed;
    ``read_only`` whether a ``read_only`` step has applied (it stays in force until paid)."""

    step: str | None = None
    since: datetime
    next_step: str | None = None
    next_step_at: datetime | None = None
    plan: str | None = None
    read_only: bool = False


def keeps_read_only(status: DunningStatus | None) -> bool:
    """Whether entitlements written now must carry ``read_only = 1``: the tenant is in dunning
    at or past a ``read_only`` step (a status stored before ``read_only`` existed: its last
    step was ``read_only``)."""
    return status is not None and (status.read_only or status.step == "read_only")


def with_read_only(limits: dict[str, int], status: DunningStatus | None) -> dict[str, int]:
    """``limits`` with ``read_only = 1`` added when :func:`keeps_read_only` holds."""
    return {**limits, READ_ONLY: 1} if keeps_read_only(status) else limits


def status_at(
    ladder: list[DunningStep], first_unpaid: datetime, applied: int, since: datetime, plan: str
) -> DunningStatus:
    """The :class:`DunningStatus` after the first ``applied`` steps of ``ladder`` (the last
    of them at ``since``)."""
    nxt = ladder[applied] if applied < len(ladder) else None
    return DunningStatus(
        step=ladder[applied - 1].kind if applied else None,
        since=since,
        next_step=nxt.kind if nxt else None,
        next_step_at=first_unpaid + timedelta(days=nxt.day) if nxt else None,
        plan=plan,
        read_only=any(step.kind == "read_only" for step in ladder[:applied]),
    )


class DunningUpdate(DomainModel):
    """Set (or with ``status`` None clear) a tenant's dunning status and append the audit row
    ``operation`` with ``detail`` (once per ``key``: a retried activity adds nothing)."""

    tenant_id: str
    workflow_id: str
    status: DunningStatus | None
    operation: str = "dunning-step"
    key: str
    detail: dict[str, str | int | None] = Field(default_factory=dict)

    @property
    def lifts_read_only(self) -> bool:
        """The update that ends dunning with the tenant back in service lifts ``read_only``
        from the entitlements in the same transaction: the payment (``payment-recovered``),
        or a ``downgrade`` step that ends the ladder (the tenant is on the plan it is billed
        for; a read-only cheaper plan would be neither). A ladder that ends unpaid without
        one (``dunning-ended``) leaves the flag."""
        if self.status is not None:
            return False
        return self.operation == PAYMENT_RECOVERED or (
            self.operation == "dunning-step" and self.detail.get("kind") == "downgrade"
        )
