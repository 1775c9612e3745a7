"""The downgrade workflow with mocked activities, on the time-skipping test server: refused
when usage exceeds the target plan's limits, immediately or when the period-end timer fires.
The same operation against real servers: tests/operations/test_downgrade.py."""

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.plan_changes import plan_change_input
from lifecycle.domain.plans import load_plans
from lifecycle.domain.states import TenantState
from tests.support.mocked_activities import FakeTenant, mocked_worker, tenant_view
from workflows.downgrade import DowngradeWorkflow, next_anniversary

PLANS = load_plans()
STARTER, PROFESSIONAL = PLANS.get("starter"), PLANS.get("professional")
OVER_STARTER = {"users": 50, "storage_gb": 40, "projects": 1}  # starter: 10 users, 10 GB


def professional_tenant() -> FakeTenant:
    return FakeTenant(tenant_view("acme", "professional", PROFESSIONAL.limits.as_dict()))


async def test_immediate_downgrade_over_the_limits_is_refused_before_any_change(
    time_env: WorkflowEnvironment,
) -> None:
    fake = professional_tenant()
    activities = fake.activities() + fake.provisioning() + fake.billing()
    activities += fake.usage(OVER_STARTER)
    data = plan_change_input(PLANS, "acme", "professional", STARTER, effective="immediately")
    async with mocked_worker(time_env.client, [DowngradeWorkflow], activities) as tq:
        with pytest.raises(WorkflowFailureError) as err:
            await time_env.client.execute_workflow(
                DowngradeWorkflow.run, data, id="tenant-acme-downgrade", task_queue=tq
            )

    assert fake.calls == [
        ("record_operation", "usage-check", "running"),
        ("current_usage",),
        ("record_operation", "refused", "failed"),
    ]
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UsageExceedsLimits"
    assert cause.non_retryable
    assert "users 50 > 10" in cause.message and "storage_gb 40 > 10" in cause.message
    violations = cause.details[0]["violations"]
    assert [(v["resource"], v["usage"], v["limit"]) for v in violations] == [
        ("users", 50, 10),
        ("storage_gb", 40, 10),
    ]
    # never locked, provisioned or billed: still ACTIVE on professional
    assert fake.tenant.state == TenantState.ACTIVE and fake.tenant.plan == "professional"
    assert fake.tenant.entitlements == PROFESSIONAL.limits.as_dict()


async def test_usage_grown_while_waiting_refuses_at_period_end(
    time_env: WorkflowEnvironment,
) -> None:
    """The durable timer runs to the period end (skipped in milliseconds); usage is checked
    again then, the change refused and the pending change cleared."""
    fake = professional_tenant()
    started = await time_env.get_current_time()
    period_end = started + timedelta(days=30)
    activities = fake.activities() + fake.provisioning() + fake.billing(period_end=period_end)
    activities += fake.usage(OVER_STARTER)
    data = plan_change_input(PLANS, "acme", "professional", STARTER, effective="period_end")
    async with mocked_worker(time_env.client, [DowngradeWorkflow], activities) as tq:
        with pytest.raises(WorkflowFailureError) as err:
            await time_env.client.execute_workflow(
                DowngradeWorkflow.run, data, id="tenant-acme-downgrade", task_queue=tq
            )
        assert await time_env.get_current_time() >= period_end

    assert fake.calls == [
        ("record_operation", "scheduling", "running"),
        ("get_tenant",),
        ("current_period",),
        ("schedule_price_change", STARTER.price_id),
        ("set_pending_plan_change", "starter"),
        ("record_operation", "waiting-for-period-end", "running"),
        # the timer fired
        ("record_operation", "usage-check", "running"),
        ("current_usage",),
        ("release_schedule", "sub_sched_1"),
        ("get_tenant",),
        ("change_price", PROFESSIONAL.price_id, "undo"),  # the schedule's price put back
        ("set_pending_plan_change", None),  # cleared
        ("record_operation", "refused", "failed"),
    ]
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "UsageExceedsLimits"
    assert fake.tenant.pending_plan_change is None
    assert fake.tenant.state == TenantState.ACTIVE and fake.tenant.plan == "professional"


def test_next_anniversary_clamps_to_month_end() -> None:
    jan31 = datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert next_anniversary(jan31, datetime(2025, 2, 1, tzinfo=UTC)) == datetime(
        2025, 2, 28, 12, tzinfo=UTC
    )
    assert next_anniversary(jan31, datetime(2025, 12, 31, 12, tzinfo=UTC)) == datetime(
        2026, 1, 31, 12, tzinfo=UTC
    )
    future = datetime(2030, 5, 1, tzinfo=UTC)
    assert next_anniversary(future, jan31) == future
