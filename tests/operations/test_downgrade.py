"""Downgrade at period end (durable timer) and immediately, in the time-skipping test server."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.plan_changes import UsageExceedsLimits
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TransitionInput
from tests.support.fixtures import make_settings, running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded, replay, sync_clock
from tests.support.stripe_server import StripeServer
from workflows.downgrade import DowngradeWorkflow, next_anniversary


async def wait_for_step(lc: LifecycleClient, workflow_id: str, step: str) -> None:
    """Poll the operations table until the workflow reached ``step`` (time runs normally
    until the test awaits the result, so the period-end timer cannot pass meanwhile)."""
    for _ in range(400):
        op = await lc.repository.operation(workflow_id)
        if op is not None and op.step == step:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{workflow_id} never reached {step}: {op}")


def pending_events(events: list) -> list[tuple]:
    return [
        (e.detail.get("step"), e.detail.get("cleared"), e.detail.get("reason"))
        for e in events
        if e.operation == "downgrade" and e.to_state is None and "pending" in e.detail["step"]
    ]


async def test_downgrade_at_period_end_waits_30_days_then_bills_without_proration(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    now = await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional", {"users": 8, "storage_gb": 5})
        sub = stripe_server.subscriptions[tenant.billing_subscription_id]
        period_end = datetime.fromtimestamp(sub["items"]["data"][0]["current_period_end"], UTC)

        started = await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "starter")
        assert started.workflow_id == f"tenant-{tenant.tenant_id}-downgrade"
        await wait_for_step(lc, started.workflow_id, "waiting-for-period-end")
        waiting = await lc.get_tenant(tenant.tenant_id)
        assert waiting.state is TenantState.ACTIVE and waiting.plan == "professional"
        assert waiting.pending_plan_change is not None
        assert waiting.pending_plan_change["to_plan"] == "starter"
        assert waiting.pending_plan_change["effective_at"] == period_end.isoformat()
        progress = await lc.core.handle(started.workflow_id).query(DowngradeWorkflow.progress)
        assert progress.step == "waiting-for-period-end"
        assert stripe_server.price_changes == []  # nothing billed before the period ends

        result = await finish(time_env, lc, started.workflow_id)  # skips the 30 days

        assert result["outcome"] == "changed" and result["effective_at"] == period_end.isoformat()
        assert datetime.fromisoformat(result["applied_at"]) >= period_end
        assert period_end - now > timedelta(days=29)  # the timer really was that long
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.state, after.plan, after.pending_plan_change) == (
            TenantState.ACTIVE,
            "starter",
            None,
        )
        assert after.entitlements == lc.settings.plans.get("starter").limits.as_dict()
        assert [(c["to"], c["proration_behavior"]) for c in stripe_server.price_changes] == [
            ("price_starter", "none")
        ]
        assert stripe_server.prorations == []
        events = await lc.repository.events(tenant.tenant_id)
        transitions = [(e.from_state, e.to_state) for e in events if e.operation == "downgrade"]
        assert transitions == [
            (None, None),  # pending plan change set
            ("ACTIVE", "DOWNGRADING"),
            (None, None),  # entitlements reduced
            ("DOWNGRADING", "ACTIVE"),
        ]
        await replay(lc, started.workflow_id)


async def test_immediate_downgrade_credits_proration(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "enterprise", {"users": 40})
        started = await lc.plan_changes.downgrade_tenant(
            tenant.tenant_id, "professional", "immediately"
        )
        result = await lc.core.handle(started.workflow_id).result()
        assert result["plan"] == "professional" and result["effective"] == "immediately"
        assert [(c["to"], c["proration_behavior"]) for c in stripe_server.price_changes] == [
            ("price_professional", "create_prorations")
        ]
        assert stripe_server.prorations[0]["amount"] < 0  # a credit for the rest of the period
        assert (await lc.get_tenant(tenant.tenant_id)).pending_plan_change is None


async def test_cancel_during_the_wait_changes_nothing(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Limited mode: the period ends on the monthly anniversary of the tenant's creation."""
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "starter")
        started = await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "free")
        await wait_for_step(lc, started.workflow_id, "waiting-for-period-end")
        pending = (await lc.get_tenant(tenant.tenant_id)).pending_plan_change
        # the created_at anniversary after the workflow's now (ahead after earlier timers)
        expected = next_anniversary(tenant.created_at, await time_env.get_current_time())
        assert pending and pending["effective_at"] == expected.isoformat()
        assert expected.day == tenant.created_at.day or expected.day >= 28

        assert (
            await lc.plan_changes.cancel_downgrade(tenant.tenant_id, "ops") == started.workflow_id
        )
        result = await lc.core.handle(started.workflow_id).result()

        assert result["outcome"] == "cancelled" and result["cancelled_by"] == "ops"
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.plan, after.pending_plan_change) == ("starter", None)
        assert after.entitlements == lc.settings.plans.get("starter").limits.as_dict()
        events = await lc.repository.events(tenant.tenant_id)
        assert pending_events(events) == [
            ("pending-plan-change", None, None),
            ("pending-plan-change-cleared", True, "downgrade cancelled: cancelled on request"),
        ]
        assert events[-1].actor == "ops"
        with pytest.raises(StateConflict, match="no pending downgrade"):
            await lc.plan_changes.cancel_downgrade(tenant.tenant_id)


async def test_usage_grown_during_the_wait_refuses_at_period_end(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional", {"users": 10})
        started = await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "starter")
        await wait_for_step(lc, started.workflow_id, "waiting-for-period-end")
        await lc.plan_changes.record_usage(tenant.tenant_id, {"users": 30, "storage_gb": 40})

        with pytest.raises(WorkflowFailureError) as err:
            await finish(time_env, lc, started.workflow_id)
        assert "users 30 > 10, storage_gb 40 > 10" in str(err.value.cause)

        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.state, after.plan, after.pending_plan_change) == (
            TenantState.ACTIVE,
            "professional",
            None,
        )
        assert stripe_server.price_changes == []
        (_, cleared), *_ = [pending_events(await lc.repository.events(tenant.tenant_id))]
        assert cleared[1] is True and "refused at period end" in cleared[2]
        assert "users 30 > 10" in cleared[2]
        op = await lc.repository.operation(started.workflow_id)
        assert op and op.status == "failed" and op.step == "refused"


async def test_not_active_at_period_end_is_audited_without_change(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "professional")
        started = await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "free")
        await wait_for_step(lc, started.workflow_id, "waiting-for-period-end")
        await lc.repository.transition(
            TransitionInput(
                tenant_id=tenant.tenant_id,
                from_states=[TenantState.ACTIVE],
                to_state=TenantState.SUSPENDED,
                operation="suspend",
                workflow_id="test-suspend",
            )
        )
        with pytest.raises(WorkflowFailureError) as err:
            await finish(time_env, lc, started.workflow_id)
        assert "is SUSPENDED" in str(err.value.cause)
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.state, after.plan, after.pending_plan_change) == (
            TenantState.SUSPENDED,
            "professional",
            None,
        )
        cleared = pending_events(await lc.repository.events(tenant.tenant_id))[-1]
        assert "not applied at period end" in cleared[2] and "is SUSPENDED" in cleared[2]


async def test_upgrade_cancels_a_pending_downgrade(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "professional")
        downgrade = await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "starter")
        await wait_for_step(lc, downgrade.workflow_id, "waiting-for-period-end")

        upgrade = await lc.plan_changes.upgrade_tenant(tenant.tenant_id, "enterprise")
        assert (await lc.core.handle(upgrade.workflow_id).result())["plan"] == "enterprise"
        cancelled = await lc.core.handle(downgrade.workflow_id).result()

        assert (
            cancelled["outcome"] == "cancelled" and "superseded by upgrade" in cancelled["reason"]
        )
        after = await lc.get_tenant(tenant.tenant_id)
        assert (after.plan, after.pending_plan_change) == ("enterprise", None)
        assert [c["to"] for c in stripe_server.price_changes] == ["price_enterprise"]
        lock = next(
            e
            for e in await lc.repository.events(tenant.tenant_id)
            if e.operation == "upgrade" and e.to_state == "UPGRADING"
        )
        assert lock.detail["cancelled_pending_plan_change"]["to_plan"] == "starter"


async def test_downgrade_validation_before_start(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "professional", {"users": 50, "storage_gb": 40})
        with pytest.raises(InvalidInput, match="from 'professional' to 'enterprise'"):
            await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "enterprise")
        with pytest.raises(UsageExceedsLimits) as err:
            await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "starter")
        assert [str(v) for v in err.value.violations] == ["users 50 > 10", "storage_gb 40 > 10"]
        preview = await lc.plan_changes.downgrade_preview(tenant.tenant_id, "starter")
        assert not preview.allowed and preview.violations == err.value.violations
        assert await lc.repository.operation(f"tenant-{tenant.tenant_id}-downgrade") is None
