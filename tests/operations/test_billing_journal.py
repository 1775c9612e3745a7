"""One tenant walked through every operation with billing on, checked against the
Stripe-compatible server's journal (issue 12, defect 5): every mutating call (POST, DELETE)
carries an idempotency key, no key is shared by two different steps, and the calls are
exactly the expected ones, in order. Period-end downgrades are billed by a subscription
schedule (defect 8): scheduled, released on cancel, and no price call at the timer."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.operations.test_downgrade import wait_for_step
from tests.support.fixtures import running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded, sync_clock
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import make_app_data, wait_state


def schedule_calls(schedule_id: str, workflow_id: str) -> list[tuple[str, str, str, str]]:
    """The calls scheduling a period-end downgrade: the schedule, then its phases."""
    return [
        ("POST", "/v1/subscription_schedules", workflow_id, "schedule"),
        ("POST", f"/v1/subscription_schedules/{schedule_id}", workflow_id, "schedule-phases"),
    ]


async def test_every_mutating_billing_call_of_a_tenant_is_keyed_per_step(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    stripe_server.follow(time_env.get_current_time)  # schedules take effect in workflow time
    settings = billing_settings(tmp_path, stripe_server)
    async with running_stack(time_env, settings) as lc:
        tenant = await onboarded(lc, "starter")
        tid = tenant.tenant_id
        app = await make_app_data(tmp_path, settings.exports_dir, [tid])
        lc.settings.data_map_path = app.datamap
        sub, cus = tenant.billing_subscription_id, tenant.billing_customer_id
        item = stripe_server.subscriptions[sub]["items"]["data"][0]["id"]

        async def run(started: OperationStarted) -> None:
            await finish(time_env, lc, started.workflow_id)

        await run(await lc.plan_changes.upgrade_tenant(tid, "professional"))
        cancelled = await lc.plan_changes.downgrade_tenant(tid, "starter")
        await wait_for_step(lc, cancelled.workflow_id, "waiting-for-period-end")
        await lc.plan_changes.cancel_downgrade(tid, "ops")
        await run(cancelled)
        await run(await lc.plan_changes.downgrade_tenant(tid, "starter"))  # billed by schedule
        await run(await lc.plan_changes.downgrade_tenant(tid, "free", "immediately"))
        await run(await lc.suspension.suspend_tenant(tid, SuspendRequest(reason="audit")))
        await run(await lc.reactivation.reactivate_tenant(tid, ReactivateRequest()))
        await lc.deletion.delete_tenant(tid, DeleteRequest(requested_by="dpo@example.com"))
        await wait_state(lc, tid, TenantState.DELETED)
        result = await finish(time_env, lc, f"tenant-{tid}-deletion")  # retention skipped
        assert result["outcome"] == "purged"

        first_schedule, second_schedule = list(stripe_server.subscription_schedules)
        down = f"tenant-{tid}-downgrade"
        calls = stripe_server.mutations()
        assert all(e.idempotency_key for e in calls), [e.path for e in calls]
        steps = [(e.method, e.path, (e.idempotency_key or "").split(":", 2)) for e in calls]
        assert [(m, p, k[0], k[2]) for m, p, k in steps] == [
            ("POST", "/v1/customers", f"tenant-{tid}-onboard", "customer"),
            ("POST", "/v1/subscriptions", f"tenant-{tid}-onboard", "subscription"),
            ("POST", f"/v1/subscription_items/{item}", f"tenant-{tid}-upgrade", "billing"),
            *schedule_calls(first_schedule, f"tenant-{tid}-downgrade"),
            (
                "POST",
                f"/v1/subscription_schedules/{first_schedule}/release",
                down,
                "release-schedule",
            ),
            *schedule_calls(second_schedule, f"tenant-{tid}-downgrade"),
            (
                "POST",
                f"/v1/subscription_schedules/{second_schedule}/release",
                down,
                "release-schedule",
            ),
            ("POST", f"/v1/subscription_items/{item}", f"tenant-{tid}-downgrade", "billing"),
            ("DELETE", f"/v1/subscriptions/{sub}", f"tenant-{tid}-deletion", "cancel-subscription"),
            ("DELETE", f"/v1/customers/{cus}", f"tenant-{tid}-deletion", "delete-customer"),
        ]
        # a key belongs to one step: the same key never names two different requests
        by_key: dict[str, set[tuple[str, str]]] = {}
        for e in calls:
            by_key.setdefault(e.idempotency_key or "", set()).add((e.method, e.path))
        assert all(len(requests) == 1 for requests in by_key.values())
        assert len(by_key) == len(calls)
