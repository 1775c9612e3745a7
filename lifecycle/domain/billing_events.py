"""Typed inputs of billing events: a failed payment (Stripe ``invoice.payment_failed``) and
its settlement (``invoice.paid``).

Pure pydantic models, importable from workflow code.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.dunning import DunningStatus, DunningStep
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OperationProgress
from lifecycle.domain.text import Printable

#: Longest event id and type accepted (Stripe's are about 30 characters; the columns of
#: ``webhook_events`` hold 255 and 128).
MAX_EVENT_FIELD, MAX_EVENT_TYPE = 255, 128


class StripeEventData(BaseModel):
    """``data`` of a Stripe event: ``object`` is the resource the event is about."""

    model_config = ConfigDict(extra="allow", strict=True)

    object: dict[str, Any]


class StripeEventEnvelope(BaseModel):
    """The fields of a Stripe event this product reads, checked before anything is stored:
    ``id`` (1..255) and ``type`` (1..128) printable strings, ``data.object`` an object."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: Printable = Field(min_length=1, max_length=MAX_EVENT_FIELD)
    type: Printable = Field(min_length=1, max_length=MAX_EVENT_TYPE)
    data: StripeEventData


class PaymentFailureInput(DomainModel):
    """Input of the payment-failure workflow (``tenant-<id>-payment-failure``).

    It climbs ``ladder`` (the tenant's plan's dunning ladder, resolved when the payment
    failed) until the overdue invoices are paid; after the last step that does not end the
    ladder it still waits ``payment_window_days`` for a payment that restores the tenant.
    ``retention_days``: the soft delete's retention of a ``cancel_and_delete`` step.
    Executions started before ladders (``grace_days``, ``auto_downgrade``) suspend, or move to
    the lowest plan, after ``grace_days``.
    """

    tenant_id: str
    invoice_id: str | None
    event_id: str
    grace_days: int = Field(ge=0)
    auto_downgrade: bool = False
    ladder: list[DunningStep] = Field(default_factory=list)
    payment_window_days: int = Field(30, ge=0)
    retention_days: int = Field(30, ge=1)


class InvoiceFailed(BaseModel):
    """Argument of the payment-failure workflow's ``invoice_failed`` signal: another invoice
    failed while the tenant is in dunning; it must be paid too."""

    invoice_id: str | None = None
    event_id: str | None = None


class InvoicePaid(BaseModel):
    """Argument of the payment-failure workflow's ``invoice_paid`` signal.

    It cancels the pending suspension only when ``invoice_id`` is the failed invoice, or when
    ``subscription_settled``: Stripe reports the subscription ``active`` with no invoice left
    open (issue 12, defect 6).
    """

    invoice_id: str | None = None
    event_id: str | None = None
    subscription_settled: bool = False


def settles(paid: InvoicePaid, failed_invoice: str | None) -> bool:
    """Whether ``paid`` cancels the suspension pending for ``failed_invoice`` (None: the
    failed invoice is unknown, any payment settles it)."""
    return paid.subscription_settled or failed_invoice is None or paid.invoice_id == failed_invoice


class StripeEventOutcome(BaseModel):
    """The answer to a Stripe webhook: what was done with the event (``duplicate`` when its
    id was processed before; ``outcome`` says what happened, or why it was ignored)."""

    received: bool = True
    event_id: str
    type: str
    duplicate: bool = False
    tenant_id: str | None = None
    outcome: str | None = None


class PaymentFailureResult(BaseModel):
    """Result of the payment-failure workflow; ``outcome`` says what happened (``recovered``,
    ``suspended``, ``downgraded to <plan>``, ``no action: tenant is <state>``)."""

    tenant_id: str
    state: TenantState
    plan: str
    outcome: str


class PaymentFailureProgress(OperationProgress):
    """The payment-failure workflow's ``progress``: whether the invoice was paid meanwhile,
    and which invoice failed."""

    paid: bool
    invoice_id: str | None = None
    open_invoices: list[str] = Field(default_factory=list)
    dunning: DunningStatus | None = None
