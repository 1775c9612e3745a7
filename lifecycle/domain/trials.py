"""Trials: a tenant onboarded with ``trial_days`` is billed by a Stripe subscription in trial
(``trial_end``) and followed by the trial workflow (``tenant-<id>-trial``):

1. TRIAL_ENDING_NOTICE_DAYS before the end, the audit event ``trial-ending`` (outbound
   ``tenant.trial_ending``), detail ``{trial_ends_at, days_left, plan}``.
2. At the end, ``trial-ended`` with whether Stripe knows a payment method (the customer's
   ``invoice_settings.default_payment_method`` or the subscription's
   ``default_payment_method``; in limited mode none is known).
3. Without one, the plan's ``trial_end_behavior`` (plans file): ``downgrade`` to the lowest
   plan (the paid subscription cancelled), ``suspend``, or ``dunning`` (the payment-failure
   workflow with the plan's ladder, as after a failed payment, run as a child that the trial
   workflow waits for).

Pure pydantic models, importable from workflow code.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.dunning import DunningStep
from lifecycle.domain.states import TenantState


class TrialTerms(DomainModel):
    """What the onboarding of a trial needs beyond the request: its length, the notice, the
    plan's ``end_behavior`` and, for ``dunning``, the ladder and its settings."""

    days: int = Field(ge=1, le=730)
    notice_days: int = Field(3, ge=0)
    end_behavior: str = "downgrade"
    ladder: list[DunningStep] = Field(default_factory=list)
    payment_window_days: int = Field(30, ge=0)
    retention_days: int = Field(30, ge=1)


class TrialInput(DomainModel):
    """Input of the trial workflow (``tenant-<id>-trial``), started with the onboarding; the
    trial's end is the tenant row's ``trial_ends_at`` (set by onboarding)."""

    tenant_id: str
    terms: TrialTerms


class PaymentMethodInput(BaseModel):
    """Ask Stripe whether a payment method is on file for the customer or subscription."""

    tenant_id: str
    customer_id: str | None
    subscription_id: str | None


class TrialResult(BaseModel):
    """Result of the trial workflow: the tenant as it ended and what the end did
    (``paid: payment method on file``, ``downgraded to <plan>``, ``suspended``,
    ``dunning: <its outcome>``, ``no action: ...``; no state or plan when the tenant was
    never onboarded)."""

    tenant_id: str
    state: TenantState | None
    plan: str | None
    outcome: str
