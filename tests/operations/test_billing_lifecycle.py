"""Billing across repeated operations of one tenant, against the Stripe-compatible server:
deterministic workflow ids are reused, idempotency keys must not be (a stored answer of the
first run would silently skip the second run's call)."""

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.support.fixtures import running_stack
from tests.support.plan_fixtures import billing_settings, onboarded
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import skip_to_result, wait_state


async def test_second_deletion_cancels_the_new_subscription(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "starter", prefix="twice")
        tid, first_sub = tenant.tenant_id, tenant.billing_subscription_id
        assert stripe_server.subscriptions[first_sub]["status"] == "active"

        await lc.deletion.delete_tenant(tid, DeleteRequest(requested_by="dpo@x.io"))
        await wait_state(lc, tid, TenantState.DELETED)
        assert stripe_server.subscriptions[first_sub]["status"] == "canceled"
        await lc.reactivation.reactivate_tenant(tid, ReactivateRequest())
        await skip_to_result(time_env, lc.core.handle(f"tenant-{tid}-deletion"))
        second_sub = (await lc.get_tenant(tid)).billing_subscription_id
        assert second_sub != first_sub
        assert stripe_server.subscriptions[second_sub]["status"] == "active"

        await lc.deletion.delete_tenant(tid, DeleteRequest(requested_by="dpo@x.io"))
        await wait_state(lc, tid, TenantState.DELETED)
        assert stripe_server.subscriptions[second_sub]["status"] == "canceled"
        keys = [e.idempotency_key for e in stripe_server.mutations()]
        assert all(keys) and len(keys) == len(set(keys)), keys


async def test_reactivation_after_suspension_keeps_and_moves_the_subscription(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "starter", prefix="susp")
        tid, sub = tenant.tenant_id, tenant.billing_subscription_id
        started = await lc.suspension.suspend_tenant(tid, SuspendRequest(reason="abuse"))
        await skip_to_result(time_env, lc.core.handle(started.workflow_id))
        started = await lc.reactivation.reactivate_tenant(
            tid, ReactivateRequest(plan="professional")
        )
        await skip_to_result(time_env, lc.core.handle(started.workflow_id))
        after = await lc.get_tenant(tid)
        assert after.state is TenantState.ACTIVE and after.plan == "professional"
        assert after.billing_subscription_id == sub
        assert stripe_server.subscriptions[sub]["status"] == "active"
        assert stripe_server.item_price(sub) == "price_professional"
