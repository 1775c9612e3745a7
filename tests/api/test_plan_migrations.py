"""Bulk plan migrations over real HTTP and through ``tenantctl bulk``, with the Temporal dev
server and a real worker (limited mode): start, progress, pause/resume/cancel, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from lifecycle.cli.app import app as cli
from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.plan_fixtures import seeded

runner = CliRunner()
BASE = "/bulk/plan-migrations"


async def invoke(args: list[str], env: dict[str, str], code: int = 0) -> str:
    result = await asyncio.to_thread(runner.invoke, cli, args, env=env, terminal_width=200)
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


async def ended(http: httpx.AsyncClient, migration_id: str) -> dict:
    for _ in range(600):
        progress = (await http.get(f"{BASE}/{migration_id}")).json()
        if progress["status"] in ("completed", "cancelled"):
            return progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"migration {migration_id} still running: {progress}")


async def test_migration_over_http_and_the_cli(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "API_TOKEN": "test-token", "COLUMNS": "200"}
    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        prefix = uid("httpbulk")
        ids = await seeded(lc.repository, None, "free", 6, prefix)
        await lc.plan_changes.record_usage(ids[0], {"users": 1})
        body = {"from_plan": "free", "to_plan": "starter", "filter": {"tenant_id_prefix": prefix}}
        headers = {"Idempotency-Key": f"bulk-{prefix}"}
        first = await http.post(BASE, json=body, headers=headers)
        assert first.status_code == 202, first.text
        again = await http.post(BASE, json=body, headers=headers)
        assert again.json() == first.json()  # one migration per key
        started = first.json()
        assert started["kind"] == "upgrade" and started["workflow_id"].startswith("plan-migration-")
        progress = await ended(http, started["migration_id"])
        assert (progress["done"], progress["failed"], progress["remaining"]) == (6, 0, 0)
        assert [(await lc.get_tenant(t)).plan for t in ids] == ["starter"] * 6
        r = await http.post(f"{BASE}/{started['migration_id']}/pause")
        assert_problem(r, 409, "has ended")

        api = ["--api", str(http.base_url)]
        more = await seeded(lc.repository, None, "free", 3, uid("clibulk"))
        out = await invoke(
            ["bulk", "migrate-plan", "--from", "free", "--to", "starter"]
            + [arg for t in more for arg in ("--tenant", t)]
            + api,
            env,
        )
        migration_id = out.split("plan migration ")[1].split()[0]
        await ended(http, migration_id)
        shown = await invoke(["bulk", "status", migration_id, *api], env)
        assert "completed" in shown and "done 3, failed 0" in shown
        refused = await invoke(["bulk", "cancel", migration_id, *api], env, code=1)
        assert "409" in refused


async def test_refusals_name_the_problem(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        r = await http.post(BASE, json={"from_plan": "free"})
        assert_problem(r, 422, "exactly one of to_plan and to_price_id")
        r = await http.post(BASE, json={"from_plan": "gold", "to_plan": "free"})
        assert_problem(r, 422, "unknown plan 'gold'")
        r = await http.post(
            BASE, json={"from_plan": "free", "to_plan": "starter", "effective": "period_end"}
        )
        assert_problem(r, 422, "period_end")
        r = await http.post(
            BASE, json={"from_plan": "free", "to_plan": "starter", "concurrency": 0}
        )
        assert_problem(r, 422, "concurrency")
        assert_problem(await http.get(f"{BASE}/{'0' * 16}"), 404, "does not exist")
        assert_problem(await http.post(f"{BASE}/{'0' * 16}/pause"), 404, "does not exist")
        assert_problem(await http.get(f"{BASE}/not-an-id"), 422, "migration_id")
