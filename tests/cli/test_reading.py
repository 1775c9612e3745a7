"""Reading commands against the API over HTTP: ``tenants list --state`` in any case,
``tenants show`` with the audit detail wrapped, ``plans``, ``operations show``,
``exports list|show``; and ``datamap check`` on the embedded defaults."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from lifecycle.cli.app import app as cli
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant, wait_state

runner = CliRunner()


async def invoke(args: list[str], env: dict[str, str]) -> str:
    result = await asyncio.to_thread(runner.invoke, cli, args, env=env, terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


async def test_reading_commands(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap, data_export_chunk_size_mb=0.01)
    env = {"DATA_DIR": str(tmp_path / "data"), "API_TOKEN": "test-token", "COLUMNS": "200"}
    tenant, other = uid("reader"), uid("other")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        api = ["--api", str(http.base_url)]
        await new_tenant(lc, tenant, data_key="2")
        await new_tenant(lc, other, data_key="3")
        reason = "a long reason that must survive in full: " + "x" * 150
        started = await lc.suspension.suspend_tenant(other, SuspendRequest(reason=reason))
        await wait_state(lc, other, TenantState.SUSPENDED)
        export = await lc.exports.export_tenant(tenant)
        await lc.core.handle(export.workflow_id).result()

        listed = await invoke(["tenants", "list", "--state", "suspended", *api], env)
        assert other in listed and tenant not in listed and "1 tenant(s)" in listed

        shown = await invoke(["tenants", "show", other, *api], env)
        assert "x" * 150 in shown.replace(" ", "").replace("│", "")  # wrapped, not cut

        plans = await invoke(["plans", *api], env)
        assert "free" in plans and "enterprise" in plans and "unlimited" in plans

        op = await invoke(["operations", "show", started.workflow_id, *api], env)
        assert "completed" in op and other in op

        exports = await invoke(["exports", "list", tenant, *api], env)
        assert export.export_id in exports and "completed" in exports
        one = await invoke(["exports", "show", export.export_id, *api], env)
        assert '"status": "completed"' in one and '"download_url":' in one


async def test_datamap_check_reads_the_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DATA_MAP_PATH, no APP_* variables: the sample application's map and stores under
    DATA_DIR, as ``tenantctl dev`` uses them (an empty application: zero rows)."""
    # the command exports these into this process's environment: recorded as absent first,
    # so that monkeypatch removes them after the test and no data map leaks into later tests
    for var in ("DATA_MAP_PATH", "APP_DATABASE_URL", "APP_STORAGE_URL"):
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    data = tmp_path / "data"
    from lifecycle.dev.adtech.env import app_urls
    from lifecycle.dev.adtech.schema import create_schema

    await create_schema(app_urls(data)["APP_DATABASE_URL"])
    env = {"DATA_DIR": str(data)}
    result = await asyncio.to_thread(runner.invoke, cli, ["datamap", "check"], env=env)
    assert result.exit_code == 0, result.output
    assert "adtech" in result.output and "data map OK" in result.output
