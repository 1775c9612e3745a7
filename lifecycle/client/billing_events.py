"""Stripe webhook events: signature check (official ``stripe`` SDK) and processing, each
event id once.

``invoice.payment_failed`` starts the tenant's payment-failure grace period;
``invoice.paid`` cancels it. Other event types are acknowledged and recorded, nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import stripe
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from lifecycle.persistence.deletion import DeletionRepository
from lifecycle.persistence.tables import WebhookEvent, utcnow

if TYPE_CHECKING:
    from lifecycle.client.lifecycle import LifecycleClient

#: Seconds a signed timestamp stays acceptable (Stripe's default): older ones are replays.
SIGNATURE_TOLERANCE = 300
HANDLED = ("invoice.payment_failed", "invoice.paid")


def verify_event(payload: bytes, signature: str | None, secret: str) -> stripe.Event:
    """Parse ``payload`` after checking its ``Stripe-Signature`` header (HMAC-SHA256 of
    ``"<t>.<payload>"`` under the endpoint secret, timestamp within 300 s).

    Raises ``stripe.SignatureVerificationError`` (bad, missing or stale signature) or
    ``ValueError`` (not JSON).
    """
    return stripe.Webhook.construct_event(
        payload, signature or "", secret, tolerance=SIGNATURE_TOLERANCE
    )


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription id of an invoice: ``subscription`` (API before 2025-03-31) or
    ``parent.subscription_details.subscription`` (since)."""
    sub = invoice.get("subscription")
    if not sub:
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        sub = details.get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    return sub or None


async def handle_stripe_event(lc: LifecycleClient, event: stripe.Event) -> dict[str, Any]:
    """Process a verified event once per event id (table ``webhook_events``).

    The event's row is inserted first and committed only after processing: a failure rolls
    it back so Stripe's retry processes it again; a concurrent or later duplicate finds the
    row and is acknowledged without effect (``duplicate: true``).
    """
    answer: dict[str, Any] = {"received": True, "event_id": event.id, "type": event.type}
    sessions = lc.repository.sessions
    async with sessions() as session:
        if await session.get(WebhookEvent, event.id) is not None:
            return {**answer, "duplicate": True}
    tenant_id, outcome = await _tenant_of(lc, event)
    try:
        async with sessions.begin() as session:
            session.add(
                WebhookEvent(
                    event_id=event.id,
                    type=event.type,
                    tenant_id=tenant_id,
                    outcome=outcome or "processing",
                    received_at=utcnow(),
                )
            )
            await session.flush()  # the claim: a duplicate fails here
            if tenant_id is not None:
                outcome = await _act(lc, event, tenant_id)
                await session.execute(
                    update(WebhookEvent)
                    .where(WebhookEvent.event_id == event.id)
                    .values(outcome=outcome)
                )
    except IntegrityError:
        return {**answer, "duplicate": True}
    return {**answer, "duplicate": False, "tenant_id": tenant_id, "outcome": outcome}


async def _tenant_of(lc: LifecycleClient, event: stripe.Event) -> tuple[str | None, str | None]:
    """The tenant an invoice event is about, or None and why the event is ignored."""
    if event.type not in HANDLED:
        return None, f"ignored: {event.type} is not handled"
    subscription = invoice_subscription(event.data.object.to_dict())
    if subscription is None:
        return None, "ignored: the invoice has no subscription"
    tenant = await DeletionRepository(lc.repository.sessions).tenant_by_subscription(subscription)
    if tenant is None:
        return None, f"ignored: no tenant has subscription {subscription}"
    return tenant.tenant_id, None


async def _act(lc: LifecycleClient, event: stripe.Event, tenant_id: str) -> str:
    invoice_id = event.data.object.to_dict().get("id")
    if event.type == "invoice.payment_failed":
        return await lc.payment_failed(tenant_id, invoice_id, event.id)
    return await lc.invoice_paid(tenant_id, invoice_id, event.id)
