"""Billing steps of reactivation and purge in limited mode (no STRIPE_API_KEY), and the
period end read from a real ``stripe`` SDK object."""

from __future__ import annotations

import logging

import pytest
import stripe
from temporalio.testing import ActivityEnvironment

from activities.billing import (
    BillingActivities,
    DeleteCustomerInput,
    ResumeSubscriptionInput,
    _period_end,
)


async def test_limited_mode_skips_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    billing, env = BillingActivities(None), ActivityEnvironment()
    resume = ResumeSubscriptionInput(
        tenant_id="acme",
        name="Acme",
        email="ops@acme.io",
        customer_id="cus_1",
        subscription_id="sub_1",
        price_id="price_starter",
        idempotency_scope="tenant-acme-deletion:run-1",
    )
    delete = DeleteCustomerInput(tenant_id="acme", customer_id="cus_1", idempotency_scope="w:r")
    with caplog.at_level(logging.WARNING):
        resumed = await env.run(billing.resume_subscription, resume)
        deleted = await env.run(billing.delete_customer, delete)
    assert resumed.skipped and resumed.detail == {"step": "resume-subscription"}
    assert deleted.skipped and deleted.detail == {"step": "delete-customer"}
    assert resumed.subscription_id is None and deleted.customer_id is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("resume-subscription skipped for tenant acme" in w for w in warnings)
    assert any("delete-customer skipped for tenant acme" in w for w in warnings)


def test_period_end_of_sdk_subscription() -> None:
    sub = stripe.Subscription.construct_from(
        {"id": "sub_1", "items": {"object": "list", "data": [{"current_period_end": 1767225600}]}},
        "sk_test",
    )
    assert _period_end(sub).isoformat() == "2026-01-01T00:00:00+00:00"
