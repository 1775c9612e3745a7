"""Outbound lifecycle events: the types the application subscribes to, which audit rows emit
them, and the models of the transactional outbox and of its deliveries (issue 17, item 5).

An event is written in the same transaction as the audit row it stems from (the outbox), with
a sequence number that grows by one per tenant; the delivery workflow POSTs it, signed, to
every endpoint that subscribes to its type (:class:`EventEndpoint`): each of
``EVENT_WEBHOOK_URLS`` takes every type, the provisioning webhook (PROVISIONING_WEBHOOK_URL)
the :data:`PROVISIONING_EVENTS`. Pure: importable from workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel


class EventType(StrEnum):
    """The public event types (a receiver switches on them)."""

    ACTIVATED = "tenant.activated"
    PLAN_CHANGED = "tenant.plan_changed"
    SUSPENDED = "tenant.suspended"
    REACTIVATED = "tenant.reactivated"
    DELETED = "tenant.deleted"
    PURGED = "tenant.purged"
    EXPORT_READY = "tenant.export_ready"
    DUNNING_STEP = "tenant.dunning_step"
    TRIAL_ENDING = "tenant.trial_ending"
    #: The entitlements changed without a state change: a plan change's provisioning step
    #: (before billing) or its undo, a dunning ``read_only`` step, read-only lifted on payment.
    ENTITLEMENTS_CHANGED = "tenant.entitlements_changed"


#: The types the provisioning webhook subscribes to: those that change what a tenant may use.
#: Their ``data`` carries ``plan`` and ``entitlements``, the limits in force after the event.
PROVISIONING_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.ACTIVATED,
        EventType.PLAN_CHANGED,
        EventType.SUSPENDED,
        EventType.REACTIVATED,
        EventType.DELETED,
        EventType.PURGED,
        EventType.ENTITLEMENTS_CHANGED,
    }
)


@dataclass(frozen=True)
class EventEndpoint:
    """A receiver of lifecycle events: its URL, the HMAC-SHA256 key that signs what it gets
    (never shown: ``repr`` leaves it out) and the event types it subscribes to (None: all).
    ``setting`` names where it is configured, for error messages."""

    url: str
    secret: str = field(repr=False)
    types: frozenset[EventType] | None = None
    setting: str = "EVENT_WEBHOOK_URLS"

    def subscribes(self, type_: str) -> bool:
        """Whether this endpoint takes events of ``type_``."""
        return self.types is None or type_ in self.types


#: Audit operations that are not state changes but emit an event of their own.
OPERATION_EVENTS = {
    "purged": EventType.PURGED,
    "dunning-step": EventType.DUNNING_STEP,
    "trial-ending": EventType.TRIAL_ENDING,
}


def event_type(
    operation: str,
    from_state: str | None,
    to_state: str | None,
    *,
    plan_changed: bool = False,
) -> EventType | None:
    """The event an audit row emits, or None for rows the application need not hear of.

    A state change into ACTIVE is ``tenant.activated`` at onboarding (no previous state),
    ``tenant.reactivated`` from SUSPENDED, REACTIVATING or DELETED, and
    ``tenant.plan_changed`` when an upgrade or downgrade committed a new plan (a saga
    compensated back to the old plan emits nothing); into SUSPENDED or DELETED it is
    ``tenant.suspended`` / ``tenant.deleted`` (a failed reactivation going back to SUSPENDED
    emits nothing: the application never heard it was reactivated). Other rows:
    :data:`OPERATION_EVENTS`.
    """
    if to_state == "ACTIVE":
        if from_state is None:
            return EventType.ACTIVATED
        if from_state in ("SUSPENDED", "REACTIVATING", "DELETED"):
            return EventType.REACTIVATED
        return EventType.PLAN_CHANGED if plan_changed else None
    if to_state == "SUSPENDED" and from_state not in ("SUSPENDED", "REACTIVATING"):
        return EventType.SUSPENDED
    if to_state == "DELETED" and from_state != "DELETED":
        return EventType.DELETED
    if to_state is None:
        return OPERATION_EVENTS.get(operation)
    return None


DeliveryStatus = Literal["pending", "delivered", "failed"]


class OutboundEventView(BaseModel):
    """One event of the outbox: ``sequence`` grows by one per tenant from 1; ``data`` holds
    the audit row's operation, states, workflow id and details."""

    event_id: int
    type: str
    tenant_id: str
    sequence: int
    occurred_at: datetime
    data: dict[str, Any]

    def body(self, sent_at: int) -> dict[str, Any]:
        """The JSON body POSTed to a receiver; ``sent_at`` (unix seconds) is also the
        ``X-Lifecycle-Timestamp`` header, so the signature covers it."""
        return {
            "id": self.event_id,
            "type": self.type,
            "tenant_id": self.tenant_id,
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
            "sent_at": sent_at,
        }


class DeliveryView(BaseModel):
    """The delivery of one event to one endpoint (``endpoint`` is its URL with userinfo and
    query redacted); ``attempts`` counts the POSTs made, ``last_error`` the latest failure."""

    delivery_id: int
    event_id: int
    event_type: str
    tenant_id: str
    sequence: int
    endpoint: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    updated_at: datetime


class EventDeliveryInput(BaseModel):
    """Input of ``EventDeliveryWorkflow``: deliver outbox event ``event_id`` of ``tenant_id``
    to every configured endpoint that has not had it yet, each retried with back-off for
    ``retry_days`` (EVENT_DELIVERY_RETRY_DAYS)."""

    event_id: int
    tenant_id: str
    retry_days: float = 3.0


class DeliveryOutcome(BaseModel):
    """Result of ``EventDeliveryWorkflow``: delivery ids delivered and failed (after the
    3 days of retries)."""

    event_id: int
    delivered: list[int] = []
    failed: list[int] = []


class DeliveryFailure(BaseModel):
    """Mark delivery ``delivery_id`` failed with ``error`` (retries exhausted)."""

    delivery_id: int
    error: str


class RedeliveryStarted(BaseModel):
    """The answer of ``POST /events/{id}/redeliver``: the deliveries put back to pending and
    the delivery workflow started for them."""

    event_id: int
    workflow_id: str
    deliveries: list[int]
