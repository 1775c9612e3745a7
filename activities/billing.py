"""Billing activities on Stripe (official ``stripe`` SDK, async client).

Every mutating call carries an idempotency key derived from the workflow id and the step,
never from the attempt, so a retried activity can never bill twice. In limited mode (no
STRIPE_API_KEY) every step logs a warning and returns ``skipped: true``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from lifecycle.models import BillingResult


class StartSubscriptionInput(BaseModel):
    """Create a customer and a subscription to ``price_id`` for a new tenant."""

    tenant_id: str
    name: str
    email: str
    price_id: str
    workflow_id: str


class CancelSubscriptionInput(BaseModel):
    """Cancel a subscription at once, without proration or a final invoice."""

    tenant_id: str
    subscription_id: str | None
    workflow_id: str
    step: str = "cancel-subscription"


class ResumeSubscriptionInput(BaseModel):
    """Bill a reactivated tenant on ``price_id``: keep its live subscription (moved to the
    price without proration) or create one, and the customer when it has none."""

    tenant_id: str
    name: str | None
    email: str | None
    customer_id: str | None
    subscription_id: str | None
    price_id: str
    workflow_id: str


class DeleteCustomerInput(BaseModel):
    """Delete the billing customer of a purged tenant (GDPR Art. 17)."""

    tenant_id: str
    customer_id: str | None
    workflow_id: str


def _period_end(subscription: Any) -> datetime | None:
    """Current period end of a subscription (on its first item since API 2025-03-31)."""
    if isinstance(subscription, stripe.StripeObject):  # not a dict since stripe 13
        subscription = subscription.to_dict()
    items = subscription.get("items") or {}
    data = items.get("data") or []
    ts = (data[0].get("current_period_end") if data else None) or subscription.get(
        "current_period_end"
    )
    return datetime.fromtimestamp(int(ts), UTC) if ts else None


def billing_error(exc: stripe.StripeError) -> ApplicationError:
    """Map a Stripe error to an ApplicationError: declines and invalid requests are final."""
    if isinstance(exc, stripe.CardError):
        return ApplicationError(
            f"card declined: {exc.user_message or exc}", type="CardDeclined", non_retryable=True
        )
    if isinstance(exc, stripe.IdempotencyError):
        return ApplicationError(str(exc), type="IdempotencyError", non_retryable=True)
    if isinstance(exc, stripe.InvalidRequestError | stripe.AuthenticationError):
        return ApplicationError(
            f"billing rejected the request: {exc.user_message or exc}",
            type="InvalidBillingRequest",
            non_retryable=True,
        )
    return ApplicationError(f"billing unavailable: {exc}", type="BillingUnavailable")


class BillingActivities:
    """Stripe calls of the lifecycle; ``client`` is None in limited mode."""

    def __init__(self, client: stripe.StripeClient | None) -> None:
        self.client = client

    def _skip(self, step: str, tenant_id: str) -> BillingResult | None:
        if self.client is not None:
            return None
        activity.logger.warning(
            "billing in limited mode (no STRIPE_API_KEY): %s skipped for tenant %s",
            step,
            tenant_id,
        )
        return BillingResult(skipped=True, detail={"step": step})

    @activity.defn
    async def start_subscription(self, data: StartSubscriptionInput) -> BillingResult:
        """Create the customer, then the subscription; both with step idempotency keys."""
        if skipped := self._skip("start-subscription", data.tenant_id):
            return skipped
        assert self.client is not None
        try:
            customer = await self.client.v1.customers.create_async(
                params={
                    "name": data.name,
                    "email": data.email,
                    "metadata": {"tenant_id": data.tenant_id},
                },
                options={"idempotency_key": f"{data.workflow_id}:customer"},
            )
            subscription = await self.client.v1.subscriptions.create_async(
                params={
                    "customer": customer.id,
                    "items": [{"price": data.price_id}],
                    "metadata": {"tenant_id": data.tenant_id},
                },
                options={"idempotency_key": f"{data.workflow_id}:subscription"},
            )
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(
            customer_id=customer.id,
            subscription_id=subscription.id,
            period_end=_period_end(subscription),
        )

    @activity.defn
    async def cancel_subscription(self, data: CancelSubscriptionInput) -> BillingResult:
        """Cancel at once without proration; an already-cancelled or missing one is fine."""
        if skipped := self._skip(data.step, data.tenant_id):
            return skipped
        if not data.subscription_id:
            return BillingResult(detail={"step": data.step, "nothing_to_cancel": True})
        assert self.client is not None
        try:
            sub = await self.client.v1.subscriptions.cancel_async(
                data.subscription_id,
                params={"prorate": False, "invoice_now": False},
                options={"idempotency_key": f"{data.workflow_id}:{data.step}"},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return BillingResult(detail={"step": data.step, "nothing_to_cancel": True})
            raise billing_error(exc) from exc
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(subscription_id=sub.id, detail={"status": sub.status})

    @activity.defn
    async def resume_subscription(self, data: ResumeSubscriptionInput) -> BillingResult:
        """Keep the subscription when it is still live (changing its price without proration
        if needed), else create a new one (and the customer if missing); idempotency keys
        from the workflow id. A cancelled Stripe subscription cannot be restarted."""
        if skipped := self._skip("resume-subscription", data.tenant_id):
            return skipped
        assert self.client is not None
        subs, key = self.client.v1.subscriptions, data.workflow_id
        try:
            if data.subscription_id:
                sub = await subs.retrieve_async(data.subscription_id)
                if sub.status not in ("canceled", "incomplete_expired"):
                    item = sub["items"]["data"][0]
                    if item["price"]["id"] != data.price_id:
                        sub = await subs.update_async(
                            sub.id,
                            params={
                                "items": [{"id": item["id"], "price": data.price_id}],
                                "proration_behavior": "none",
                            },
                            options={"idempotency_key": f"{key}:resume-price"},
                        )
                    return BillingResult(
                        customer_id=sub.customer,
                        subscription_id=sub.id,
                        period_end=_period_end(sub),
                        detail={"kept": True},
                    )
            customer_id = data.customer_id
            if not customer_id:
                customer = await self.client.v1.customers.create_async(
                    params={
                        "name": data.name or data.tenant_id,
                        "email": data.email or "",
                        "metadata": {"tenant_id": data.tenant_id},
                    },
                    options={"idempotency_key": f"{key}:resume-customer"},
                )
                customer_id = customer.id
            sub = await subs.create_async(
                params={
                    "customer": customer_id,
                    "items": [{"price": data.price_id}],
                    "metadata": {"tenant_id": data.tenant_id},
                },
                options={"idempotency_key": f"{key}:resume-subscription"},
            )
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(
            customer_id=customer_id, subscription_id=sub.id, period_end=_period_end(sub)
        )

    @activity.defn
    async def delete_customer(self, data: DeleteCustomerInput) -> BillingResult:
        """Delete the customer (Stripe keeps no personal data of a deleted customer in the
        API); an already-deleted or missing one is fine."""
        if skipped := self._skip("delete-customer", data.tenant_id):
            return skipped
        if not data.customer_id:
            return BillingResult(detail={"nothing_to_delete": True})
        assert self.client is not None
        try:
            await self.client.v1.customers.delete_async(data.customer_id)
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return BillingResult(detail={"nothing_to_delete": True})
            raise billing_error(exc) from exc
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(customer_id=data.customer_id, detail={"deleted": True})


def make_stripe_client(api_key: str | None, api_base: str | None) -> stripe.StripeClient | None:
    """Build the Stripe client, or None (limited mode) without an API key.

    ``api_base`` points the SDK at a Stripe-compatible server (tests); network retries are
    left to Temporal's retry policy, so the SDK's own are off.
    """
    if not api_key:
        return None
    kwargs: dict[str, Any] = {"max_network_retries": 0}
    if api_base:
        kwargs["base_addresses"] = {"api": api_base}
    return stripe.StripeClient(api_key, **kwargs)
