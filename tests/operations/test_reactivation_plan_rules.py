"""Reactivation onto another plan passes the plan change's rules (issue 12, defect 4): a lower
plan is refused (422, every resource over its limits named) while usage exceeds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.plan_changes import UsageExceedsLimits
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.support.fixtures import make_settings, running_stack
from tests.support.plan_fixtures import finish, onboarded


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
