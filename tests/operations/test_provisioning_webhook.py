"""Provisioning webhook (signed, before billing) and onboarding through the Stripe test server."""

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.provisioning import SIGNATURE_HEADER, TIMESTAMP_HEADER
from lifecycle.domain.states import TenantState
from tests.support.fixtures import running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded
from tests.support.stripe_server import StripeServer

SECRET = "whsec-provisioning-test"


class Receiver:
    """The SaaS application's provisioning endpoint: verifies each delivery's signature."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(request.headers[SIGNATURE_HEADER], expected)
        payload = json.loads(body)
        self.deliveries.append(
            {
                "at_ns": time.monotonic_ns(),
                "valid": valid,
                "timestamp": request.headers[TIMESTAMP_HEADER],
                "key": request.headers["Idempotency-Key"],
                "payload": payload,
            }
        )
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status == 200}, status=status if valid else 401)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/provision", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/provision"  # type: ignore[union-attr]
    yield recv
    await runner.cleanup()


async def test_signed_limits_reach_the_application_before_billing_changes(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer, receiver: Receiver
) -> None:
    settings = billing_settings(
        tmp_path,
        stripe_server,
        provisioning_webhook_url=receiver.url,
        provisioning_webhook_secret=SECRET,
    )
    async with running_stack(time_env, settings) as lc:
        tenant = await onboarded(lc, "starter")
        receiver.statuses = [503]  # the application is briefly unavailable: retried
        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "professional")
        await finish(time_env, lc, started.workflow_id)

    professional = settings.plans.get("professional").limits.as_dict()
    assert [d["valid"] for d in receiver.deliveries] == [True, True]
    first, delivered = receiver.deliveries
    assert first["key"] == delivered["key"] and started.workflow_id in delivered["key"]
    assert delivered["payload"]["entitlements"] == professional
    assert delivered["payload"]["plan"] == "professional"
    assert delivered["payload"]["tenant_id"] == tenant.tenant_id
    assert str(delivered["payload"]["sent_at"]) == delivered["timestamp"]
    (change,) = [e for e in stripe_server.journal if e.path.startswith("/v1/subscription_items/")]
    assert delivered["at_ns"] < change.at_ns  # the application had the limits before billing
    assert stripe_server.item_price(tenant.billing_subscription_id) == "price_professional"


async def test_application_rejecting_the_limits_aborts_before_billing(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer, receiver: Receiver
) -> None:
    settings = billing_settings(
        tmp_path,
        stripe_server,
        provisioning_webhook_url=receiver.url,
        provisioning_webhook_secret=SECRET,
    )
    async with running_stack(time_env, settings) as lc:
        tenant = await onboarded(lc, "starter")
        receiver.statuses = [400]
        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "enterprise")
        with pytest.raises(WorkflowFailureError) as err:
            await lc.core.handle(started.workflow_id).result()
        assert "provisioning webhook answered 400" in str(err.value.cause)
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "starter")
        assert after.entitlements == settings.plans.get("starter").limits.as_dict()
    # the restore was delivered too, with the old limits; billing was never touched
    assert [d["payload"]["plan"] for d in receiver.deliveries] == ["enterprise", "starter"]
    assert not [e for e in stripe_server.journal if e.path.startswith("/v1/subscription_items")]


async def test_onboarding_creates_customer_and_subscription_in_stripe(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional")
    customer = stripe_server.customers[tenant.billing_customer_id]
    assert customer["metadata"] == {"tenant_id": tenant.tenant_id}
    sub = stripe_server.subscriptions[tenant.billing_subscription_id]
    assert sub["customer"] == customer["id"]
    assert stripe_server.item_price(sub["id"]) == "price_professional"
    period_end = sub["items"]["data"][0]["current_period_end"]
    assert tenant.billing_period_end == datetime.fromtimestamp(period_end, UTC)
    assert [(e.method, e.path) for e in stripe_server.mutations()] == [
        ("POST", "/v1/customers"),
        ("POST", "/v1/subscriptions"),
    ]
    keys = [e.idempotency_key for e in stripe_server.mutations()]
    assert all(k and k.startswith(f"tenant-{tenant.tenant_id}-onboard") for k in keys)
