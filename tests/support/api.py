"""Helpers for tests of the HTTP API."""

import asyncio

import httpx

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, *needles: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    for needle in needles:
        assert needle in body["detail"], body
    return body


async def onboard(http: httpx.AsyncClient, tenant_id: str, plan: str = "starter") -> dict:
    """Onboard ``tenant_id`` through ``POST /tenants`` and wait until the operation ends
    (completed, asserted); returns the 202 body."""
    r = await http.post(
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
    assert await wait_operation(http, op["workflow_id"]) == "completed"
    return op


async def wait_operation(
    http: httpx.AsyncClient,
    workflow_id: str,
    seconds: float = 30,
    headers: dict[str, str] | None = None,
) -> str:
    """Poll ``GET /operations/{id}`` until it is no longer running; returns its status."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status = (await http.get(f"/operations/{workflow_id}", headers=headers)).json()["status"]
        if status != "running" or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.1)
