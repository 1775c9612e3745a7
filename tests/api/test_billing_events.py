"""``POST /webhooks/stripe`` over real HTTP: Stripe's signature scheme (signed here with our
own helper, checked by the product with the official SDK), each event id processed once, and
the payment-failure grace period in the time-skipping server."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.billing_events import InvoicePaid
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TransitionInput
from lifecycle.persistence.tables import WebhookEvent
from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import new_tenant, skip_to_result
from workflows.suspension import PaymentFailureWorkflow

SECRET = "whsec_test_secret"


def sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """A ``Stripe-Signature`` header: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "t.payload")>``."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def invoice_event(event_id: str, kind: str, subscription: str, invoice: str = "in_1") -> bytes:
    """An ``invoice.*`` event as Stripe sends it since API 2025-03-31."""
    obj = {
        "id": invoice,
        "object": "invoice",
        "parent": {"subscription_details": {"subscription": subscription}},
    }
    body = {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}
    return json.dumps(body).encode()


@asynccontextmanager
async def webhook_stack(
    env: WorkflowEnvironment, tmp_path: Path, **overrides: object
) -> AsyncIterator[tuple[LifecycleClient, httpx.AsyncClient]]:
    settings = make_settings(
        tmp_path, stripe_webhook_secret=SECRET, payment_failure_grace_days=3, **overrides
    )
    async with running_stack(env, settings) as lc, serve_api(lc) as http:
        http.headers.pop("Authorization")  # webhooks carry no bearer token
        yield lc, http


async def post(http: httpx.AsyncClient, payload: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await http.post("/webhooks/stripe", content=payload, headers=headers)


async def recorded(lc: LifecycleClient) -> int:
    async with lc.repository.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


async def test_bad_missing_or_stale_signature_does_nothing(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with webhook_stack(time_env, tmp_path) as (lc, http):
        acme = uid("acme")
        await new_tenant(lc, acme, subscription_id="sub_acme")
        payload = invoice_event("evt_1", "invoice.payment_failed", "sub_acme")
        r = await post(http, payload, sign(payload, "whsec_wrong"))
        assert_problem(r, 400, "invalid Stripe-Signature", "No signatures found matching")
        assert_problem(await post(http, payload, None), 400, "invalid Stripe-Signature")
        replayed = sign(payload, at=int(time.time()) - 600)  # a valid MAC, 10 minutes old
        assert_problem(await post(http, payload, replayed), 400, "outside the tolerance zone")
        altered = payload.replace(b"sub_acme", b"sub_evil")
        assert_problem(await post(http, altered, sign(payload)), 400, "invalid Stripe-Signature")
        assert await recorded(lc) == 0
        assert await lc.operation(f"tenant-{acme}-payment-failure") is None


async def test_payment_failed_suspends_after_grace_once(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with webhook_stack(time_env, tmp_path) as (lc, http):
        acme = uid("acme")
        await new_tenant(lc, acme, subscription_id="sub_acme")
        payload = invoice_event("evt_fail_1", "invoice.payment_failed", "sub_acme", "in_42")
        first = await post(http, payload, sign(payload))
        assert first.status_code == 200, first.text
        assert first.json()["duplicate"] is False and first.json()["tenant_id"] == acme
        again = await post(http, payload, sign(payload))  # Stripe redelivers the same event
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert await recorded(lc) == 1

        await time_env.sleep(timedelta(days=2))  # inside the grace period: nothing yet
        assert (await lc.get_tenant(acme)).state is TenantState.ACTIVE
        wid = f"tenant-{acme}-payment-failure"
        result = await skip_to_result(time_env, lc.core.handle(wid))
        assert result["outcome"] == "suspended"
        tenant = await lc.get_tenant(acme)
        assert tenant.state is TenantState.SUSPENDED and set(tenant.entitlements.values()) == {0}
        events = await lc.repository.events(acme)
        suspensions = [e for e in events if e.to_state == "SUSPENDED"]
        assert len(suspensions) == 1 and suspensions[0].workflow_id == wid
        assert suspensions[0].detail["reason"] == "payment failed: invoice in_42"

        unknown = invoice_event("evt_other", "invoice.payment_failed", "sub_nobody")
        r = await post(http, unknown, sign(unknown))
        assert r.json()["outcome"] == "ignored: no tenant has subscription sub_nobody"


async def test_invoice_paid_cancels_the_suspension(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with webhook_stack(time_env, tmp_path) as (lc, http):
        acme = uid("acme")
        await new_tenant(lc, acme, subscription_id="sub_acme")
        failed = invoice_event("evt_f", "invoice.payment_failed", "sub_acme")
        assert (await post(http, failed, sign(failed))).status_code == 200
        await time_env.sleep(timedelta(days=1))
        paid = invoice_event("evt_p", "invoice.paid", "sub_acme")
        r = await post(http, paid, sign(paid))
        assert r.json()["outcome"].startswith("pending suspension cancelled")
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{acme}-payment-failure"))
        assert result["outcome"] == "recovered"
        await time_env.sleep(timedelta(days=5))
        assert (await lc.get_tenant(acme)).state is TenantState.ACTIVE
        assert "payment-recovered" in [e.operation for e in await lc.repository.events(acme)]
        late = invoice_event("evt_p2", "invoice.paid", "sub_acme")
        assert (await post(http, late, sign(late))).json()[
            "outcome"
        ] == "no payment failure pending"


async def test_auto_downgrade_moves_to_free_plan(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with webhook_stack(time_env, tmp_path, enable_auto_downgrade=True) as (lc, http):
        acme = uid("acme")
        await new_tenant(lc, acme, "professional", subscription_id="sub_acme")
        payload = invoice_event("evt_d", "invoice.payment_failed", "sub_acme")
        assert (await post(http, payload, sign(payload))).status_code == 200
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{acme}-payment-failure"))
        assert result["outcome"] == "downgraded to free"
        tenant = await lc.get_tenant(acme)
        assert tenant.state is TenantState.ACTIVE and tenant.plan == "free"
        assert tenant.entitlements == lc.settings.plans.get("free").limits.as_dict()
        assert tenant.billing_subscription_id is None
        states = [e.to_state for e in await lc.repository.events(acme) if e.to_state]
        assert states[-2:] == ["DOWNGRADING", "ACTIVE"]


async def test_webhooks_off_without_secret(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        payload = invoice_event("evt_x", "invoice.paid", "sub_x")
        r = await post(http, payload, sign(payload))
        assert_problem(r, 503, "STRIPE_WEBHOOK_SECRET is not set")


async def test_suspension_waits_for_a_running_plan_change(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with webhook_stack(time_env, tmp_path) as (lc, http):
        acme = uid("acme")
        await new_tenant(lc, acme, "starter", subscription_id="sub_acme")

        def upgrade(src: TenantState, dst: TenantState) -> TransitionInput:
            return TransitionInput(
                tenant_id=acme,
                from_states=[src],
                to_state=dst,
                operation="upgrade",
                workflow_id=f"tenant-{acme}-upgrade",
            )

        await lc.repository.transition(upgrade(TenantState.ACTIVE, TenantState.UPGRADING))
        payload = invoice_event("evt_u", "invoice.payment_failed", "sub_acme")
        assert (await post(http, payload, sign(payload))).status_code == 200
        await time_env.sleep(timedelta(days=3, minutes=3))  # grace over, the upgrade still runs
        assert (await lc.get_tenant(acme)).state is TenantState.UPGRADING
        await lc.repository.transition(upgrade(TenantState.UPGRADING, TenantState.ACTIVE))
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{acme}-payment-failure"))
        assert result["outcome"] == "suspended"
        states = [e.to_state for e in await lc.repository.events(acme) if e.to_state]
        assert states[-3:] == ["UPGRADING", "ACTIVE", "SUSPENDED"]


def subscription_event(event_id: str, subscription: str, status: str) -> bytes:
    """A ``customer.subscription.updated`` event."""
    obj = {"id": subscription, "object": "subscription", "status": status}
    body = {
        "id": event_id,
        "object": "event",
        "type": "customer.subscription.updated",
        "data": {"object": obj},
    }
    return json.dumps(body).encode()


async def test_only_the_failed_invoice_or_a_settled_subscription_cancels_the_suspension(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """Defect 6: paying another invoice leaves the failed one open and the suspension
    pending; the subscription turning active with nothing open cancels it."""
    billing = {"stripe_api_key": stripe_server.api_key, "stripe_api_base": stripe_server.url}
    async with webhook_stack(time_env, tmp_path, **billing) as (lc, http):
        acme, sub = uid("acme"), stripe_server.subscribe("price_starter", "past_due")
        await new_tenant(lc, acme, subscription_id=sub)
        stripe_server.add_invoice("in_failed", sub, "open")
        failed = invoice_event("evt_f", "invoice.payment_failed", sub, "in_failed")
        assert (await post(http, failed, sign(failed))).status_code == 200
        wid = f"tenant-{acme}-payment-failure"

        other = invoice_event("evt_other", "invoice.paid", sub, "in_other")
        r = await post(http, other, sign(other))
        assert r.json()["outcome"] == (
            "ignored: invoice in_other is not the failed invoice in_failed, which is still open"
        )
        # a signal sent anyway (e.g. by hand with the temporal CLI) is ignored by the workflow
        await lc.core.handle(wid).signal(
            PaymentFailureWorkflow.invoice_paid, InvoicePaid(invoice_id="in_other")
        )
        assert (await lc.core.handle(wid).query(PaymentFailureWorkflow.progress)).paid is False
        still_due = subscription_event("evt_s1", sub, "active")  # in_failed still open
        assert (
            (await post(http, still_due, sign(still_due))).json()["outcome"].startswith("ignored:")
        )

        stripe_server.invoices["in_failed"]["status"] = "paid"  # settled outside the webhook
        stripe_server.subscriptions[sub]["status"] = "active"
        settled = subscription_event("evt_s2", sub, "active")
        r = await post(http, settled, sign(settled))
        assert r.json()["outcome"] == f"pending suspension cancelled ({wid})"
        assert (await skip_to_result(time_env, lc.core.handle(wid)))["outcome"] == "recovered"
        assert (await lc.get_tenant(acme)).state is TenantState.ACTIVE


async def test_unrelated_payment_does_not_stop_the_suspension(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    billing = {"stripe_api_key": stripe_server.api_key, "stripe_api_base": stripe_server.url}
    async with webhook_stack(time_env, tmp_path, **billing) as (lc, http):
        acme, sub = uid("acme"), stripe_server.subscribe("price_starter", "past_due")
        await new_tenant(lc, acme, subscription_id=sub)
        stripe_server.add_invoice("in_failed", sub, "open")
        failed = invoice_event("evt_f", "invoice.payment_failed", sub, "in_failed")
        assert (await post(http, failed, sign(failed))).status_code == 200
        other = invoice_event("evt_o", "invoice.paid", sub, "in_other")
        assert (await post(http, other, sign(other))).json()["outcome"].startswith("ignored:")
        wid = f"tenant-{acme}-payment-failure"
        assert (await skip_to_result(time_env, lc.core.handle(wid)))["outcome"] == "suspended"
        assert (await lc.get_tenant(acme)).state is TenantState.SUSPENDED
