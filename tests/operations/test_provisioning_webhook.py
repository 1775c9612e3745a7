"""The provisioning webhook as one subscriber of the lifecycle events (issue 17, item 5): it
gets the events that change what a tenant may use, signed with PROVISIONING_WEBHOOK_SECRET and
carrying the plan and the entitlements in force, delivered by EventDeliveryWorkflow (back-off
retries, the deliveries list, redelivery) over real HTTP; a plan change no longer waits for it.
And onboarding through the Stripe test server."""

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.events import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, EventActivities
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.billing import BillingResult
from lifecycle.domain.events import PROVISIONING_EVENTS, EventDeliveryInput, EventEndpoint
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TransitionInput
from lifecycle.domain.text import redact
from lifecycle.persistence.events import EventRepository
from lifecycle.persistence.tenants import TenantRepository
from tests.operations.test_events import deliver_all
from tests.support.fixtures import running_stack, uid
from tests.support.plan_fixtures import billing_settings, finish, onboarded
from tests.support.stripe_server import StripeServer

SECRET = "whsec-provisioning-test"
EVENTS_SECRET = "whsec-events-test"


class Receiver:
    """An endpoint of the SaaS application verifying each request's signature with its own
    key; ``statuses`` are the answers to give, in order, then 200."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        self.requests.append(
            {
                "valid": hmac.compare_digest(request.headers[SIGNATURE_HEADER], expected),
                "timestamp": request.headers[TIMESTAMP_HEADER],
                "type": request.headers[EVENT_HEADER],
                "key": request.headers["Idempotency-Key"],
                "event": json.loads(body),
            }
        )
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({}, status=status)

    def events(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's events received, in sequence order (each event has its own delivery
        workflow: arrival order is not promised)."""
        mine = [r["event"] for r in self.requests if r["event"]["tenant_id"] == tenant_id]
        return sorted(mine, key=lambda e: e["sequence"])


@contextlib.asynccontextmanager
async def serving(secret: str) -> AsyncIterator[Receiver]:
    recv = Receiver(secret)
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    try:
        yield recv
    finally:
        await runner.cleanup()


async def upgraded(env: WorkflowEnvironment, lc: LifecycleClient, tenant_id: str) -> None:
    started = await lc.plan_changes.upgrade_tenant(tenant_id, "professional")
    await finish(env, lc, started.workflow_id)


async def test_the_webhook_gets_the_entitlement_events_signed_and_event_urls_get_all(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with serving(SECRET) as hook, serving(EVENTS_SECRET) as app:
        settings = billing_settings(
            tmp_path,
            stripe_server,
            provisioning_webhook_url=hook.url,
            provisioning_webhook_secret=SECRET,
            event_webhook_urls=app.url,
            event_webhook_secret=EVENTS_SECRET,
        )
        async with running_stack(time_env, settings) as lc:
            tenant = await onboarded(lc, "starter")
            acme = tenant.tenant_id
            await upgraded(time_env, lc, acme)
            await lc.repository.record_event(acme, "dunning-step", workflow_id="w", detail={})
            outcomes = await deliver_all(time_env, lc)
            deliveries = await lc.outbound_events.deliveries(tenant_id=acme)

    starter = settings.plans.get("starter").limits.as_dict()
    professional = settings.plans.get("professional").limits.as_dict()
    assert all(r["valid"] for r in hook.requests + app.requests)  # each with its own key
    assert all(str(r["event"]["sent_at"]) == r["timestamp"] for r in hook.requests)
    assert all(r["type"] == r["event"]["type"] for r in hook.requests)
    assert {r["key"] for r in hook.requests} == {f"event-{e['id']}" for e in hook.events(acme)}
    received = hook.events(acme)
    assert [e["type"] for e in received] == [
        "tenant.activated",
        "tenant.entitlements_changed",  # the saga's provisioning step, before billing
        "tenant.plan_changed",
    ]
    assert [e["sequence"] for e in received] == [1, 2, 3]
    activated, provisioned, changed = (e["data"] for e in received)
    assert (activated["plan"], activated["entitlements"]) == ("starter", starter)
    assert (provisioned["plan"], provisioned["entitlements"]) == ("starter", professional)
    assert provisioned["detail"]["step"] == "provision-entitlements"
    assert (changed["plan"], changed["previous_plan"]) == ("professional", "starter")
    assert changed["entitlements"] == professional
    # EVENT_WEBHOOK_URLS get every type, the dunning step too; the webhook only its types
    assert [e["type"] for e in app.events(acme)] == [
        *[e["type"] for e in received],
        "tenant.dunning_step",
    ]
    assert all(o.failed == [] for o in outcomes)
    to_hook = [d for d in deliveries if d.endpoint == redact(hook.url)]
    assert [d.status for d in to_hook] == ["delivered"] * 3 and len(deliveries) == 3 + 4
    assert stripe_server.item_price(tenant.billing_subscription_id) == "price_professional"


async def test_a_webhook_outage_neither_holds_the_plan_change_nor_loses_the_limits(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with serving(SECRET) as hook:
        settings = billing_settings(
            tmp_path,
            stripe_server,
            provisioning_webhook_url=hook.url,
            provisioning_webhook_secret=SECRET,
        )
        async with running_stack(time_env, settings) as lc:
            tenant = await onboarded(lc, "starter")
            acme = tenant.tenant_id
            await deliver_all(time_env, lc)
            hook.statuses = [503, 503, 500]  # the application is down for a while
            await upgraded(time_env, lc, acme)
            committed = await lc.get_tenant(acme)
            posted_before_delivery = len(hook.requests)
            outcomes = await deliver_all(time_env, lc)
            deliveries = await lc.outbound_events.deliveries(tenant_id=acme)

    professional = settings.plans.get("professional").limits.as_dict()
    # the plan change committed without the webhook: it was not called by the saga
    assert (committed.state, committed.plan) == (TenantState.ACTIVE, "professional")
    assert committed.entitlements == professional and posted_before_delivery == 1
    assert all(len(o.delivered) == 1 and o.failed == [] for o in outcomes)
    upgrade = [d for d in deliveries if d.sequence > 1]
    assert {d.status for d in upgrade} == {"delivered"}
    assert sum(d.attempts for d in upgrade) == 2 + 3  # two events, three failed attempts
    assert hook.statuses == []
    last = hook.events(acme)[-1]
    assert last["type"] == "tenant.plan_changed" and last["data"]["entitlements"] == professional


async def test_a_rejected_delivery_is_listed_failed_and_redelivered_on_request(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with serving(SECRET) as hook:
        settings = billing_settings(
            tmp_path,
            stripe_server,
            provisioning_webhook_url=hook.url,
            provisioning_webhook_secret=SECRET,
            event_delivery_retry_days=0.01,  # 14.4 minutes of retries
        )
        async with running_stack(time_env, settings) as lc:
            hook.statuses = [400] * 1000  # a bad deploy of the application
            tenant = await onboarded(lc, "starter")
            acme = tenant.tenant_id
            await upgraded(time_env, lc, acme)  # not compensated: the webhook is not in the saga
            after = await lc.get_tenant(acme)
            outcomes = await deliver_all(time_env, lc)
            failed = await lc.outbound_events.deliveries(status="failed", tenant_id=acme)

            hook.statuses = []  # fixed
            for delivery in failed:
                started = await lc.outbound_events.redeliver(delivery.event_id)
                assert started.deliveries == [delivery.delivery_id]
                await finish(time_env, lc, started.workflow_id)
            still_failed = await lc.outbound_events.deliveries(status="failed", tenant_id=acme)
            deliveries = await lc.outbound_events.deliveries(tenant_id=acme)

    assert after.plan == "professional"
    assert stripe_server.item_price(tenant.billing_subscription_id) == "price_professional"
    assert len(failed) == 3 and all(len(o.failed) == 1 for o in outcomes)
    assert all(d.endpoint == redact(hook.url) for d in failed)
    assert all(d.last_status_code == 400 and d.attempts > 3 for d in failed)
    assert "400" in (failed[0].last_error or "")
    assert still_failed == [] and {d.status for d in deliveries} == {"delivered"}
    assert all(r["valid"] for r in hook.requests)
    assert hook.events(acme)[-1]["type"] == "tenant.plan_changed"


async def test_a_delivery_finds_its_endpoint_after_a_url_is_added_before_it(
    repository: TenantRepository,
) -> None:
    """A delivery row names its endpoint by index and URL: when EVENT_WEBHOOK_URLS grows, the
    provisioning webhook moves to a later index and a delivery opened before still reaches
    it, signed with its own key; an endpoint no longer configured is a final failure."""
    async with serving(SECRET) as hook, serving(EVENTS_SECRET) as app:
        tenant = uid("idx")
        await repository.create_tenant(
            CreateTenantInput(
                request=OnboardRequest(tenant_id=tenant, name="I", email="i@i.io", plan="starter"),
                limits={"users": 3},
                billing=BillingResult(),
                workflow_id="seed",
                actor="test",
            )
        )
        events = EventRepository(repository.sessions)
        (activated,) = await events.events(tenant)
        before = [EventEndpoint(hook.url, SECRET, PROVISIONING_EVENTS, "PROVISIONING_WEBHOOK_URL")]
        data = EventDeliveryInput(event_id=activated.event_id, tenant_id=tenant)
        (delivery_id,) = await ActivityEnvironment().run(
            EventActivities(events, before).open_event_deliveries, data
        )
        after = [EventEndpoint(app.url, EVENTS_SECRET), *before]
        status = await ActivityEnvironment().run(
            EventActivities(events, after).deliver_event, delivery_id
        )
        await repository.transition(
            TransitionInput(
                tenant_id=tenant,
                from_states=[TenantState.ACTIVE],
                to_state=TenantState.SUSPENDED,
                operation="suspend",
                workflow_id="w-suspend",
                actor="test",
                entitlements={"users": 0},
            )
        )
        suspended = (await events.events(tenant))[-1]
        data = EventDeliveryInput(event_id=suspended.event_id, tenant_id=tenant)
        (pending,) = await ActivityEnvironment().run(
            EventActivities(events, before).open_event_deliveries, data
        )
        with pytest.raises(ApplicationError) as removed:  # the webhook left the settings
            await ActivityEnvironment().run(
                EventActivities(events, after[:1]).deliver_event, pending
            )
    assert status == 200 and app.requests == []
    (request,) = hook.requests
    assert request["valid"] and request["event"]["data"]["entitlements"] == {"users": 3}
    assert (removed.value.type, removed.value.non_retryable) == ("EventEndpointRemoved", True)


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
