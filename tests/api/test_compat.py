"""The specification's flat routes (``POST /upgrade``, ``/downgrade``, ``/export``,
``/delete``, ``/reactivate`` with ``tenant_data`` bodies) over real HTTP, a real worker and
the Temporal dev server: each runs the operation of its resource route (the tenant row, the
export record, the deletion), with the same problems and Idempotency-Key handling."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.states import TenantState
from tests.support.api import assert_problem, wait_operation
from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant, wait_state


async def wait_export(http: httpx.AsyncClient, export_id: str) -> dict:
    """Poll ``GET /exports/{id}`` until the export ended; returns its view."""
    for _ in range(600):
        view = (await http.get(f"/exports/{export_id}")).json()
        if view["status"] in ("completed", "failed"):
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"export {export_id} did not end: {view}")


async def test_compat_routes_run_the_operations_of_the_resource_routes(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    tenant = uid("compat")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, "starter", data_key="2")
        record = {"tenant_id": tenant, "plan": "starter", "state": "active"}

        r = await http.post("/upgrade", json={"new_plan": "professional", "tenant_data": record})
        assert r.status_code == 202, r.text
        assert r.json()["workflow_id"] == f"tenant-{tenant}-upgrade"
        assert await wait_operation(http, r.json()["workflow_id"]) == "completed"
        assert (await lc.get_tenant(tenant)).plan == "professional"

        body = {"tenant_id": tenant, "new_plan": "starter", "effective": "immediately"}
        r = await http.post("/downgrade", json=body)
        assert r.status_code == 202 and r.json()["effective"] == "immediately", r.text
        assert await wait_operation(http, r.json()["workflow_id"]) == "completed"
        assert (await lc.get_tenant(tenant)).plan == "starter"

        r = await http.post("/export", json={"tenant_id": tenant, "tenant_data": record})
        assert r.status_code == 202, r.text
        started = r.json()
        assert {"export_id", "status", "estimated_completion"} <= started.keys()
        view = await wait_export(http, started["export_id"])
        assert view["status"] == "completed" and view["size_bytes"] > 0 and view["sha256"]
        listed = [v["export_id"] for v in (await http.get(f"/tenants/{tenant}/exports")).json()]
        assert listed == [started["export_id"]]

        r = await http.post("/delete", json={"tenant_id": tenant, "reason": "spec client"})
        assert r.status_code == 202, r.text
        deletion = r.json()
        assert deletion["deletion_id"] and deletion["can_reactivate"] is True
        assert deletion["retention_days"] == 30
        row = await wait_state(lc, tenant, TenantState.DELETED)
        assert row.purge_scheduled_at is not None
        assert row.purge_scheduled_at.isoformat() == deletion["hard_delete_scheduled_at"]
        assert_problem(
            await http.post("/export", json={"tenant_id": tenant}),
            409,
            f"tenant '{tenant}' is DELETED",
        )

        r = await http.post("/reactivate", json={"tenant_data": {"tenant_id": tenant}})
        assert r.status_code == 202, r.text
        assert (await wait_state(lc, tenant, TenantState.ACTIVE)).plan == "starter"

        events = (await http.get(f"/tenants/{tenant}/events")).json()
        operations = {e["operation"] for e in events}
        assert {"upgrade", "downgrade", "export", "deletion"} <= operations, operations
        assert {e["actor"] for e in events if e["operation"] == "deletion"} == {"api"}


async def test_compat_routes_answer_the_same_problems_and_keys(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    tenant = uid("compat")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, "professional", data_key="1")
        r = await http.post("/upgrade", json={"tenant_id": "nobody-here", "new_plan": "starter"})
        assert_problem(r, 404, "tenant 'nobody-here' does not exist")
        r = await http.post("/upgrade", json={"tenant_id": "Bad_Id", "new_plan": "enterprise"})
        problem = assert_problem(r, 422, "not a valid slug")
        assert problem["errors"][0]["field"] == "tenant_id", problem
        r = await http.post(
            "/delete", json={"tenant_id": tenant, "tenant_data": {"tenant_id": "other-co"}}
        )
        assert_problem(r, 422, f"tenant_id '{tenant}' and tenant_data.tenant_id 'other-co'")
        assert_problem(await http.post("/upgrade", json={"tenant_id": tenant}), 422, "new_plan")
        r = await http.post("/upgrade", json={"tenant_id": tenant, "new_plan": "starter"})
        assert_problem(r, 422, "starter")
        r = await http.post("/delete", json={"tenant_id": tenant, "retention_days": 10})
        assert_problem(r, 422, "retention_days")
        r = await http.post("/export", json={"tenant_id": tenant, "format": "csv"})
        assert_problem(r, 422, "format")
        r = await http.post("/reactivate", json={"tenant_id": tenant})
        assert_problem(r, 409, f"tenant '{tenant}' is ACTIVE")
        r = await http.post(
            "/upgrade",
            json={"tenant_id": tenant, "new_plan": "enterprise"},
            headers={"Authorization": "Bearer wrong"},
        )
        assert_problem(r, 401)
        assert (await lc.get_tenant(tenant)).plan == "professional"

        key = {"Idempotency-Key": f"k-{tenant}"}
        body = {"tenant_id": tenant, "new_plan": "enterprise"}
        first = await http.post("/upgrade", json=body, headers=key)
        again = await http.post("/upgrade", json=body, headers=key)
        assert first.status_code == again.status_code == 202, first.text
        assert first.json() == again.json()
        other = {"tenant_id": tenant, "new_plan": "starter"}
        assert_problem(await http.post("/upgrade", json=other, headers=key), 422, "Idempotency")
        assert await wait_operation(http, first.json()["workflow_id"]) == "completed"
        assert (await lc.get_tenant(tenant)).plan == "enterprise"

        # one key sent twice at once: one export, both answers name it
        key = {"Idempotency-Key": f"e-{tenant}"}
        body = {"tenant_id": tenant, "export_type": "tables"}
        answers = await asyncio.gather(
            *(http.post("/export", json=body, headers=key) for _ in range(2))
        )
        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        assert answers[0].json() == answers[1].json()
        exports = (await http.get(f"/tenants/{tenant}/exports")).json()
        assert [e["export_id"] for e in exports] == [answers[0].json()["export_id"]]
        assert (await wait_export(http, answers[0].json()["export_id"]))["status"] == "completed"
