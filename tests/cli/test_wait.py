"""``--wait`` on the mutating commands, against the API over HTTP with a real worker on the
Temporal dev server: each command follows its operation until it ends (or, for a soft
delete and a period-end downgrade, until it settles) and exits by the outcome; the
outcome mapping and the timeout on their own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import typer
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from lifecycle.cli.app import app as cli
from lifecycle.cli.waiting import EXIT_TIMEOUT, Snapshot, follow, operation_snapshot
from lifecycle.domain.states import TenantState
from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, serve_api, uid

runner = CliRunner()


async def test_wait_follows_every_operation_to_its_outcome(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    env = {"DATA_DIR": str(tmp_path / "data"), "API_TOKEN": "test-token", "COLUMNS": "200"}
    tenant = uid("wait")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:

        async def tenantctl(*args: str) -> str:
            argv = [*args, "--wait", "--timeout", "60", "--api", str(http.base_url)]
            result = await asyncio.to_thread(runner.invoke, cli, argv, env=env)
            assert result.exit_code == 0, (args, result.output)
            return " ".join(result.output.split())

        out = await tenantctl(
            "tenants", "create", tenant, "--name", "W", "--email", "w@w.io", "--data-key", "2"
        )
        assert f"tenant-{tenant}-onboard: completed" in out
        assert (await lc.get_tenant(tenant)).state is TenantState.ACTIVE

        await tenantctl("tenants", "upgrade", tenant, "--to", "professional")
        assert (await lc.get_tenant(tenant)).plan == "professional"

        out = await tenantctl("tenants", "downgrade", tenant, "--to", "starter")
        assert "scheduled: takes effect at" in out
        row = await lc.get_tenant(tenant)
        assert row.plan == "professional" and row.pending_plan_change is not None
        out = await tenantctl("tenants", "downgrade", tenant, "--cancel")
        assert f"tenant-{tenant}-downgrade: cancelled" in out
        assert (await lc.get_tenant(tenant)).pending_plan_change is None

        await tenantctl("tenants", "downgrade", tenant, "--to", "starter", "--immediately")
        assert (await lc.get_tenant(tenant)).plan == "starter"

        await tenantctl("tenants", "suspend", tenant, "--reason", "audit")
        assert (await lc.get_tenant(tenant)).state is TenantState.SUSPENDED
        await tenantctl("tenants", "reactivate", tenant)
        assert (await lc.get_tenant(tenant)).state is TenantState.ACTIVE

        out = await tenantctl("tenants", "delete", tenant, "--requested-by", "dpo")
        assert f"tenant-{tenant}-deletion: retained" in out
        assert (await lc.get_tenant(tenant)).state is TenantState.DELETED
        await tenantctl("tenants", "reactivate", tenant)  # an update of the deletion workflow
        assert (await lc.get_tenant(tenant)).state is TenantState.ACTIVE

        await tenantctl("tenants", "delete", tenant, "--requested-by", "dpo")
        assert (await lc.get_tenant(tenant)).state is TenantState.DELETED

        out = await tenantctl(
            "tenants", "purge", tenant, "--confirm", tenant, "--reason", "written request"
        )
        assert f"tenant-{tenant}-deletion: " in out
        assert (await lc.get_tenant(tenant)).purged_at is not None
        assert (await lc.deletion.deletion_certificate(tenant)).signature


def op(status: str, **fields: Any) -> dict[str, Any]:
    return {"workflow_id": "w", "status": status, "step": "s", **fields}


@pytest.mark.parametrize(
    ("view", "state"),
    [
        (op("running"), "running"),
        (op("completed", result={"outcome": "changed"}), "succeeded"),
        (op("completed", result={"outcome": "compensated", "failure": "card"}), "failed"),
        (op("completed", result={"outcome": "cancelled"}), "failed"),
        (op("failed", error="boom"), "failed"),
        (op("cancelled"), "failed"),
        (op("terminated"), "failed"),
        (op("running", result={"progress": {"phase": "retained"}}), "succeeded"),
    ],
)
def test_outcome_of_an_operation_view(view: dict[str, Any], state: str) -> None:
    settled = lambda p: p.get("phase") == "retained"  # noqa: E731
    assert operation_snapshot(view, settled).state == state


def test_a_cancel_waits_for_the_cancelled_outcome() -> None:
    view = op("completed", result={"outcome": "cancelled"})
    assert operation_snapshot(view, undone=("compensated",)).state == "succeeded"


def test_timeout_exits_3_and_says_the_operation_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(typer.Exit) as exit_:
        follow(lambda: Snapshot("running", "upgrading", {}), "tenant-x-upgrade", "there", 0.01)
    assert exit_.value.exit_code == EXIT_TIMEOUT
    out = " ".join(capsys.readouterr().out.split())
    assert "tenant-x-upgrade is still upgrading after 0.01s; it goes on (there)" in out
