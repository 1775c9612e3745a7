"""``tenantctl tenants change-plan [--preview]`` and ``tenantctl events deliveries|redeliver``
against the API over HTTP (issue 17, items 4 and 5), and the routes' refusals."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import web
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from lifecycle.cli.app import app as cli
from lifecycle.domain.operations import OperationKind, workflow_id
from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant

runner = CliRunner()


async def invoke(args: list[str], env: dict[str, str], code: int = 0) -> str:
    result = await asyncio.to_thread(runner.invoke, cli, args, env=env, terminal_width=200)
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


async def test_change_plan_and_event_deliveries_from_the_cli(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    received: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/events", receive)
    web_runner = web.AppRunner(app, access_log=None)
    await web_runner.setup()
    site = web.TCPSite(web_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = make_settings(
        tmp_path,
        event_webhook_urls=f"http://127.0.0.1:{port}/events",
        event_webhook_secret="cli-secret",
    )
    env = {"DATA_DIR": str(tmp_path / "data"), "API_TOKEN": "test-token", "COLUMNS": "200"}
    tenant, big = uid("cp"), uid("big")
    try:
        async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
            api = ["--api", str(http.base_url)]
            await new_tenant(lc, tenant, plan="free")
            await new_tenant(lc, big, plan="enterprise")

            shown = await invoke(
                ["tenants", "change-plan", tenant, "--to", "starter", "--preview", *api], env
            )
            assert "free -> starter (upgrade), rule immediate: allowed" in shown
            assert re.search(r"users\W+3\W+10\W+more\W+0", shown)
            assert "proration unavailable: billing in limited mode" in shown

            refused = await invoke(["tenants", "change-plan", big, "--to", "free", *api], env, 1)
            assert "rule not_allowed: refused" in refused and "[changes.enterprise] free" in refused
            r = await http.post(f"/tenants/{big}/downgrade", json={"to_plan": "free"})
            assert_problem(r, 422, "[changes.enterprise] free is not_allowed")

            done = await invoke(["tenants", "change-plan", tenant, "--to", "starter", *api], env)
            assert f"upgrade (immediately) started: workflow tenant-{tenant}-upgrade" in done
            await lc.core.handle(f"tenant-{tenant}-upgrade").result()

            events = await lc.outbound_events.repository.undispatched()
            await lc.outbound_events.dispatch_pending()
            for e in events:
                wid = workflow_id(e.tenant_id, OperationKind.EVENT, str(e.event_id))
                await lc.core.handle(wid).result()
            listed = await invoke(["events", "deliveries", "--tenant", tenant, *api], env)
            assert "tenant.plan_changed" in listed and "tenant.activated" in listed
            assert "delivered" in listed and "pending" not in listed
            failed = await invoke(["events", "deliveries", "--status", "failed", *api], env)
            assert tenant not in failed
            again = await invoke(["events", "redeliver", str(events[0].event_id), *api], env)
            assert f"event {events[0].event_id}: redelivery" in again and "(0 delivery" in again

            assert_problem(await http.post("/events/2147483647/redeliver"), 404, "does not exist")
            assert_problem(await http.get("/events/deliveries?status=lost"), 422, "status")
            r = await http.get(f"/tenants/{tenant}/plan-change-preview", params={"to_plan": "gold"})
            assert_problem(r, 422, "unknown plan 'gold'")
            r = await http.get(
                f"/tenants/{tenant}/plan-change-preview", params={"to_plan": "starter"}
            )
            assert_problem(r, 422, "already on plan 'starter'")
    finally:
        await web_runner.cleanup()
    # both activations, the upgrade's provisioning step (entitlements) and its plan change
    assert len(received) == len(events) == 4
