"""Outbound lifecycle events (issue 17, item 5): the outbox written with each audit row, the
per-tenant sequence, signed delivery by EventDeliveryWorkflow with retries, exactly one POST
per event under activity retries, failed deliveries and redelivery, and the sample
application's receiver enforcing suspension end to end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiohttp import web
from temporalio.testing import WorkflowEnvironment

from activities.events import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.dev.adtech.receiver import (
    access_metadata,
    apply_event,
    is_read_only,
    receiver_app,
)
from lifecycle.dev.devserver import free_port
from lifecycle.domain.events import DeliveryOutcome
from lifecycle.domain.onboarding import OnboardRequest
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from lifecycle.faults import FAULT_ENV
from lifecycle.persistence.engine import create_engine
from tests.operations.test_crash import client_for, target
from tests.support.crash import worker_process
from tests.support.fixtures import make_settings, running_stack, uid
from tests.support.plan_fixtures import finish
from tests.support.tenant_data import new_tenant

SECRET = "whsec-events-test"


class Receiver:
    """An application endpoint that verifies each event's signature; ``statuses`` are the
    answers to give, in order, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
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
        """The tenant's events in sequence order, as a receiver orders them: each event has
        its own delivery workflow, so arrival order is not promised (a CI run saw
        ``tenant.suspended`` arrive before ``tenant.activated``)."""
        mine = [r["event"] for r in self.requests if r["event"]["tenant_id"] == tenant_id]
        return sorted(mine, key=lambda e: e["sequence"])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/events", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/events"  # type: ignore[union-attr]
    yield recv
    await runner.cleanup()


async def onboard(lc: LifecycleClient, data_key: str | None = None) -> str:
    tenant_id = uid("ev")
    started = await lc.onboarding.onboard_tenant(
        OnboardRequest(
            tenant_id=tenant_id,
            name=tenant_id,
            email="ops@ev.io",
            plan="starter",
            data_key=data_key,
        )
    )
    await lc.core.handle(started.workflow_id).result()
    return tenant_id


async def deliver_all(env: WorkflowEnvironment, lc: LifecycleClient) -> list[DeliveryOutcome]:
    """Relay every pending outbox event and wait for each delivery workflow's result."""
    events = await lc.outbound_events.repository.undispatched()
    assert await lc.outbound_events.dispatch_pending() == len(events)
    return [
        DeliveryOutcome.model_validate(
            await finish(env, lc, workflow_id(e.tenant_id, OperationKind.EVENT, str(e.event_id)))
        )
        for e in events
    ]


async def suspend_and_reactivate(
    env: WorkflowEnvironment, lc: LifecycleClient, tenant: str
) -> None:
    started = await lc.suspension.suspend_tenant(tenant, SuspendRequest(reason="unpaid"))
    await finish(env, lc, started.workflow_id)
    started = await lc.reactivation.reactivate_tenant(tenant, ReactivateRequest())
    await finish(env, lc, started.workflow_id)


async def test_each_transition_is_delivered_signed_with_a_per_tenant_sequence(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, event_webhook_urls=receiver.url, event_webhook_secret=SECRET)
    async with running_stack(time_env, settings) as lc:
        first, second = await onboard(lc), await onboard(lc)
        await suspend_and_reactivate(time_env, lc, first)
        await deliver_all(time_env, lc)
        await suspend_and_reactivate(time_env, lc, first)
        await deliver_all(time_env, lc)
        deliveries = await lc.outbound_events.deliveries(tenant_id=first)

    assert all(r["valid"] for r in receiver.requests)
    assert all(str(r["event"]["sent_at"]) == r["timestamp"] for r in receiver.requests)
    events = receiver.events(first)
    assert [e["type"] for e in events] == [
        "tenant.activated",
        "tenant.suspended",
        "tenant.reactivated",
        "tenant.suspended",
        "tenant.reactivated",
    ]
    assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["sequence"] for e in receiver.events(second)] == [1]
    assert events[1]["data"]["detail"]["reason"] == "unpaid"
    assert events[1]["data"]["to_state"] == TenantState.SUSPENDED.value
    assert {r["key"] for r in receiver.requests if r["event"]["tenant_id"] == first} == {
        f"event-{e['id']}" for e in events
    }
    assert {d.status for d in deliveries} == {"delivered"}
    assert [d.attempts for d in deliveries] == [1] * 5


async def test_a_receiver_failing_then_recovering_gets_the_event_once_it_is_back(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, event_webhook_urls=receiver.url, event_webhook_secret=SECRET)
    async with running_stack(time_env, settings) as lc:
        receiver.statuses = [503, 500, 400]  # down, broken, then a bad deploy: all retried
        tenant = await onboard(lc)
        (outcome,) = await deliver_all(time_env, lc)
        (delivery,) = await lc.outbound_events.deliveries(tenant_id=tenant)

    assert outcome.delivered == [delivery.delivery_id] and outcome.failed == []
    assert [r["event"]["type"] for r in receiver.requests] == ["tenant.activated"] * 4
    assert len({r["key"] for r in receiver.requests}) == 1
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)


async def test_an_activity_retried_after_the_post_does_not_deliver_twice(
    time_env: WorkflowEnvironment,
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(tmp_path, event_webhook_urls=receiver.url, event_webhook_secret=SECRET)
    async with running_stack(time_env, settings) as lc:
        tenant = await onboard(lc)
        monkeypatch.setenv(FAULT_ENV, "raise:events.after_deliver")  # fails after the POST
        (outcome,) = await deliver_all(time_env, lc)
        (delivery,) = await lc.outbound_events.deliveries(tenant_id=tenant)

    assert outcome.delivered == [delivery.delivery_id]
    assert len(receiver.requests) == 1
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


async def test_a_delivery_out_of_retries_is_listed_failed_and_redelivered_on_request(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(
        tmp_path,
        event_webhook_urls=receiver.url,
        event_webhook_secret=SECRET,
        event_delivery_retry_days=0.01,  # 14.4 minutes of retries
    )
    async with running_stack(time_env, settings) as lc:
        receiver.statuses = [503] * 1000
        tenant = await onboard(lc)
        (outcome,) = await deliver_all(time_env, lc)
        (failed,) = await lc.outbound_events.deliveries(status="failed")
        assert outcome.failed == [failed.delivery_id]
        assert failed.tenant_id == tenant and failed.attempts == len(receiver.requests) > 3
        assert "503" in (failed.last_error or "")

        receiver.statuses = []
        started = await lc.outbound_events.redeliver(failed.event_id)
        assert started.deliveries == [failed.delivery_id]
        await finish(time_env, lc, started.workflow_id)
        assert await lc.outbound_events.deliveries(status="failed") == []
        (delivered,) = await lc.outbound_events.deliveries(tenant_id=tenant)
    assert delivered.status == "delivered"
    assert receiver.requests[-1]["event"]["id"] == failed.event_id


async def test_concurrent_audit_rows_of_one_tenant_get_gap_free_sequences(
    time_env: WorkflowEnvironment, tmp_path: Path, pg_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=pg_url)
    async with running_stack(time_env, settings) as lc:
        tenant = await onboard(lc)
        await asyncio.gather(
            *(
                lc.repository.record_event(
                    tenant, "dunning-step", workflow_id=f"w{i}", detail={"step": i}
                )
                for i in range(20)
            )
        )
        events = await lc.outbound_events.events(tenant)
    assert [e.sequence for e in events] == list(range(1, 22))
    assert [e.type for e in events] == ["tenant.activated"] + ["tenant.dunning_step"] * 20


async def test_the_sample_application_goes_read_only_while_suspended(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            receiver_app(app_engine, SECRET), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    settings = make_settings(
        tmp_path,
        event_webhook_urls=f"http://127.0.0.1:{port}/lifecycle-events",
        event_webhook_secret=SECRET,
    )
    try:
        async with running_stack(time_env, settings) as lc:
            tenant = await onboard(lc, data_key="7")
            started = await lc.suspension.suspend_tenant(tenant, SuspendRequest(reason="unpaid"))
            await finish(time_env, lc, started.workflow_id)
            await deliver_all(time_env, lc)
            suspended = await is_read_only(app_engine, "7")
            started = await lc.reactivation.reactivate_tenant(tenant, ReactivateRequest())
            await finish(time_env, lc, started.workflow_id)
            await deliver_all(time_env, lc)
            reactivated = await is_read_only(app_engine, "7")
            # the suspension again (a late retry): older than what was applied, it changes nothing
            (suspension,) = [
                e for e in await lc.outbound_events.events(tenant) if e.type == "tenant.suspended"
            ]
            late = await apply_event(app_engine, suspension.body(0))
            assert late == "ignored: already applied"
            assert not await is_read_only(app_engine, "7")
    finally:
        server.should_exit = True
        await task
        await app_engine.dispose()
    assert (suspended, reactivated) == (True, False)


async def test_the_sample_application_follows_the_read_only_entitlement(tmp_path: Path) -> None:
    """Dunning's ``read_only`` step reaches the application as entitlements: read-only from
    the event that carries ``read_only = 1`` (through a plan change) until one without it."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(access_metadata.create_all)

    def event(sequence: int, type_: str, **entitlements: int) -> dict[str, Any]:
        data = {"data_key": "9", "entitlements": entitlements}
        return {"id": sequence, "type": type_, "tenant_id": "t", "sequence": sequence, "data": data}

    try:
        outcomes = [
            await apply_event(engine, event(1, "tenant.activated", users=5)),
            await apply_event(
                engine, event(2, "tenant.entitlements_changed", users=5, read_only=1)
            ),
            await apply_event(engine, event(3, "tenant.plan_changed", users=50, read_only=1)),
            await apply_event(engine, event(4, "tenant.dunning_step", users=50, read_only=1)),
            await apply_event(engine, event(5, "tenant.entitlements_changed", users=50)),
        ]
    finally:
        await engine.dispose()
    assert outcomes == ["read-write", "read-only", "read-only", "read-only", "read-write"]


async def test_the_relay_delivers_new_events_without_being_asked(
    time_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path, event_webhook_urls=receiver.url, event_webhook_secret=SECRET)
    async with running_stack(time_env, settings) as lc:
        relay = asyncio.create_task(lc.outbound_events.relay(0.05))
        try:
            tenant = await onboard(lc)
            for _ in range(400):
                if receiver.events(tenant):
                    break
                await asyncio.sleep(0.025)
        finally:
            relay.cancel()
        assert await lc.outbound_events.repository.undispatched() == []
    assert [e["type"] for e in receiver.events(tenant)] == ["tenant.activated"]


async def test_a_worker_killed_right_after_a_delivery_does_not_deliver_it_again(
    dev_env: WorkflowEnvironment, tmp_path: Path, receiver: Receiver
) -> None:
    """SIGKILL of a worker process (with its relay) right after the delivery was recorded:
    the activity is retried by another worker and POSTs nothing more."""
    settings = make_settings(
        tmp_path,
        temporal_address=target(dev_env),
        event_webhook_urls=receiver.url,
        event_webhook_secret=SECRET,
        event_dispatch_interval_seconds=0.1,
    )
    tenant = uid("kill")
    async with client_for(settings, dev_env.client) as lc:
        async with worker_process(settings, tmp_path / "w1.log", "events.after_deliver") as w1:
            await new_tenant(lc, tenant)
            await w1.wait_killed()
        assert len(receiver.requests) == 1
        (event,) = await lc.outbound_events.events(tenant)
        async with worker_process(settings, tmp_path / "w2.log"):
            wid = workflow_id(tenant, OperationKind.EVENT, str(event.event_id))
            outcome = DeliveryOutcome.model_validate(await lc.core.handle(wid).result())
        (delivery,) = await lc.outbound_events.deliveries(tenant_id=tenant)
    assert outcome.delivered == [delivery.delivery_id]
    assert len(receiver.requests) == 1 and receiver.requests[0]["valid"]
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
