"""``tenantctl tenants pause|resume`` and ``create --trial-days`` against the API over HTTP
(time-skipping server, billing in limited mode): paused until a date, shown as such, resumed
early; a trial shown with its end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.states import TenantState
from tests.cli.test_reading import invoke
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant, skip_to_result


async def test_pause_then_resume_early(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "API_TOKEN": "test-token", "COLUMNS": "200"}
    tenant = uid("pauser")
    async with running_stack(time_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        api = ["--api", str(http.base_url)]
        await new_tenant(lc, tenant)
        resume_at = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat()
        pause = ["tenants", "pause", tenant, "--reason", "winter", "--resume-at", resume_at]
        out = await invoke([*pause, "--wait", *api], env)
        assert f"until {resume_at}" in out and f"tenant-{tenant}-pause: paused" in out
        # --wait returned once paused: no polling needed
        assert (await lc.get_tenant(tenant)).state is TenantState.SUSPENDED
        shown = await invoke(["tenants", "show", tenant, *api], env)
        assert '"kind": "paused"' in shown and '"reason": "winter"' in shown

        out = await invoke(["tenants", "resume", tenant, "--wait", *api], env)
        assert f"resuming: workflow tenant-{tenant}-pause" in out and "resumed early" in out
        assert (await lc.get_tenant(tenant)).state is TenantState.ACTIVE
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{tenant}-pause"))
        assert result["outcome"] == "resumed early"


async def test_create_with_a_trial_shows_its_end(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "API_TOKEN": "test-token", "COLUMNS": "200"}
    tenant = uid("trier")
    async with running_stack(time_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        api = ["--api", str(http.base_url)]
        args = ["tenants", "create", tenant, "--name", "T", "--email", "t@t.io"]
        out = await invoke([*args, "--plan", "starter", "--trial-days", "14", *api], env)
        assert f"tenant-{tenant}-onboard" in out
        await lc.core.handle(f"tenant-{tenant}-onboard").result()
        shown = await invoke(["tenants", "show", tenant, *api], env)
        assert '"trial_ends_at": "' in shown and '"trial_ends_at": null' not in shown
        trial = await skip_to_result(time_env, lc.core.handle(f"tenant-{tenant}-trial"))
        assert trial["outcome"] == "downgraded to free"  # limited mode: no payment method known
