"""Upgrade saga in the time-skipping test server, billing through the Stripe test server."""

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.plan_changes import PendingChangeInput
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TenantView, TransitionInput
from tests.support.fixtures import make_settings, running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded, replay
from tests.support.stripe_server import StripeServer

ITEMS = "/v1/subscription_items/"


def limits(lc, plan: str) -> dict[str, int]:
    return lc.settings.plans.get(plan).limits.as_dict()


async def test_upgrade_provisions_then_bills_with_proration(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "starter")
        sub = tenant.billing_subscription_id
        assert sub and stripe_server.item_price(sub) == "price_starter"

        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "professional")
        assert started.workflow_id == f"tenant-{tenant.tenant_id}-upgrade"
        result = await lc.core.handle(started.workflow_id).result()

        assert result["outcome"] == "changed" and result["plan"] == "professional"
        after = await lc.get_tenant(tenant.tenant_id)
        assert after.state is TenantState.ACTIVE and after.plan == "professional"
        assert after.entitlements == limits(lc, "professional")
        # server side: the item is on the new price, changed once, with proration
        assert stripe_server.item_price(sub) == "price_professional"
        changes = [
            (c["from"], c["to"], c["proration_behavior"]) for c in stripe_server.price_changes
        ]
        assert changes == [("price_starter", "price_professional", "create_prorations")]
        assert stripe_server.prorations[0]["amount"] > 0  # charge for the rest of the period
        assert all(e.idempotency_key for e in stripe_server.mutations())

        events = await lc.repository.events(tenant.tenant_id)
        upgrade = [e for e in events if e.operation == "upgrade"]
        assert [(e.from_state, e.to_state, e.detail.get("step")) for e in upgrade] == [
            ("ACTIVE", "UPGRADING", None),
            (None, None, "provision-entitlements"),
            ("UPGRADING", "ACTIVE", None),
        ]
        assert upgrade[2].detail["billing"]["detail"]["previous_price"] == "price_starter"
        op = await lc.operation(started.workflow_id)
        assert op is not None and op.status == "completed" and op.step == "completed"
        # control-plane steps ran as local activities (markers); only the external calls
        # went through the task queue
        history = await lc.core.handle(started.workflow_id).fetch_history()
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        markers = [
            e.marker_recorded_event_attributes.marker_name
            for e in history.events
            if e.HasField("marker_recorded_event_attributes")
        ]
        assert scheduled == ["provision_entitlements", "change_price"]
        # read, the lock (recording its step), 2 recorded steps, the commit (recording the
        # operation completed): patch folded-steps
        assert markers.count("core_local_activity") == 5


async def test_card_declined_after_provisioning_compensates(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "starter")
        stripe_server.fail("POST", ITEMS, "card_declined")
        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "enterprise")
        with pytest.raises(WorkflowFailureError) as err:
            await lc.core.handle(started.workflow_id).result()
        assert "card declined" in str(err.value.cause)

        after = await lc.get_tenant(tenant.tenant_id)
        assert after.state is TenantState.ACTIVE and after.plan == "starter"
        assert after.entitlements == limits(lc, "starter")
        assert stripe_server.item_price(tenant.billing_subscription_id) == "price_starter"
        assert stripe_server.price_changes == []
        declined = [e for e in stripe_server.journal if e.path.startswith(ITEMS)]
        assert [e.status for e in declined] == [402]  # a decline is not retried

        events = await lc.repository.events(tenant.tenant_id)
        events = [e for e in events if e.operation == "upgrade"]
        steps = [(e.from_state, e.to_state, e.detail.get("step")) for e in events]
        assert steps == [
            ("ACTIVE", "UPGRADING", None),
            (None, None, "provision-entitlements"),
            (None, None, "restore-entitlements"),
            ("UPGRADING", "ACTIVE", None),
        ]
        unlock = events[-1].detail
        assert unlock["failed_step"] == "billing" and unlock["cause"]["type"] == "CardDeclined"
        assert "card declined" in unlock["reason"]
        assert unlock["compensations"] == [
            {"step": "revert-billing", "outcome": "nothing to undo"},
            {"step": "restore-entitlements", "outcome": "restored the starter entitlements"},
        ]
        op = await lc.operation(started.workflow_id)
        assert op is not None and op.status == "failed"
        assert op.result and op.result["outcome"] == "compensated"
        assert op.result["cause"]["type"] == "CardDeclined" and "card declined" in (op.error or "")
        await replay(lc, started.workflow_id)


async def test_timeout_after_commit_retries_with_same_key_and_bills_once(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """Stripe commits the change but the answer is lost (a crash from the activity's view):
    the retried activity sends the same idempotency key and gets the stored answer."""
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "free")
        stripe_server.fail("POST", ITEMS, "timeout_after_commit")
        stripe_server.fail("POST", ITEMS, "server_error")  # then one transient 500
        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "starter")
        result = await finish(time_env, lc, started.workflow_id)  # backoffs skipped
        assert result["plan"] == "starter"

        calls = [e for e in stripe_server.journal if e.path.startswith(ITEMS)]
        assert [(e.failure, e.status, e.replayed) for e in calls] == [
            ("timeout_after_commit", 200, False),
            ("server_error", 500, False),
            (None, 200, True),
        ]
        assert len({e.idempotency_key for e in calls}) == 1
        assert started.workflow_id in (calls[0].idempotency_key or "")
        assert len(stripe_server.price_changes) == 1 and len(stripe_server.prorations) == 1
        assert stripe_server.item_price(tenant.billing_subscription_id) == "price_starter"


async def test_later_upgrades_under_the_same_workflow_id_get_new_keys(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """Workflow ids are reused per tenant; idempotency keys are per run, so a later upgrade
    is not mistaken for a retry (Stripe would answer idempotency_error), and the operation
    row of the id starts afresh with each run."""
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "free")
        stripe_server.fail("POST", ITEMS, "card_declined")
        for plan in ("starter", "starter", "professional"):
            started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, plan)
            try:
                await lc.core.handle(started.workflow_id).result()
            except WorkflowFailureError:
                assert plan == "starter" and not stripe_server.price_changes
        keys = [e.idempotency_key for e in stripe_server.journal if e.path.startswith(ITEMS)]
        assert len(keys) == len(set(keys)) == 3
        assert [c["to"] for c in stripe_server.price_changes] == [
            "price_starter",
            "price_professional",
        ]
        op = await lc.operation(started.workflow_id)
        assert op is not None and op.result and op.result["from_plan"] == "starter"
        assert op.error is None  # not the first run's card decline


async def test_upgrade_tolerates_a_stale_pending_downgrade(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A pending change whose downgrade workflow is gone (e.g. terminated by an operator):
    the upgrade clears it and its cancel signal finds nothing to cancel."""
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "starter")
        stale = {"from_plan": "starter", "to_plan": "free", "workflow_id": "gone-downgrade"}
        await lc.repository.set_pending_plan_change(
            PendingChangeInput(
                tenant_id=tenant.tenant_id,
                change=stale,
                workflow_id="gone-downgrade",
                operation="downgrade",
                key="k",
            )
        )
        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "professional")
        assert (await lc.core.handle(started.workflow_id).result())["plan"] == "professional"
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.plan, after.pending_plan_change) == ("professional", None)


async def test_invalid_price_is_not_retried_and_compensates(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "starter")
        del stripe_server.prices["price_professional"]  # the plans file names a missing price
        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "professional")
        with pytest.raises(WorkflowFailureError):
            await lc.core.handle(started.workflow_id).result()
        calls = [e for e in stripe_server.journal if e.path.startswith(ITEMS)]
        assert [e.status for e in calls] == [400]
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "starter")
        op = await lc.repository.operation(started.workflow_id)
        assert op and op.result and op.result["cause"]["type"] == "InvalidBillingRequest"


async def test_upgrade_validation_before_start(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "professional")
        with pytest.raises(InvalidInput, match="from 'professional' to 'starter'"):
            await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "starter")
        with pytest.raises(InvalidInput, match="unknown plan 'gold'"):
            await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "gold")
        await lc.repository.transition(
            TransitionInput(
                tenant_id=tenant.tenant_id,
                from_states=[TenantState.ACTIVE],
                to_state=TenantState.SUSPENDED,
                operation="suspend",
                workflow_id="test",
            )
        )
        with pytest.raises(StateConflict, match="is SUSPENDED; upgrade needs ACTIVE"):
            await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "enterprise")


async def test_upgrade_in_limited_mode_skips_billing(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "free")
        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "enterprise")
        result = await lc.core.handle(started.workflow_id).result()
        assert result["billing"]["skipped"] is True and result["plan"] == "enterprise"
        after = await lc.get_tenant(tenant.tenant_id)
        assert after.entitlements == limits(lc, "enterprise")


async def _cancel_during_billing(
    lc, stripe_server: StripeServer, to_plan: str
) -> tuple[TenantView, str, BaseException]:
    """Onboard on starter, upgrade to ``to_plan`` with the price-change call held in flight by
    the Stripe server, cancel the upgrade (naming actor ``ops-alice``) while it is held;
    returns the tenant as onboarded, the workflow id and the workflow's error."""
    tenant = await onboarded(lc, "starter")
    stripe_server.fail("POST", ITEMS, "slow", seconds=3.0)
    started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, to_plan)
    for _ in range(400):
        if stripe_server.in_flight:
            break
        await asyncio.sleep(0.025)
    assert stripe_server.in_flight == 1, "the price change never reached the server"
    await lc.plan_changes.cancel_upgrade(tenant.tenant_id, "ops-alice", "customer changed mind")
    with pytest.raises(WorkflowFailureError) as err:
        await lc.core.handle(started.workflow_id).result()
    return tenant, started.workflow_id, err.value


async def test_cancel_during_the_billing_call_leaves_the_old_price(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """Defect 1: the in-flight price change commits after the cancel; compensation waits for
    it and then undoes it from Stripe's state, so the tenant is not billed the new price."""
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant, wid, _ = await _cancel_during_billing(lc, stripe_server, "enterprise")
        await asyncio.sleep(4)  # longer than the held call: nothing may commit afterwards
        sub = tenant.billing_subscription_id
        assert sub and stripe_server.item_price(sub) == "price_starter"
        changes = [(c["from"], c["to"]) for c in stripe_server.price_changes]
        assert changes == [
            ("price_starter", "price_enterprise"),
            ("price_enterprise", "price_starter"),
        ]
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "starter")
        assert after.entitlements == limits(lc, "starter")
        await replay(lc, wid)


async def test_a_cancelled_upgrade_ends_cancelled_with_the_actor_audited(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """Defect 2: workflow Canceled (not Failed), operation ``cancelled``, the unlocking audit
    row naming who cancelled, after the compensations."""
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant, wid, error = await _cancel_during_billing(lc, stripe_server, "professional")
        assert isinstance(error.__cause__, CancelledError)
        description = await lc.core.handle(wid).describe()
        assert description.status == WorkflowExecutionStatus.CANCELED
        op = await lc.operation(wid)
        assert op is not None and op.status == "cancelled" and op.step == "compensated"
        row = await lc.repository.operation(wid)
        assert row is not None and row.status == "cancelled"
        assert op.result and op.result["cancelled_by"] == "ops-alice"
        assert "cancelled by ops-alice at step billing" in (op.error or "")
        events = [
            e for e in await lc.repository.events(tenant.tenant_id) if e.operation == "upgrade"
        ]
        unlock = events[-1]
        assert (unlock.from_state, unlock.to_state, unlock.actor) == (
            "UPGRADING",
            "ACTIVE",
            "ops-alice",
        )
        assert unlock.detail["cancelled_by"] == "ops-alice"
        assert unlock.detail["cause"]["type"] == "Cancelled"
        assert [c["step"] for c in unlock.detail["compensations"]] == [
            "revert-billing",
            "restore-entitlements",
        ]


async def test_upgrade_after_an_automatic_downgrade_is_billed(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """Defect 3: the automatic downgrade cancels the subscription; a later upgrade creates a
    new one on the target price for the same customer (idempotency keys of the upgrade's
    step), instead of reporting billing "skipped: no subscription"."""
    settings = billing_settings(
        tmp_path, stripe_server, enable_auto_downgrade=True, payment_failure_grace_days=0
    )
    async with running_stack(time_env, settings) as lc:
        tenant = await onboarded(lc, "professional")
        await lc.billing_events.payment_failed(tenant.tenant_id, "in_1", "evt_1")
        handle = lc.core.handle(f"tenant-{tenant.tenant_id}-payment-failure")
        assert (await finish(time_env, lc, handle.id))["outcome"] == "downgraded to free"
        old = tenant.billing_subscription_id
        assert old and stripe_server.subscriptions[old]["status"] == "canceled"

        started = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "enterprise")
        result = await lc.core.handle(started.workflow_id).result()
        assert result["billing"]["skipped"] is False
        assert result["billing"]["detail"]["created"] is True
        after = await lc.get_tenant(tenant.tenant_id)
        sub = after.billing_subscription_id
        assert sub and sub != old and after.plan == "enterprise"
        assert stripe_server.item_price(sub) == "price_enterprise"
        assert stripe_server.subscriptions[sub]["customer"] == tenant.billing_customer_id
        assert len(stripe_server.customers) == 1
        created = [e for e in stripe_server.mutations() if e.path == "/v1/subscriptions"][-1]
        key = created.idempotency_key or ""
        assert key.startswith(f"{started.workflow_id}:") and key.endswith(":billing:subscription")
