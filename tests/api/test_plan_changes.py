"""Plan changes and usage over real HTTP, with the Temporal dev server and a real worker."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TransitionInput
from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid


@pytest.fixture
async def stack(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[LifecycleClient, httpx.AsyncClient]]:
    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        yield lc, http


async def settled(api: httpx.AsyncClient, workflow_id: str, step: str | None = None) -> dict:
    """Poll ``GET /operations/{id}`` until it is no longer running (or reached ``step``)."""
    for _ in range(400):
        op = (await api.get(f"/operations/{workflow_id}")).json()
        if op["status"] != "running" or (step and op["step"] == step):
            return op
        await asyncio.sleep(0.025)
    raise AssertionError(f"{workflow_id} still running: {op}")


async def onboard(api: httpx.AsyncClient, plan: str) -> str:
    tenant_id = uid("api")
    r = await api.post(
        "/tenants",
        json={"tenant_id": tenant_id, "name": "T", "email": "t@t.io", "plan": plan},
    )
    assert r.status_code == 202, r.text
    assert (await settled(api, r.json()["workflow_id"]))["status"] == "completed"
    return tenant_id


async def test_upgrade_is_idempotent_and_reports_its_outcome(stack) -> None:
    _, api = stack
    tenant_id = await onboard(api, "free")
    url, body = f"/tenants/{tenant_id}/upgrade", {"to_plan": "starter"}
    headers = {"Idempotency-Key": f"up-{tenant_id}"}
    first = await api.post(url, json=body, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["workflow_id"] == f"tenant-{tenant_id}-upgrade"
    op = await settled(api, first.json()["workflow_id"])
    assert op["status"] == "completed" and op["step"] == "completed"
    assert op["result"]["plan"] == "starter" and op["result"]["billing"]["skipped"] is True
    # a retry after completion (without the key: 422, already on starter) gets the same answer
    again = await api.post(url, json=body, headers=headers)
    assert again.status_code == 202 and again.json() == first.json()
    tenant = (await api.get(f"/tenants/{tenant_id}")).json()
    assert tenant["plan"] == "starter" and tenant["entitlements"]["users"] == 10
    events = (await api.get(f"/tenants/{tenant_id}/events")).json()
    assert [e["to_state"] for e in events if e["operation"] == "upgrade"] == [
        "UPGRADING",
        None,
        "ACTIVE",
    ]  # one upgrade ran, not two

    r = await api.post(f"/tenants/{tenant_id}/upgrade", json={"to_plan": "free"})
    assert_problem(r, 422, "cannot upgrade from 'starter' to 'free'")


async def test_conflict_from_a_state_that_is_not_active(stack) -> None:
    lc, api = stack
    tenant_id = await onboard(api, "starter")
    await lc.repository.transition(
        TransitionInput(
            tenant_id=tenant_id,
            from_states=[TenantState.ACTIVE],
            to_state=TenantState.SUSPENDED,
            operation="suspend",
            workflow_id="test-suspend",
        )
    )
    r = await api.post(f"/tenants/{tenant_id}/upgrade", json={"to_plan": "professional"})
    assert_problem(r, 409, "is SUSPENDED", "needs ACTIVE")
    r = await api.post(f"/tenants/{tenant_id}/downgrade", json={"to_plan": "free"})
    assert_problem(r, 409, "is SUSPENDED")
    r = await api.post("/tenants/nobody-here/upgrade", json={"to_plan": "professional"})
    assert_problem(r, 404, "tenant 'nobody-here' does not exist")


async def test_usage_over_the_target_is_a_422_listing_each_resource(stack) -> None:
    _, api = stack
    tenant_id = await onboard(api, "professional")
    r = await api.put(f"/tenants/{tenant_id}/usage", json={"users": 50, "storage_gb": 40})
    assert r.status_code == 200, r.text
    assert r.json()["usage"] == {"users": 50, "storage_gb": 40} and r.json()["over_limit"] == []

    expected = [
        {"resource": "users", "usage": 50, "limit": 10},
        {"resource": "storage_gb", "usage": 40, "limit": 10},
    ]
    r = await api.post(f"/tenants/{tenant_id}/downgrade", json={"to_plan": "starter"})
    body = assert_problem(r, 422, "users 50 > 10", "storage_gb 40 > 10")
    assert body["violations"] == expected
    preview = (await api.get(f"/tenants/{tenant_id}/downgrade-preview?to_plan=starter")).json()
    assert preview["allowed"] is False and preview["violations"] == expected
    r = await api.get(f"/tenants/{tenant_id}/downgrade-preview", params={"to_plan": "enterprise"})
    assert_problem(r, 422, "cannot downgrade from 'professional' to 'enterprise'")
    r = await api.get(f"/operations/tenant-{tenant_id}-downgrade")
    assert_problem(r, 404)  # nothing started

    # usage above the current plan is recorded and shown; bad input is a 422
    r = await api.put(f"/tenants/{tenant_id}/usage", json={"users": 60})
    assert r.json()["usage"] == {"users": 60, "storage_gb": 40}
    assert r.json()["over_limit"] == [{"resource": "users", "usage": 60, "limit": 50}]
    assert_problem(
        await api.put(f"/tenants/{tenant_id}/usage", json={"seats": 1}), 422, "unknown resource"
    )
    assert_problem(
        await api.put(f"/tenants/{tenant_id}/usage", json={"users": -1}), 422, "users=-1"
    )
    assert_problem(await api.put(f"/tenants/{tenant_id}/usage", json={"users": "x"}), 422)


async def test_downgrade_at_period_end_is_pending_until_cancelled(stack) -> None:
    _, api = stack
    tenant_id = await onboard(api, "professional")
    r = await api.post(f"/tenants/{tenant_id}/downgrade", json={"to_plan": "starter"})
    assert r.status_code == 202, r.text
    assert r.json()["effective"] == "period_end"
    wid = r.json()["workflow_id"]
    op = await settled(api, wid, "waiting-for-period-end")
    assert op["status"] == "running" and op["result"]["progress"]["to_plan"] == "starter"
    tenant = (await api.get(f"/tenants/{tenant_id}")).json()
    assert tenant["state"] == "ACTIVE" and tenant["plan"] == "professional"
    assert tenant["pending_plan_change"]["to_plan"] == "starter"
    assert tenant["pending_plan_change"]["effective_at"] == op["result"]["progress"]["effective_at"]

    again = await api.post(f"/tenants/{tenant_id}/downgrade", json={"to_plan": "free"})
    assert_problem(again, 409, "already running")

    r = await api.post(f"/tenants/{tenant_id}/downgrade/cancel")
    assert r.status_code == 202 and r.json()["workflow_id"] == wid
    op = await settled(api, wid)
    assert op["status"] == "completed" and op["result"]["outcome"] == "cancelled"
    tenant = (await api.get(f"/tenants/{tenant_id}")).json()
    assert tenant["pending_plan_change"] is None and tenant["plan"] == "professional"
    assert_problem(await api.post(f"/tenants/{tenant_id}/downgrade/cancel"), 409, "no pending")


async def test_immediate_downgrade(stack) -> None:
    _, api = stack
    tenant_id = await onboard(api, "starter")
    r = await api.post(
        f"/tenants/{tenant_id}/downgrade", json={"to_plan": "free", "effective": "immediately"}
    )
    assert r.status_code == 202, r.text
    op = await settled(api, r.json()["workflow_id"])
    assert op["status"] == "completed" and op["result"]["plan"] == "free"
    tenant = (await api.get(f"/tenants/{tenant_id}")).json()
    assert tenant["plan"] == "free" and tenant["entitlements"]["users"] == 3
    r = await api.post(
        f"/tenants/{tenant_id}/downgrade", json={"to_plan": "free", "effective": "tomorrow"}
    )
    assert_problem(r, 422, "effective")


async def test_tenantctl_usage_preview_upgrade(stack) -> None:
    from typer.testing import CliRunner

    from lifecycle.cli.app import app

    lc, api = stack
    tenant_id = await onboard(api, "starter")
    runner, base = CliRunner(), ["--api", str(api.base_url)]
    env = {"API_TOKEN": lc.settings.secret("api_token"), "COLUMNS": "200"}

    async def tenantctl(*args: str) -> str:
        out = await asyncio.to_thread(runner.invoke, app, ["tenants", *args, *base], env=env)
        assert out.exit_code == 0, out.output
        return out.output

    assert '"users": 12' in await tenantctl("usage", tenant_id, "users=12", "projects=2")
    assert '"allowed": false' in await tenantctl(
        "downgrade", tenant_id, "--to", "free", "--preview"
    )
    assert f"tenant-{tenant_id}-upgrade" in await tenantctl(
        "upgrade", tenant_id, "--to", "enterprise"
    )
    assert (await settled(api, f"tenant-{tenant_id}-upgrade"))["result"]["plan"] == "enterprise"
    failed = await asyncio.to_thread(
        runner.invoke, app, ["tenants", "usage", tenant_id, "seats=1", *base], env=env
    )
    assert failed.exit_code == 1 and "unknown resource(s) seats" in failed.output
