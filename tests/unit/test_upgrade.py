"""The upgrade workflow's saga with mocked activities, on the time-skipping test server: the
order of its steps, its compensation in reverse order, and its refusal from a busy state.
The same operation against real servers: tests/operations/test_upgrade.py."""

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.plan_changes import PlanChangeInput, plan_change_input
from lifecycle.domain.plans import load_plans
from lifecycle.domain.states import TenantState
from tests.support.mocked_activities import FakeTenant, field, mocked_worker, tenant_view
from workflows.upgrade import UpgradeWorkflow

PLANS = load_plans()
STARTER, PROFESSIONAL = PLANS.get("starter"), PLANS.get("professional")


def upgrade_input() -> PlanChangeInput:
    return plan_change_input(PLANS, "acme", "starter", PROFESSIONAL)


def starter_tenant(**fields: object) -> FakeTenant:
    return FakeTenant(tenant_view("acme", "starter", STARTER.limits.as_dict(), **fields))


async def test_upgrade_provisions_then_bills_then_commits(time_env: WorkflowEnvironment) -> None:
    fake = starter_tenant()
    activities = fake.activities() + fake.provisioning() + fake.billing()
    async with mocked_worker(time_env.client, [UpgradeWorkflow], activities) as tq:
        result = await time_env.client.execute_workflow(
            UpgradeWorkflow.run, upgrade_input(), id="tenant-acme-upgrade", task_queue=tq
        )

    assert fake.calls == [
        ("get_tenant",),
        ("transition_tenant", "ACTIVE->UPGRADING", "lock", "running"),
        ("record_operation", "provision-entitlements", "running"),
        ("provision_entitlements", "professional"),
        ("record_operation", "billing", "running"),
        ("change_price", PROFESSIONAL.price_id, "do"),
        # the commit records the operation completed, in the transition's transaction
        ("transition_tenant", "UPGRADING->ACTIVE", "completed", "completed"),
    ]
    assert fake.operations[-1]["result"]["plan"] == "professional"
    assert field(result, "outcome") == "changed" and field(result, "plan") == "professional"
    assert fake.tenant.state == TenantState.ACTIVE and fake.tenant.plan == "professional"
    assert fake.tenant.entitlements == PROFESSIONAL.limits.as_dict()


async def test_declined_card_compensates_in_reverse_order(time_env: WorkflowEnvironment) -> None:
    fake = starter_tenant()
    billing = fake.billing(decline=PROFESSIONAL.price_id)
    activities = fake.activities() + fake.provisioning() + billing
    async with mocked_worker(time_env.client, [UpgradeWorkflow], activities) as tq:
        with pytest.raises(WorkflowFailureError) as err:
            await time_env.client.execute_workflow(
                UpgradeWorkflow.run, upgrade_input(), id="tenant-acme-upgrade", task_queue=tq
            )

    assert fake.calls == [
        ("get_tenant",),
        ("transition_tenant", "ACTIVE->UPGRADING", "lock", "running"),
        ("record_operation", "provision-entitlements", "running"),
        ("provision_entitlements", "professional"),
        ("record_operation", "billing", "running"),
        ("change_price", PROFESSIONAL.price_id, "do"),  # declined
        # undo in reverse: billing (registered last) first, then the entitlements
        ("change_price", STARTER.price_id, "undo"),
        ("provision_entitlements", "starter"),
        ("transition_tenant", "UPGRADING->ACTIVE", "compensated", "failed"),
    ]
    cause = err.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "CardDeclined"
    assert cause.non_retryable
    assert "upgrade from 'starter' to 'professional' failed at step billing" in cause.message
    assert "Your card was declined." in cause.message
    outcome = cause.details[0]
    assert outcome["outcome"] == "compensated" and outcome["failed_step"] == "billing"
    assert outcome["compensations"] == [
        {"step": "revert-billing", "outcome": "nothing to undo"},
        {"step": "restore-entitlements", "outcome": "restored the starter entitlements"},
    ]
    # back where it started: ACTIVE, on starter, with starter's limits
    assert fake.tenant.state == TenantState.ACTIVE and fake.tenant.plan == "starter"
    assert fake.tenant.entitlements == STARTER.limits.as_dict()
    assert fake.operations[-1]["result"]["compensations"] == outcome["compensations"]


async def upgrade_suspended(env: WorkflowEnvironment) -> tuple[FakeTenant, BaseException]:
    """The upgrade of a tenant that is SUSPENDED when the workflow locks it (it was ACTIVE
    when the client checked)."""
    fake = starter_tenant(state=TenantState.SUSPENDED)
    activities = fake.activities() + fake.provisioning() + fake.billing()
    async with mocked_worker(env.client, [UpgradeWorkflow], activities) as tq:
        with pytest.raises(WorkflowFailureError) as err:
            await env.client.execute_workflow(
                UpgradeWorkflow.run, upgrade_input(), id="tenant-acme-upgrade", task_queue=tq
            )
    assert err.value.cause is not None
    return fake, err.value.cause


async def test_upgrade_of_a_suspended_tenant_changes_nothing(
    time_env: WorkflowEnvironment,
) -> None:
    fake, cause = await upgrade_suspended(time_env)
    assert fake.calls[:2] == [
        ("get_tenant",),
        ("transition_tenant", "ACTIVE->UPGRADING", "lock", "running"),  # refused: SUSPENDED
    ]
    assert "provision_entitlements" not in fake.names() and "change_price" not in fake.names()
    assert isinstance(cause, ApplicationError) and cause.type == "StateConflict"
    assert cause.non_retryable and "SUSPENDED" in cause.message
    assert fake.tenant.state == TenantState.SUSPENDED and fake.tenant.plan == "starter"


async def test_a_refused_lock_records_the_operation_failed(
    time_env: WorkflowEnvironment,
) -> None:
    fake, cause = await upgrade_suspended(time_env)
    assert fake.calls[-1] == ("record_operation", "failed", "failed")
    assert isinstance(cause, ApplicationError) and cause.message.startswith("upgrade failed:")
