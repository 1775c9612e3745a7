"""``Idempotency-Key`` under concurrency (issue 14, item 5), on SQLite and PostgreSQL: the
key is claimed first, parallel retries wait for and return the first response, another body
with the same key is a 422, and the body's hash ignores JSON whitespace and key order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.api.idempotency import request_hash
from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid


@pytest.fixture(params=["sqlite", "postgresql"])
async def api(
    request: pytest.FixtureRequest, dev_env: WorkflowEnvironment, tmp_path: Path, pg_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    overrides = {"database_url": pg_url} if request.param == "postgresql" else {}
    async with (
        running_stack(dev_env, make_settings(tmp_path, **overrides)) as lc,
        serve_api(lc) as http,
    ):
        yield http


async def test_parallel_identical_requests_get_the_same_stored_response(
    api: httpx.AsyncClient,
) -> None:
    key = uid("key")
    body = {"tenant_id": uid("par"), "name": "Par", "email": "p@par.io"}
    answers = await asyncio.gather(
        *(api.post("/tenants", json=body, headers={"Idempotency-Key": key}) for _ in range(30))
    )
    assert [r.status_code for r in answers] == [202] * 30, [r.text for r in answers]
    assert len({json.dumps(r.json(), sort_keys=True) for r in answers}) == 1
    assert answers[0].json()["workflow_id"] == f"tenant-{body['tenant_id']}-onboard"


async def test_parallel_different_bodies_with_one_key_are_422(api: httpx.AsyncClient) -> None:
    key = uid("key")
    a = {"tenant_id": uid("aaa"), "name": "A", "email": "a@a.io"}
    b = {"tenant_id": uid("bbb"), "name": "B", "email": "b@b.io"}
    answers = await asyncio.gather(
        *(api.post("/tenants", json=body, headers={"Idempotency-Key": key}) for body in [a, b] * 8)
    )
    accepted = [r for r in answers if r.status_code == 202]
    refused = [r for r in answers if r.status_code != 202]
    assert len(accepted) == 8 and len(refused) == 8
    winner = accepted[0].json()["tenant_id"]
    assert all(r.json() == accepted[0].json() for r in accepted)
    for r in refused:
        assert_problem(r, 422, f"Idempotency-Key '{key}' was already used")
    loser = b["tenant_id"] if winner == a["tenant_id"] else a["tenant_id"]
    assert_problem(await api.get(f"/tenants/{loser}"), 404)


async def test_json_whitespace_and_key_order_do_not_change_the_request(
    api: httpx.AsyncClient,
) -> None:
    key = uid("key")
    tenant = uid("canon")
    compact = f'{{"tenant_id":"{tenant}","name":"C","email":"c@c.io"}}'
    spaced = f'{{ "email" : "c@c.io",\n  "name": "C",  "tenant_id": "{tenant}" }}'
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    first = await api.post("/tenants", content=compact, headers=headers)
    again = await api.post("/tenants", content=spaced, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()


async def test_failed_operation_releases_the_key(api: httpx.AsyncClient) -> None:
    key = uid("key")
    body = {"tenant_id": uid("rel"), "name": "R", "email": "r@r.io", "plan": "gold"}
    assert_problem(
        await api.post("/tenants", json=body, headers={"Idempotency-Key": key}),
        422,
        "unknown plan",
    )
    fixed = {**body, "plan": "free"}
    r = await api.post("/tenants", json=fixed, headers={"Idempotency-Key": key})
    assert r.status_code == 202, r.text


def test_request_hash_is_canonical_for_json_only() -> None:
    a = request_hash("POST", "/tenants", "", b'{"a": 1, "b": [1, 2]}')
    assert a == request_hash("POST", "/tenants", "", b'{"b":[1,2],"a":1}')
    assert a != request_hash("POST", "/tenants", "", b'{"a": 1, "b": [2, 1]}')
    assert a != request_hash("POST", "/tenants/x", "", b'{"a": 1, "b": [1, 2]}')
    assert request_hash("POST", "/t", "", b"not json") != request_hash(
        "POST", "/t", "", b"not  json"
    )


async def test_stale_pending_claim_of_a_dead_request_is_taken_over(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    from datetime import timedelta

    from lifecycle.api.idempotency import IDEMPOTENCY_STALE_SECONDS, PENDING
    from lifecycle.persistence.tables import IdempotencyKey, utcnow

    key, tenant = uid("key"), uid("stale")
    body = {"tenant_id": tenant, "name": "S", "email": "s@s.io"}
    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        digest = request_hash("POST", "/tenants", "", json.dumps(body).encode())
        async with lc.repository.sessions.begin() as session:
            session.add(
                IdempotencyKey(
                    key=key,
                    request_hash=digest,
                    status_code=PENDING,
                    response={},
                    created_at=utcnow() - timedelta(seconds=IDEMPOTENCY_STALE_SECONDS + 1),
                )
            )
        r = await http.post("/tenants", json=body, headers={"Idempotency-Key": key})
        assert r.status_code == 202, r.text
        assert r.json()["workflow_id"] == f"tenant-{tenant}-onboard"
        again = await http.post("/tenants", json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 202 and again.json() == r.json()
