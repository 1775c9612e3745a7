"""Billing activities on Stripe (official ``stripe`` SDK, async client).

Every mutating call carries an idempotency key derived from the workflow id and the step,
never from the attempt, so a retried activity can never bill twice. In limited mode (no
STRIPE_API_KEY) every step logs a warning and returns ``skipped: true``.

Billing writes are rate limited for all workers together when BILLING_RATE_LIMIT is set
(:class:`~lifecycle.persistence.rate_limits.RateLimiter`): each mutating Stripe request, or in
limited mode each skipped write standing for one, first waits for its slot. A 429 that still
comes back is retried after Stripe's ``Retry-After`` (:func:`billing_error`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import stripe
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from lifecycle.domain.billing import BillingResult
from lifecycle.domain.plan_changes import ProrationLine, ProrationPreview
from lifecycle.domain.trials import PaymentMethodInput
from lifecycle.faults import fault_point
from lifecycle.persistence.rate_limits import RateLimiter


class StartSubscriptionInput(BaseModel):
    """Create a customer and a subscription to ``price_id`` for a new tenant.

    ``idempotency_scope`` (every billing input has one): ``<workflow id>:<run id>`` of the
    calling workflow; each call's idempotency key is ``<scope>:<step>``.
    """

    tenant_id: str
    name: str
    email: str
    price_id: str
    idempotency_scope: str
    trial_end: datetime | None = None


class CancelSubscriptionInput(BaseModel):
    """Cancel a subscription at once, without proration or a final invoice."""

    tenant_id: str
    subscription_id: str | None
    idempotency_scope: str
    step: str = "cancel-subscription"


class ChangePriceInput(BaseModel):
    """Move a subscription's item to ``price_id``.

    ``proration_behavior`` is Stripe's (``create_prorations``, ``always_invoice``, ``none``);
    ``idempotency_key`` comes from the workflow run and the saga step, never the attempt.
    ``unless_current`` (compensations): make no call when the item already has ``price_id``.
    A tenant without subscription (onboarded in limited mode, or its subscription cancelled
    by an automatic downgrade) gets one on ``price_id``, for ``customer_id`` or a new customer
    (``name``, ``email``), keyed ``<idempotency_key>:customer|subscription``.
    """

    tenant_id: str
    subscription_id: str | None
    price_id: str
    proration_behavior: str
    idempotency_key: str
    unless_current: bool = False
    customer_id: str | None = None
    name: str | None = None
    email: str | None = None


class PeriodInput(BaseModel):
    """Look up the current billing period of a tenant's subscription."""

    tenant_id: str
    subscription_id: str | None


class ResumeSubscriptionInput(BaseModel):
    """Bill a reactivated tenant on ``price_id``: keep its live subscription (moved to the
    price with ``proration_behavior``: the upgrade's onto a higher plan, else ``none``) or
    create one, and the customer when it has none."""

    tenant_id: str
    name: str | None
    email: str | None
    customer_id: str | None
    subscription_id: str | None
    price_id: str
    idempotency_scope: str
    proration_behavior: str = "none"


class PauseCollectionInput(BaseModel):
    """Pause the collection of a paused tenant's subscription (Stripe ``pause_collection``)
    with ``behavior`` (``void``, ``keep_as_draft``, ``mark_uncollectible``) until
    ``resumes_at`` (UTC; None: until resumed)."""

    tenant_id: str
    subscription_id: str | None
    behavior: str
    resumes_at: datetime | None
    idempotency_scope: str


class ScheduleChangeInput(BaseModel):
    """Schedule a subscription's move to ``price_id`` at its current period's end (a Stripe
    subscription schedule: phase 1 the current price until ``current_period_end``, phase 2
    ``price_id`` for one period, then released)."""

    tenant_id: str
    subscription_id: str | None
    price_id: str
    idempotency_scope: str


class ReleaseScheduleInput(BaseModel):
    """Release a subscription schedule (the subscription keeps its current price)."""

    tenant_id: str
    schedule_id: str | None
    idempotency_scope: str
    step: str = "release-schedule"


class DeleteCustomerInput(BaseModel):
    """Delete the billing customer of a purged tenant (GDPR Art. 17)."""

    tenant_id: str
    customer_id: str | None
    idempotency_scope: str


def _period_end(subscription: stripe.Subscription) -> datetime | None:
    """Current period end of a subscription (on its first item since API 2025-03-31)."""
    # stripe >= 13 objects are not dicts (``.get`` raises AttributeError): read a plain copy
    sub = subscription.to_dict()
    data = (sub.get("items") or {}).get("data") or []
    ts = (data[0].get("current_period_end") if data else None) or sub.get("current_period_end")
    return datetime.fromtimestamp(int(ts), UTC) if ts else None


#: HTTP statuses of Stripe errors worth retrying: 409 (a concurrent request holds the same
#: object or idempotency key) and 429 (rate limited); 5xx and network errors retry as well.
RETRYABLE_STATUSES = frozenset({409, 429})


def billing_error(exc: stripe.StripeError) -> ApplicationError:
    """Map a Stripe error to an ApplicationError (issue 12, defect 7).

    Non-retryable at once: a declined card (``CardDeclined``), an idempotency key reused with
    other parameters (``IdempotencyError``) and every other 4xx but 409 and 429
    (``InvalidBillingRequest``: invalid request, authentication, permission). Retryable
    (``BillingUnavailable``): 409, 5xx and network errors (no HTTP status), with the retry
    policy's backoff; 429 (``BillingRateLimited``) after the answer's ``Retry-After`` seconds
    (1 s without one) plus up to 50% jitter, so that workers limited together do not all
    come back in the same instant.
    """
    status = exc.http_status
    if status == 429:
        delay = retry_after(exc) * (1 + random.random() / 2)
        return ApplicationError(
            f"billing rate limited (HTTP 429), retrying in {delay:.2f} s: {exc}",
            type="BillingRateLimited",
            next_retry_delay=timedelta(seconds=delay),
        )
    if isinstance(exc, stripe.CardError):
        return ApplicationError(
            f"card declined: {exc.user_message or exc}", type="CardDeclined", non_retryable=True
        )
    if isinstance(exc, stripe.IdempotencyError) and status not in RETRYABLE_STATUSES:
        return ApplicationError(str(exc), type="IdempotencyError", non_retryable=True)
    if status is not None and 400 <= status < 500 and status not in RETRYABLE_STATUSES:
        return ApplicationError(
            f"billing rejected the request (HTTP {status}): {exc.user_message or exc}",
            type="InvalidBillingRequest",
            non_retryable=True,
        )
    return ApplicationError(
        f"billing unavailable (HTTP {status or 'no answer'}): {exc}", type="BillingUnavailable"
    )


def retry_after(exc: stripe.StripeError) -> float:
    """Seconds Stripe asks to wait (``Retry-After``, header names in any case); 1.0 when
    absent or unreadable, at most 60."""
    for name, value in (exc.headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return min(60.0, max(0.0, float(value)))
            except ValueError:
                break
    return 1.0


T = TypeVar("T")
#: Seconds between heartbeats while a Stripe call is in flight (the SDK throttles the
#: heartbeats it sends to 0.8 x the activity's heartbeat timeout).
HEARTBEAT_EVERY = 1.0


async def uninterrupted(call: Awaitable[T]) -> T:
    """Await one mutating Stripe call to its end, heartbeating meanwhile; when the activity
    is cancelled during the call, the call still finishes (Stripe may already have committed
    it) and ``asyncio.CancelledError`` is raised only after, so a workflow waiting for the
    cancellation (``WAIT_CANCELLATION_COMPLETED``) reads Stripe's final state afterwards.
    Raises what the call raises (``stripe.StripeError``)."""
    task = asyncio.ensure_future(call)
    cancelled = False
    while not task.done():
        activity.heartbeat()
        try:
            await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
        except asyncio.CancelledError:
            cancelled = True
    result = task.result()
    if cancelled:
        raise asyncio.CancelledError("cancelled; the billing call in flight completed first")
    return result


def raise_if_cancelled() -> None:
    """Heartbeat, and stop before a mutating call when the activity is already cancelled:
    the call is then known not to have happened."""
    activity.heartbeat()
    if activity.is_cancelled():
        raise asyncio.CancelledError("cancelled before the billing call")


class BillingActivities:
    """Stripe calls of the lifecycle; ``client`` is None in limited mode; ``limiter`` bounds
    the billing writes of every worker together (BILLING_RATE_LIMIT; None: unbounded)."""

    def __init__(
        self, client: stripe.StripeClient | None, limiter: RateLimiter | None = None
    ) -> None:
        self.client, self.limiter = client, limiter

    async def _slot(self) -> None:
        """Wait, heartbeating, for this write's slot of the billing rate limit."""
        if self.limiter is None:
            return
        wait = await self.limiter.reserve()
        while wait > 0:
            raise_if_cancelled()
            pause = min(wait, HEARTBEAT_EVERY)
            await asyncio.sleep(pause)
            wait -= pause

    async def _skip_write(self, step: str, tenant_id: str) -> BillingResult | None:
        """:meth:`_skip` for a mutating step: in limited mode the skipped write still takes
        its slot of the rate limit, so that limited mode shows what the limit allows."""
        skipped = self._skip(step, tenant_id)
        if skipped is not None:
            await self._slot()
        return skipped

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
        if skipped := await self._skip_write("start-subscription", data.tenant_id):
            fault_point("billing.after_start_subscription")
            return skipped
        assert self.client is not None
        try:
            await self._slot()
            customer = await self.client.v1.customers.create_async(
                params={
                    "name": data.name,
                    "email": data.email,
                    "metadata": {"tenant_id": data.tenant_id},
                },
                options={"idempotency_key": f"{data.idempotency_scope}:customer"},
            )
            await self._slot()
            params: Any = {
                "customer": customer.id,
                "items": [{"price": data.price_id}],
                "metadata": {"tenant_id": data.tenant_id},
            }
            if data.trial_end is not None:
                params["trial_end"] = int(data.trial_end.timestamp())
            subscription = await self.client.v1.subscriptions.create_async(
                params=params,
                options={"idempotency_key": f"{data.idempotency_scope}:subscription"},
            )
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        fault_point("billing.after_start_subscription")
        return BillingResult(
            customer_id=customer.id,
            subscription_id=subscription.id,
            period_end=_period_end(subscription),
        )

    @activity.defn
    async def cancel_subscription(self, data: CancelSubscriptionInput) -> BillingResult:
        """Cancel at once without proration; an already-cancelled or missing one is fine."""
        if skipped := await self._skip_write(data.step, data.tenant_id):
            return skipped
        if not data.subscription_id:
            return BillingResult(detail={"step": data.step, "nothing_to_cancel": True})
        assert self.client is not None
        try:
            await self._slot()
            sub = await self.client.v1.subscriptions.cancel_async(
                data.subscription_id,
                params={"prorate": False, "invoice_now": False},
                options={"idempotency_key": f"{data.idempotency_scope}:{data.step}"},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return BillingResult(detail={"step": data.step, "nothing_to_cancel": True})
            raise billing_error(exc) from exc
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(subscription_id=sub.id, detail={"status": sub.status})

    @activity.defn
    async def change_price(self, data: ChangePriceInput) -> BillingResult:
        """Change the subscription item's price with ``data.proration_behavior``.

        Heartbeats; cancelled, it makes no call if none started, else lets the call in flight
        finish before reporting the cancellation (:func:`uninterrupted`).

        ``detail`` has ``price``, ``previous_price`` and ``changed`` (False when nothing was
        to change); a tenant without subscription gets one (``created: true``, see
        :class:`ChangePriceInput`); billing is skipped only in limited mode. Card declines and
        invalid prices are non-retryable (:func:`billing_error`); 5xx and network errors retry.
        """
        step = f"change-price to {data.price_id}"
        if skipped := await self._skip_write(step, data.tenant_id):
            return skipped
        assert self.client is not None
        if data.subscription_id is None:
            if data.unless_current:  # an undo: there is no subscription to put back
                return BillingResult(detail={"price": data.price_id, "changed": False})
            return await self._subscribe(data)
        try:
            sub = await self.client.v1.subscriptions.retrieve_async(data.subscription_id)
            item = sub["items"]["data"][0]
            previous = item["price"]["id"]
            detail = {"price": data.price_id, "previous_price": previous, "changed": False}
            if data.unless_current and previous == data.price_id:
                return BillingResult(
                    subscription_id=sub.id, period_end=_period_end(sub), detail=detail
                )
            raise_if_cancelled()
            await self._slot()
            item = await uninterrupted(
                self.client.v1.subscription_items.update_async(
                    item["id"],
                    params={
                        "price": data.price_id,
                        "proration_behavior": data.proration_behavior,
                    },
                    options={"idempotency_key": data.idempotency_key},
                )
            )
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        detail |= {"changed": True, "proration_behavior": data.proration_behavior}
        return BillingResult(subscription_id=sub.id, period_end=_period_end(sub), detail=detail)

    async def _subscribe(self, data: ChangePriceInput) -> BillingResult:
        """Create the missing subscription on ``data.price_id`` (and the customer when the
        tenant has none); idempotent under ``<idempotency_key>:customer|subscription``."""
        assert self.client is not None
        key = data.idempotency_key
        try:
            customer_id = data.customer_id
            raise_if_cancelled()
            if not customer_id:
                await self._slot()
                customer = await uninterrupted(
                    self.client.v1.customers.create_async(
                        params={
                            "name": data.name or data.tenant_id,
                            "email": data.email or "",
                            "metadata": {"tenant_id": data.tenant_id},
                        },
                        options={"idempotency_key": f"{key}:customer"},
                    )
                )
                customer_id = customer.id
            await self._slot()
            sub = await uninterrupted(
                self.client.v1.subscriptions.create_async(
                    params={
                        "customer": customer_id,
                        "items": [{"price": data.price_id}],
                        "metadata": {"tenant_id": data.tenant_id},
                    },
                    options={"idempotency_key": f"{key}:subscription"},
                )
            )
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(
            customer_id=customer_id,
            subscription_id=sub.id,
            period_end=_period_end(sub),
            detail={
                "price": data.price_id,
                "previous_price": None,
                "changed": True,
                "created": True,
            },
        )

    @activity.defn
    async def current_period(self, data: PeriodInput) -> BillingResult:
        """The subscription's current period end (UTC); skipped in limited mode or without
        a subscription."""
        if skipped := self._skip("current-period", data.tenant_id):
            return skipped
        assert self.client is not None
        if data.subscription_id is None:
            return BillingResult(skipped=True, detail={"reason": "no subscription"})
        try:
            sub = await self.client.v1.subscriptions.retrieve_async(data.subscription_id)
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(subscription_id=sub.id, period_end=_period_end(sub))

    @activity.defn
    async def resume_subscription(self, data: ResumeSubscriptionInput) -> BillingResult:
        """Keep the subscription when it is still live (changing its price with
        ``data.proration_behavior`` if needed), else create a new one (and the customer if
        missing); idempotency keys from the workflow id. A cancelled Stripe subscription
        cannot be restarted."""
        if skipped := await self._skip_write("resume-subscription", data.tenant_id):
            return skipped
        assert self.client is not None
        subs, key = self.client.v1.subscriptions, data.idempotency_scope
        try:
            if data.subscription_id:
                sub = await subs.retrieve_async(data.subscription_id)
                if sub.status not in ("canceled", "incomplete_expired"):
                    if sub.pause_collection:  # a paused tenant: collection resumes
                        sub = await subs.update_async(
                            sub.id,
                            params={"pause_collection": ""},
                            options={"idempotency_key": f"{key}:resume-collection"},
                        )
                    item = sub["items"]["data"][0]
                    if item["price"]["id"] != data.price_id:
                        await self._slot()
                        await self.client.v1.subscription_items.update_async(
                            item["id"],
                            params={
                                "price": data.price_id,
                                "proration_behavior": data.proration_behavior,
                            },
                            options={"idempotency_key": f"{key}:resume-price"},
                        )
                    return BillingResult(
                        customer_id=sub.customer
                        if isinstance(sub.customer, str)
                        else sub.customer.id,
                        subscription_id=sub.id,
                        period_end=_period_end(sub),
                        detail={"kept": True},
                    )
            customer_id = data.customer_id
            if not customer_id:
                await self._slot()
                customer = await self.client.v1.customers.create_async(
                    params={
                        "name": data.name or data.tenant_id,
                        "email": data.email or "",
                        "metadata": {"tenant_id": data.tenant_id},
                    },
                    options={"idempotency_key": f"{key}:resume-customer"},
                )
                customer_id = customer.id
            await self._slot()
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
    async def pause_collection(self, data: PauseCollectionInput) -> BillingResult:
        """Set the subscription's ``pause_collection`` (key ``<scope>:pause-collection``);
        ``detail``: ``behavior`` and ``resumes_at`` (unix seconds). Skipped in limited mode;
        without a subscription ``nothing_to_pause``. Stripe errors as :func:`billing_error`."""
        if skipped := self._skip("pause-collection", data.tenant_id):
            return skipped
        if not data.subscription_id:
            return BillingResult(detail={"nothing_to_pause": True})
        assert self.client is not None
        pause: dict[str, Any] = {"behavior": data.behavior}
        if data.resumes_at is not None:
            pause["resumes_at"] = int(data.resumes_at.timestamp())
        params: Any = {"pause_collection": pause}  # behavior: a str, not the SDK's Literal
        try:
            sub = await self.client.v1.subscriptions.update_async(
                data.subscription_id,
                params=params,
                options={"idempotency_key": f"{data.idempotency_scope}:pause-collection"},
            )
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(subscription_id=sub.id, detail=dict(pause))

    @activity.defn
    async def has_payment_method(self, data: PaymentMethodInput) -> BillingResult:
        """Whether Stripe has a payment method on file: ``detail.payment_method`` (the
        customer's ``invoice_settings.default_payment_method`` or the subscription's
        ``default_payment_method``); in limited mode ``skipped`` and none is known."""
        if skipped := self._skip("has-payment-method", data.tenant_id):
            return skipped.model_copy(update={"detail": {"payment_method": False}})
        assert self.client is not None
        found = False
        try:
            if data.subscription_id:
                sub = await self.client.v1.subscriptions.retrieve_async(data.subscription_id)
                found = bool(getattr(sub, "default_payment_method", None))
            if not found and data.customer_id:
                customer = await self.client.v1.customers.retrieve_async(data.customer_id)
                settings = getattr(customer, "invoice_settings", None)
                found = bool(settings and getattr(settings, "default_payment_method", None))
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(detail={"payment_method": found})

    @activity.defn
    async def schedule_price_change(self, data: ScheduleChangeInput) -> BillingResult:
        """Create the schedule from the subscription (key ``<scope>:schedule``) and set its
        phases (``<scope>:schedule-phases``); ``detail``: ``schedule_id``, ``price``,
        ``previous_price``, ``phase_end`` (unix seconds). Skipped in limited mode or without
        a subscription (``skipped: true``). Stripe errors as :func:`billing_error`."""
        if skipped := await self._skip_write("schedule-price-change", data.tenant_id):
            return skipped
        if not data.subscription_id:
            return BillingResult(skipped=True, detail={"reason": "no subscription"})
        assert self.client is not None
        schedules, key = self.client.v1.subscription_schedules, data.idempotency_scope
        try:
            await self._slot()
            schedule = await schedules.create_async(
                params={"from_subscription": data.subscription_id},
                options={"idempotency_key": f"{key}:schedule"},
            )
            current = schedule.phases[0]
            previous = current["items"][0]["price"]
            previous_id = previous if isinstance(previous, str) else previous["id"]
            phase_end = int(current["end_date"])
            phases: Any = [
                {
                    "items": [{"price": previous_id}],
                    "start_date": int(current["start_date"]),
                    "end_date": phase_end,
                },
                {"items": [{"price": data.price_id}], "iterations": 1},
            ]
            await self._slot()
            await schedules.update_async(
                schedule.id,
                params={"end_behavior": "release", "phases": phases},
                options={"idempotency_key": f"{key}:schedule-phases"},
            )
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(
            subscription_id=data.subscription_id,
            period_end=datetime.fromtimestamp(phase_end, UTC),
            detail={
                "schedule_id": schedule.id,
                "price": data.price_id,
                "previous_price": previous_id,
                "phase_end": phase_end,
            },
        )

    @activity.defn
    async def release_schedule(self, data: ReleaseScheduleInput) -> BillingResult:
        """Release the schedule (key ``<scope>:<step>``); one already released, completed or
        missing is fine (``detail.nothing_to_release``)."""
        if skipped := await self._skip_write(data.step, data.tenant_id):
            return skipped
        if not data.schedule_id:
            return BillingResult(detail={"nothing_to_release": True})
        assert self.client is not None
        schedules = self.client.v1.subscription_schedules
        try:
            schedule = await schedules.retrieve_async(data.schedule_id)
            if schedule.status not in ("active", "not_started"):
                return BillingResult(detail={"nothing_to_release": True, "status": schedule.status})
            await self._slot()
            schedule = await schedules.release_async(
                data.schedule_id,
                options={"idempotency_key": f"{data.idempotency_scope}:{data.step}"},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return BillingResult(detail={"nothing_to_release": True})
            raise billing_error(exc) from exc
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(detail={"schedule_id": schedule.id, "status": schedule.status})

    @activity.defn
    async def delete_customer(self, data: DeleteCustomerInput) -> BillingResult:
        """Delete the customer (Stripe keeps no personal data of a deleted customer in the
        API); an already-deleted or missing one is fine."""
        if skipped := await self._skip_write("delete-customer", data.tenant_id):
            return skipped
        if not data.customer_id:
            return BillingResult(detail={"nothing_to_delete": True})
        assert self.client is not None
        try:
            await self._slot()
            await self.client.v1.customers.delete_async(
                data.customer_id,
                options={"idempotency_key": f"{data.idempotency_scope}:delete-customer"},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return BillingResult(detail={"nothing_to_delete": True})
            raise billing_error(exc) from exc
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        return BillingResult(customer_id=data.customer_id, detail={"deleted": True})


#: Why a preview has no amount in limited mode.
LIMITED_MODE = "billing in limited mode (no STRIPE_API_KEY)"


async def preview_price_change(
    client: stripe.StripeClient | None,
    subscription_id: str | None,
    price_id: str,
    proration_behavior: str,
) -> ProrationPreview:
    """Stripe's invoice preview (``invoices.create_preview``) of moving the subscription's
    item to ``price_id`` now with ``proration_behavior``: the sum of its proration lines and
    its total, in the invoice's currency (cents). Read-only: nothing is billed.

    Never raises for billing reasons: limited mode, a tenant without subscription and a
    Stripe error give ``available: false`` with the reason (never an invented amount).
    """
    unavailable = ProrationPreview(available=False, proration_behavior=proration_behavior)
    if client is None:
        return unavailable.model_copy(update={"reason": LIMITED_MODE})
    if not subscription_id:
        return unavailable.model_copy(update={"reason": "the tenant has no subscription"})
    try:
        sub = await client.v1.subscriptions.retrieve_async(subscription_id)
        item_id = sub.to_dict()["items"]["data"][0]["id"]
        invoice = await client.v1.invoices.create_preview_async(
            {
                "subscription": subscription_id,
                "subscription_details": {
                    "items": [{"id": item_id, "price": price_id}],
                    "proration_behavior": proration_behavior,
                },
            }
        )
    except stripe.StripeError as exc:
        reason = f"Stripe's invoice preview failed: {billing_error(exc).message}"
        return unavailable.model_copy(update={"reason": reason})
    body = invoice.to_dict()
    lines = [
        ProrationLine(
            description=str(line.get("description") or ""),
            amount_cents=int(line["amount"]),
            proration=bool(
                ((line.get("parent") or {}).get("subscription_item_details") or {}).get("proration")
            ),
        )
        for line in body["lines"]["data"]
    ]
    return ProrationPreview(
        available=True,
        proration_behavior=proration_behavior,
        currency=body.get("currency"),
        amount_cents=sum(line.amount_cents for line in lines if line.proration),
        next_invoice_cents=int(body["total"]),
        lines=lines,
    )


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
