"""Billing events: Stripe webhook events (signature check with the official ``stripe`` SDK,
each event id processed once), failed payments and their settlement.

``invoice.payment_failed`` starts the tenant's dunning ladder (the payment-failure workflow,
with its plan's ladder); a later failure while it runs adds that invoice to the overdue ones
(signal ``invoice_failed``). It ends only by the payment of the overdue invoices
(``invoice.paid``), or by the subscription turning ``active`` with no invoice left open
(``invoice.paid`` of another invoice, or ``customer.subscription.updated``; checked with
Stripe). Each payment event re-evaluates the ladder. Other event types are acknowledged and
recorded, nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import stripe
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.billing import make_stripe_client
from lifecycle.client.base import Service, not_found
from lifecycle.domain.billing_events import (
    MAX_EVENT_FIELD,
    InvoiceFailed,
    InvoicePaid,
    PaymentFailureInput,
    StripeEventEnvelope,
    StripeEventOutcome,
    settles,
)
from lifecycle.domain.errors import StateConflict
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.domain.text import printable
from lifecycle.persistence.tables import WebhookEvent, utcnow

#: Seconds a signed timestamp stays acceptable (Stripe's default): older ones are replays.
SIGNATURE_TOLERANCE = 300
HANDLED = ("invoice.payment_failed", "invoice.paid", "customer.subscription.updated")


def verify_event(payload: bytes, signature: str | None, secret: str) -> stripe.Event:
    """Parse ``payload`` after checking its ``Stripe-Signature`` header (HMAC-SHA256 of
    ``"<t>.<payload>"`` under the endpoint secret, timestamp within 300 s).

    Raises ``stripe.SignatureVerificationError`` (bad, missing or stale signature) or
    ``ValueError`` naming what is wrong (not UTF-8 JSON, not an object, ``id`` or ``type``
    not a printable string of 1..255 or 1..128 characters, ``data.object`` not an object).
    """
    if signature is not None and not signature.isascii():
        # Signatures are hex; the SDK would compare non-ASCII text with compare_digest (a
        # TypeError), so refuse it here as the bad signature it is.
        raise stripe.SignatureVerificationError(
            "the Stripe-Signature header is not ASCII", signature, None
        )
    stripe.WebhookSignature.verify_header(
        payload, signature or "", secret, tolerance=SIGNATURE_TOLERANCE
    )
    try:
        values = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not UTF-8 JSON ({exc})") from exc
    if not isinstance(values, dict):
        raise ValueError(f"an event is a JSON object, not {type(values).__name__}")
    try:
        StripeEventEnvelope.model_validate(values)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from exc
    return stripe.Event.construct_from(values, None)


def _identifier(value: object) -> str | None:
    """``value`` if it is a printable string of 1..255 characters (a Stripe object id),
    else None: such a value cannot name anything of ours."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_EVENT_FIELD:
        return None
    try:
        return printable(value)
    except ValueError:
        return None


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription id of an invoice: ``subscription`` (API before 2025-03-31) or
    ``parent.subscription_details.subscription`` (since)."""
    sub = invoice.get("subscription")
    if not sub:
        parent = invoice.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, dict) else None
        sub = details.get("subscription") if isinstance(details, dict) else None
    if isinstance(sub, dict):
        sub = sub.get("id")
    return _identifier(sub)


class BillingEventService(Service):
    """Processes Stripe events and starts or settles payment-failure workflows."""

    async def payment_failed(self, tenant_id: str, invoice_id: str | None, event_id: str) -> str:
        """Start the dunning ladder of the tenant's plan (the plans file's, or the default of
        PAYMENT_FAILURE_GRACE_DAYS and ENABLE_AUTO_DOWNGRADE); while one runs, add
        ``invoice_id`` to its overdue invoices. Returns what was done."""
        from workflows.suspension import PaymentFailureWorkflow

        settings = self.core.settings
        tenant = await self.core.repository.get(tenant_id)
        data = PaymentFailureInput(
            tenant_id=tenant_id,
            invoice_id=invoice_id,
            event_id=event_id,
            grace_days=settings.payment_failure_grace_days,
            auto_downgrade=settings.enable_auto_downgrade,
            ladder=settings.plans.dunning_ladder(
                tenant.plan, settings.payment_failure_grace_days, settings.enable_auto_downgrade
            ),
            payment_window_days=settings.dunning_payment_window_days,
            retention_days=settings.soft_delete_retention_days,
        )
        try:
            started = await self.core.start(
                PaymentFailureWorkflow.run,
                data,
                tenant_id=tenant_id,
                kind=OperationKind.PAYMENT_FAILURE,
            )
        except StateConflict:
            handle = self.core.handle(workflow_id(tenant_id, OperationKind.PAYMENT_FAILURE))
            failed = InvoiceFailed(invoice_id=invoice_id, event_id=event_id)
            try:
                await handle.signal(PaymentFailureWorkflow.invoice_failed, failed)
            except RPCError as exc:
                if not not_found(exc):
                    raise
            return f"dunning goes on: invoice {invoice_id} is overdue too ({handle.id})"
        steps = ", ".join(f"{s.kind} on day {s.day}" for s in data.ladder) or "none"
        return f"dunning started: {steps} ({started.workflow_id})"

    async def invoice_paid(
        self,
        tenant_id: str,
        invoice_id: str | None,
        event_id: str,
        subscription_id: str | None = None,
    ) -> str:
        """Cancel a pending payment-failure suspension when ``invoice_id`` is the failed
        invoice, or the subscription is ``active`` with nothing open in Stripe; returns what
        was done (an unrelated payment is answered ``ignored: ...``)."""
        from workflows.suspension import PaymentFailureWorkflow

        handle = self.core.handle(workflow_id(tenant_id, OperationKind.PAYMENT_FAILURE))
        try:
            progress = await handle.query(PaymentFailureWorkflow.progress)
        except RPCError as exc:
            if not not_found(exc):
                raise
            return "no payment failure pending"
        except WorkflowQueryFailedError:
            return "no payment failure pending"
        paid = InvoicePaid(invoice_id=invoice_id, event_id=event_id)
        if not settles(paid, progress.invoice_id) and invoice_id not in progress.open_invoices:
            paid.subscription_settled = await self.subscription_settled(subscription_id)
            if not paid.subscription_settled:
                return (
                    f"ignored: invoice {invoice_id} is not the failed invoice "
                    f"{progress.invoice_id}, which is still open"
                )
        try:
            await handle.signal(PaymentFailureWorkflow.invoice_paid, paid)
        except RPCError as exc:
            if not not_found(exc):
                raise
            return "no payment failure pending"
        return f"pending suspension cancelled ({handle.id})"

    async def subscription_settled(self, subscription_id: str | None) -> bool:
        """Whether Stripe reports ``subscription_id`` ``active`` with no open invoice (False
        in limited mode: nothing to ask). Raises ``stripe.StripeError`` (the webhook then
        answers 5xx and Stripe redelivers it)."""
        settings = self.core.settings
        key = settings.stripe_api_key
        client = make_stripe_client(
            key.get_secret_value() if key else None, settings.stripe_api_base
        )
        if client is None or subscription_id is None:
            return False
        sub = await client.v1.subscriptions.retrieve_async(subscription_id)
        if sub.status != "active":
            return False
        open_invoices = await client.v1.invoices.list_async(
            params={"subscription": subscription_id, "status": "open", "limit": 1}
        )
        return not open_invoices.data

    async def handle_stripe_event(self, event: stripe.Event) -> StripeEventOutcome:
        """Process a verified event once per event id (table ``webhook_events``).

        The event's row is inserted first and committed only after processing: a failure rolls
        it back so Stripe's retry processes it again; a concurrent or later duplicate finds the
        row and is acknowledged without effect (``duplicate: true``).
        """
        answer = StripeEventOutcome(event_id=event.id, type=event.type)
        sessions = self.core.repository.sessions
        async with sessions() as session:
            if await session.get(WebhookEvent, event.id) is not None:
                return answer.model_copy(update={"duplicate": True})
        tenant_id, outcome = await self._tenant_of(event)
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
                    outcome = await self._act(event, tenant_id)
                    await session.execute(
                        update(WebhookEvent)
                        .where(WebhookEvent.event_id == event.id)
                        .values(outcome=outcome)
                    )
        except IntegrityError:
            return answer.model_copy(update={"duplicate": True})
        return answer.model_copy(update={"tenant_id": tenant_id, "outcome": outcome})

    async def _tenant_of(self, event: stripe.Event) -> tuple[str | None, str | None]:
        """The tenant an invoice event is about, or None and why the event is ignored."""
        if event.type not in HANDLED:
            return None, f"ignored: {event.type} is not handled"
        obj = event.data.object.to_dict()
        if event.type == "customer.subscription.updated":
            subscription = obj.get("id")
        else:
            subscription = invoice_subscription(obj)
        if subscription is None:
            return None, "ignored: the invoice has no subscription"
        tenant = await self.core.repository.tenant_by_subscription(subscription)
        if tenant is None:
            return None, f"ignored: no tenant has subscription {subscription}"
        return tenant.tenant_id, None

    async def _act(self, event: stripe.Event, tenant_id: str) -> str:
        obj = event.data.object.to_dict()
        if event.type == "customer.subscription.updated":
            if obj.get("status") != "active":
                return f"ignored: subscription is {obj.get('status')}"
            return await self.invoice_paid(tenant_id, None, event.id, obj.get("id"))
        invoice_id = _identifier(obj.get("id"))
        if event.type == "invoice.payment_failed":
            return await self.payment_failed(tenant_id, invoice_id, event.id)
        return await self.invoice_paid(tenant_id, invoice_id, event.id, invoice_subscription(obj))
