"""Reactivation onto another plan passes the plan change's rules (issue 12, defect 4): a lower
plan is refused (422, every resource over its limits named) while usage exceeds it and billed
without proration; a higher plan gets the upgrade's proration (checked on the Stripe-compatible
server's journal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.plan_changes import UsageExceedsLimits
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.support.fixtures import make_settings, running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded, sync_clock
from tests.support.stripe_server import StripeServer


async def test_reactivation_onto_a_lower_plan_checks_usage(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "professional", usage={"users": 50, "storage_gb": 40})
        tid = tenant.tenant_id
        started = await lc.suspension.suspend_tenant(tid, SuspendRequest(reason="audit"))
        await finish(time_env, lc, started.workflow_id)

        with pytest.raises(UsageExceedsLimits) as err:
            await lc.reactivation.reactivate_tenant(tid, ReactivateRequest(plan="starter"))
        assert err.value.status == 422
        assert "users 50 > 10" in err.value.detail and "storage_gb 40 > 10" in err.value.detail
        assert [v.resource for v in err.value.violations] == ["users", "storage_gb"]
        after = await lc.get_tenant(tid)
        assert (after.state, after.plan) == (TenantState.SUSPENDED, "professional")

        await lc.plan_changes.record_usage(tid, {"users": 5, "storage_gb": 5})
        started = await lc.reactivation.reactivate_tenant(tid, ReactivateRequest(plan="starter"))
        await finish(time_env, lc, started.workflow_id)
        after = await lc.get_tenant(tid)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "starter")
        assert after.entitlements == lc.settings.plans.get("starter").limits.as_dict()


async def test_reactivation_onto_a_higher_plan_needs_no_usage_check(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "starter", usage={"users": 10})
        tid = tenant.tenant_id
        started = await lc.suspension.suspend_tenant(tid, SuspendRequest(reason="audit"))
        await finish(time_env, lc, started.workflow_id)
        started = await lc.reactivation.reactivate_tenant(tid, ReactivateRequest(plan="enterprise"))
        await finish(time_env, lc, started.workflow_id)
        after = await lc.get_tenant(tid)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "enterprise")


def resume_price_calls(server: StripeServer, tenant_id: str) -> list[tuple[str, str]]:
    """(price, proration_behavior) of the reactivation's price changes in the journal."""
    return [
        (e.params["price"], e.params["proration_behavior"])
        for e in server.mutations()
        if e.path.startswith("/v1/subscription_items/")
        and (e.idempotency_key or "").startswith(f"tenant-{tenant_id}-reactivate:")
    ]


async def test_reactivation_onto_a_higher_plan_is_prorated_like_an_upgrade(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "starter", usage={"users": 5})
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        assert sub is not None
        started = await lc.suspension.suspend_tenant(tid, SuspendRequest(reason="audit"))
        await finish(time_env, lc, started.workflow_id)

        started = await lc.reactivation.reactivate_tenant(tid, ReactivateRequest(plan="enterprise"))
        await finish(time_env, lc, started.workflow_id)

        assert resume_price_calls(stripe_server, tid) == [("price_enterprise", "create_prorations")]
        assert stripe_server.item_price(sub) == "price_enterprise"
        (proration,) = [p for p in stripe_server.prorations if p["subscription"] == sub]
        assert proration["amount"] > 0  # the rest of the period charged at the higher price
        after = await lc.get_tenant(tid)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "enterprise")


async def test_reactivation_onto_a_lower_plan_is_not_prorated(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "enterprise", usage={"users": 5})
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        assert sub is not None
        started = await lc.suspension.suspend_tenant(tid, SuspendRequest(reason="audit"))
        await finish(time_env, lc, started.workflow_id)

        started = await lc.reactivation.reactivate_tenant(tid, ReactivateRequest(plan="starter"))
        await finish(time_env, lc, started.workflow_id)

        assert resume_price_calls(stripe_server, tid) == [("price_starter", "none")]
        assert stripe_server.item_price(sub) == "price_starter"
        assert stripe_server.prorations == []
        after = await lc.get_tenant(tid)
        assert (after.state, after.plan) == (TenantState.ACTIVE, "starter")
