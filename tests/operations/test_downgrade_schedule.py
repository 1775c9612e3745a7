"""Period-end downgrades billed by a Stripe subscription schedule (issue 12, defect 8): the
schedule is created when the downgrade is scheduled, so a renewal before the workflow's timer
is already at the lower price; a cancel or a superseding upgrade releases it; the timer only
applies the entitlements and checks the price. Against the Stripe-compatible server, whose
test clock follows the time-skipping Temporal server."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.states import TenantState
from tests.operations.test_downgrade import wait_for_step
from tests.support.fixtures import running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded, sync_clock
from tests.support.stripe_server import StripeServer


def downgrade_calls(server: StripeServer, tenant_id: str) -> list[tuple[str, str, str]]:
    """(method, path, step of the key) of the downgrade's mutating calls, in order."""
    return [
        (e.method, e.path, (e.idempotency_key or "").split(":", 2)[2])
        for e in server.mutations()
        if (e.idempotency_key or "").startswith(f"tenant-{tenant_id}-downgrade:")
    ]


async def test_period_end_downgrade_is_billed_by_a_schedule_even_if_stripe_renews_first(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional", {"users": 8})
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        assert sub is not None
        item = stripe_server.subscriptions[sub]["items"]["data"][0]
        period_end = item["current_period_end"]

        started = await lc.plan_changes.downgrade_tenant(tid, "starter")
        await wait_for_step(lc, started.workflow_id, "waiting-for-period-end")
        schedule_id = stripe_server.subscriptions[sub]["schedule"]
        schedule = stripe_server.subscription_schedules[schedule_id]
        assert [(p["items"][0]["price"], p["end_date"]) for p in schedule["phases"]] == [
            ("price_professional", period_end),
            ("price_starter", period_end + 30 * 24 * 3600),
        ]
        pending = (await lc.get_tenant(tid)).pending_plan_change
        assert pending and pending["schedule_id"] == schedule_id
        assert downgrade_calls(stripe_server, tid) == [
            ("POST", "/v1/subscription_schedules", "schedule"),
            ("POST", f"/v1/subscription_schedules/{schedule_id}", "schedule-phases"),
        ]

        # Stripe renews before the workflow's timer fires: already at the lower price
        stripe_server.clock_offset += period_end - stripe_server.now() + 1
        await stripe_server.tick()
        assert stripe_server.item_price(sub) == "price_starter"
        assert [(c["to"], c["source"]) for c in stripe_server.price_changes] == [
            ("price_starter", "schedule")
        ]

        stripe_server.follow(time_env.get_current_time)
        result = await finish(time_env, lc, started.workflow_id)
        assert result["plan"] == "starter"
        assert result["billing"]["detail"]["changed"] is False  # checked, nothing to change
        after = await lc.get_tenant(tid)
        assert (after.state, after.plan, after.pending_plan_change) == (
            TenantState.ACTIVE,
            "starter",
            None,
        )
        # no price change by the timer; the applied schedule released
        assert [c[2] for c in downgrade_calls(stripe_server, tid)] == [
            "schedule",
            "schedule-phases",
            "release-schedule",
        ]
        assert stripe_server.subscriptions[sub]["schedule"] is None
        assert stripe_server.prorations == []


async def test_cancelling_a_scheduled_downgrade_releases_its_schedule(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    stripe_server.follow(time_env.get_current_time)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional")
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        assert sub is not None
        started = await lc.plan_changes.downgrade_tenant(tid, "starter")
        await wait_for_step(lc, started.workflow_id, "waiting-for-period-end")
        schedule_id = stripe_server.subscriptions[sub]["schedule"]

        await lc.plan_changes.cancel_downgrade(tid, "ops")
        result = await finish(time_env, lc, started.workflow_id)

        assert result["outcome"] == "cancelled"
        assert stripe_server.subscription_schedules[schedule_id]["status"] == "released"
        assert stripe_server.subscriptions[sub]["schedule"] is None
        assert downgrade_calls(stripe_server, tid)[-1] == (
            "POST",
            f"/v1/subscription_schedules/{schedule_id}/release",
            "release-schedule",
        )
        stripe_server.follow(None)  # two periods later the price is still the old one
        stripe_server.clock_offset += 61 * 24 * 3600
        await stripe_server.tick()
        assert stripe_server.item_price(sub) == "price_professional"
        assert stripe_server.price_changes == []


async def test_a_superseding_upgrade_releases_the_schedule(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    stripe_server.follow(time_env.get_current_time)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional")
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        assert sub is not None
        downgrade = await lc.plan_changes.downgrade_tenant(tid, "starter")
        await wait_for_step(lc, downgrade.workflow_id, "waiting-for-period-end")
        schedule_id = stripe_server.subscriptions[sub]["schedule"]

        upgrade = await lc.plan_changes.upgrade_tenant(tid, "enterprise")
        await finish(time_env, lc, upgrade.workflow_id)
        cancelled = await finish(time_env, lc, downgrade.workflow_id)

        assert "superseded by upgrade" in cancelled["reason"]
        assert stripe_server.subscription_schedules[schedule_id]["status"] == "released"
        stripe_server.follow(None)
        stripe_server.clock_offset += 61 * 24 * 3600
        await stripe_server.tick()
        assert stripe_server.item_price(sub) == "price_enterprise"
        assert [c["to"] for c in stripe_server.price_changes] == ["price_enterprise"]


async def test_a_downgrade_refused_at_period_end_puts_the_price_back(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    stripe_server.follow(time_env.get_current_time)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional", {"users": 10})
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        assert sub is not None
        started = await lc.plan_changes.downgrade_tenant(tid, "starter")
        await wait_for_step(lc, started.workflow_id, "waiting-for-period-end")
        schedule_id = stripe_server.subscriptions[sub]["schedule"]
        await lc.plan_changes.record_usage(tid, {"users": 30})

        with pytest.raises(WorkflowFailureError):
            await finish(time_env, lc, started.workflow_id)

        # the schedule moved the price at the period end; the refusal put it back
        assert [(c["to"], c["source"]) for c in stripe_server.price_changes] == [
            ("price_starter", "schedule"),
            ("price_professional", "api"),
        ]
        assert stripe_server.item_price(sub) == "price_professional"
        assert stripe_server.subscription_schedules[schedule_id]["status"] == "released"
        after = await lc.get_tenant(tid)
        assert (after.plan, after.pending_plan_change) == ("professional", None)
