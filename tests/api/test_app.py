"""The API over real HTTP, with the Temporal dev server and a real worker."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        yield http


async def _onboard(api: httpx.AsyncClient, tenant_id: str, plan: str = "starter") -> dict:
    r = await api.post(
        "/tenants",
        json={
            "tenant_id": tenant_id,
            "name": tenant_id.title(),
            "email": f"ops@{tenant_id}.io",
            "plan": plan,
        },
    )
    assert r.status_code == 202, r.text
    op = r.json()
    for _ in range(200):
        status = (await api.get(f"/operations/{op['workflow_id']}")).json()
        if status["status"] != "running":
            break
    assert status["status"] == "completed", status
    return op


async def test_create_fetch_list_events(api: httpx.AsyncClient) -> None:
    acme, globex = uid("acme"), uid("globex")
    op = await _onboard(api, acme)
    assert op["workflow_id"] == f"tenant-{acme}-onboard" and op["status"] == "queued"
    tenant = (await api.get(f"/tenants/{acme}")).json()
    assert tenant["state"] == "ACTIVE" and tenant["plan"] == "starter"
    assert tenant["entitlements"]["users"] == 10
    await _onboard(api, globex, "free")

    page = (await api.get("/tenants", params={"plan": "free"})).json()
    assert page["total"] == 1 and page["items"][0]["tenant_id"] == globex
    page = (await api.get("/tenants", params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 2 and [t["tenant_id"] for t in page["items"]] == [globex]

    events = (await api.get(f"/tenants/{acme}/events")).json()
    assert [(e["operation"], e["to_state"], e["workflow_id"]) for e in events] == [
        ("onboard", "ACTIVE", f"tenant-{acme}-onboard")
    ]
    plans = (await api.get("/plans")).json()
    assert [p["name"] for p in plans] == ["free", "starter", "professional", "enterprise"]


async def test_errors_are_problem_json(api: httpx.AsyncClient) -> None:
    acme = uid("acme")
    await _onboard(api, acme)
    assert_problem(await api.get("/tenants/nobody"), 404, "tenant 'nobody' does not exist")
    r = await api.post("/tenants", json={"tenant_id": acme, "name": "A", "email": "a@acme.io"})
    assert_problem(r, 409, f"tenant '{acme}' already exists")
    r = await api.post("/tenants", json={"tenant_id": "Bad_Slug!", "name": "A", "email": "a@b.io"})
    body = assert_problem(r, 422, "tenant_id", "not a valid slug")
    assert body["errors"][0]["field"] == "tenant_id"
    r = await api.post(
        "/tenants", json={"tenant_id": "ok-co", "name": "A", "email": "a@b.io", "plan": "gold"}
    )
    assert_problem(r, 422, "unknown plan 'gold'", "free, starter, professional, enterprise")
    assert_problem(await api.get("/tenants/UPPER"), 422, "tenant_id")
    assert_problem(await api.get("/operations/no-such-workflow"), 404, "no-such-workflow")


async def test_token_required_except_health(api: httpx.AsyncClient) -> None:
    base = str(api.base_url)
    async with httpx.AsyncClient(base_url=base) as anon:
        r = await anon.get("/tenants")
        assert_problem(r, 401, "missing bearer token")
        assert r.headers["www-authenticate"] == "Bearer"
        assert_problem(
            await anon.get("/tenants", headers={"Authorization": "Bearer wrong"}), 401, "invalid"
        )
        health = await anon.get("/health")
        assert health.status_code == 200
        assert health.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_idempotency_key_returns_same_operation(api: httpx.AsyncClient) -> None:
    body = {"tenant_id": uid("idem"), "name": "Idem", "email": "i@idem.io"}
    first = await api.post("/tenants", json=body, headers={"Idempotency-Key": "k-1"})
    again = await api.post("/tenants", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    other = await api.post(
        "/tenants", json={**body, "name": "Other"}, headers={"Idempotency-Key": "k-1"}
    )
    assert_problem(other, 422, "Idempotency-Key 'k-1'")


async def test_config_redacts_secrets(api: httpx.AsyncClient) -> None:
    config = (await api.get("/config")).json()
    assert config["api_token"] == "***" and "test-token" not in str(config)
    assert config["soft_delete_retention_days"] == 30


async def test_health_503_names_what_is_down(tmp_path: Path) -> None:
    from temporalio.client import Client

    from lifecycle.client.lifecycle import LifecycleClient
    from lifecycle.dev.devserver import free_port
    from lifecycle.persistence.engine import Sessions, create_engine
    from lifecycle.persistence.tenants import TenantRepository

    settings = make_settings(tmp_path)
    dead = f"127.0.0.1:{free_port()}"
    temporal = await Client.connect(dead, lazy=True)
    engine = create_engine(f"postgresql+asyncpg://postgres@{dead}/nothing")
    lc = LifecycleClient(settings, temporal, TenantRepository(Sessions(engine)))
    async with serve_api(lc) as http:
        r = await http.get("/health")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"].startswith("down") and checks["temporal"].startswith("down")
