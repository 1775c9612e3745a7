"""Onboarding in the time-skipping test server with a real worker."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.onboarding import OnboardInput, OnboardRequest
from lifecycle.domain.operations import LIFECYCLE_OPERATION, TENANT_ID
from lifecycle.domain.states import TenantState
from tests.support.fixtures import make_settings, running_stack
from workflows.onboarding import OnboardingWorkflow


async def test_onboard_ends_active_with_entitlements_and_audit(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        started = await lc.onboarding.onboard_tenant(
            OnboardRequest(
                tenant_id="acme", name="Acme", email="ops@acme.example", plan="professional"
            )
        )
        assert started.workflow_id == "tenant-acme-onboard"
        result = await lc.core.handle(started.workflow_id).result()
        assert result["state"] == "ACTIVE"
        assert result["billing"]["skipped"] is True  # limited mode: no STRIPE_API_KEY

        tenant = await lc.get_tenant("acme")
        assert tenant.state is TenantState.ACTIVE and tenant.plan == "professional"
        assert tenant.entitlements == lc.settings.plans.get("professional").limits.as_dict()
        assert tenant.usage == {}
        events = await lc.repository.events("acme")
        assert [(e.operation, e.from_state, e.to_state) for e in events] == [
            ("onboard", None, "ACTIVE")
        ]
        op = await lc.operation(started.workflow_id)
        assert op is not None and op.status == "completed" and op.step == "completed"

        desc = await lc.core.handle(started.workflow_id).describe()
        assert desc.typed_search_attributes.get(TENANT_ID) == "acme"
        assert desc.typed_search_attributes.get(LIFECYCLE_OPERATION) == "onboard"

        with pytest.raises(StateConflict, match="already exists"):
            await lc.onboarding.onboard_tenant(
                OnboardRequest(tenant_id="acme", name="Again", email="x@acme.example")
            )


async def test_unknown_plan_rejected_before_start(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        with pytest.raises(InvalidInput, match="unknown plan 'gold'"):
            await lc.onboarding.onboard_tenant(
                OnboardRequest(tenant_id="gold-co", name="G", email="g@g.example", plan="gold")
            )
        assert not await lc.repository.exists("gold-co")


async def test_id_taken_during_onboarding_fails_without_second_tenant(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Two onboardings racing for one id: the row insert decides, the loser fails cleanly."""
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        req = OnboardRequest(tenant_id="dup", name="D", email="d@d.example")
        await lc.core.handle((await lc.onboarding.onboard_tenant(req)).workflow_id).result()
        plan = lc.settings.plans.get("free")
        racing = OnboardInput(request=req, limits=plan.limits.as_dict(), price_id=plan.price_id)
        with pytest.raises(WorkflowFailureError) as err:
            await time_env.client.execute_workflow(
                OnboardingWorkflow.run,
                racing,
                id="racing-onboarding",
                task_queue=lc.settings.temporal_task_queue,
            )
        assert "already exists" in str(err.value.cause)
        assert (await lc.repository.list())[1] == 1
        op = await lc.repository.operation("racing-onboarding")
        assert op is not None and op.status == "failed" and "already exists" in (op.error or "")


async def test_status_of_an_operation_no_worker_polls_answers_with_the_recorded_step(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """GET /operations/{id} of a running workflow whose worker is down took 30 s (the
    ``progress`` query waited for the server's default); it now answers after
    PROGRESS_QUERY_TIMEOUT with what the control plane recorded."""
    import asyncio

    from lifecycle.client.lifecycle import PROGRESS_QUERY_TIMEOUT, LifecycleClient

    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        unserved = make_settings(tmp_path, temporal_task_queue="no-worker-polls-this")
        orphan = LifecycleClient(unserved, time_env.client, lc.repository)
        started = await orphan.onboarding.onboard_tenant(
            OnboardRequest(tenant_id="orphan", name="O", email="o@orphan.example")
        )
        guard = PROGRESS_QUERY_TIMEOUT.total_seconds() + 8  # well under the old 30 s
        op = await asyncio.wait_for(orphan.operation(started.workflow_id), timeout=guard)
        assert op is not None and op.status == "running" and op.step is None
