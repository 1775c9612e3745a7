"""Every input answers a precise 4xx, never a 5xx (issue 14, items 1, 2 and 6): the API over
real HTTP on PostgreSQL (which refuses NUL in text), with the Temporal dev server and a worker.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.persistence.tables import WebhookEvent
from tests.api.test_billing_events import SECRET, sign
from tests.support.api import assert_problem, onboard, wait_operation
from tests.support.fixtures import make_settings, running_stack, serve_api, uid

INT64_MAX = 2**63 - 1


@pytest.fixture
async def stack(
    dev_env: WorkflowEnvironment, tmp_path: Path, pg_url: str
) -> AsyncIterator[tuple[LifecycleClient, httpx.AsyncClient]]:
    settings = make_settings(tmp_path, database_url=pg_url, stripe_webhook_secret=SECRET)
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        yield lc, http


@pytest.fixture
async def api(stack: tuple[LifecycleClient, httpx.AsyncClient]) -> httpx.AsyncClient:
    return stack[1]


@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64, 10**30, -1])
async def test_offsets_beyond_the_bound_are_422(api: httpx.AsyncClient, value: int) -> None:
    acme = uid("acme")
    await onboard(api, acme)
    for path in ("/tenants", f"/tenants/{acme}/events"):
        r = await api.get(path, params={"offset": value})
        assert_problem(r, 422, "offset")
        r = await api.get(path, params={"limit": value})
        assert_problem(r, 422, "limit")


async def test_largest_offset_answers_an_empty_page(api: httpx.AsyncClient) -> None:
    acme = uid("acme")
    await onboard(api, acme)
    r = await api.get("/tenants", params={"offset": 2**31 - 1})
    assert r.status_code == 200 and r.json()["items"] == []
    r = await api.get(f"/tenants/{acme}/events", params={"offset": 2**31 - 1})
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("signature", ["é" * 64, "\u2603", "ff" * 31 + "\u00ff\u00ff"])
async def test_non_ascii_link_signature_is_403(api: httpx.AsyncClient, signature: str) -> None:
    r = await api.get(
        f"/exports/{'a' * 32}/download", params={"expires": 4102444800, "signature": signature}
    )
    assert_problem(r, 403, "is not valid")


@pytest.mark.parametrize("path", ["/exports/%00", "/exports/a%00b", "/operations/%00"])
async def test_nul_in_path_is_422_on_postgresql(api: httpx.AsyncClient, path: str) -> None:
    assert_problem(await api.get(path), 422)


async def test_unknown_export_id_of_the_right_shape_is_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get(f"/exports/{'0' * 32}"), 404)


MALFORMED_EVENTS = {
    "array": b"[]",
    "empty object": b"{}",
    "no data": json.dumps({"id": "evt_1", "type": "invoice.paid"}).encode(),
    "null data.object": json.dumps(
        {"id": "evt_2", "type": "invoice.paid", "data": {"object": None}}
    ).encode(),
    "integer id": json.dumps({"id": 7, "type": "invoice.paid", "data": {"object": {}}}).encode(),
    "null id": json.dumps({"id": None, "type": "invoice.paid", "data": {"object": {}}}).encode(),
    "over-long id": json.dumps(
        {"id": "e" * 256, "type": "invoice.paid", "data": {"object": {}}}
    ).encode(),
    "over-long type": json.dumps(
        {"id": "evt_3", "type": "t" * 129, "data": {"object": {}}}
    ).encode(),
    "NUL in id": json.dumps(
        {"id": "evt\u0000", "type": "invoice.paid", "data": {"object": {}}}
    ).encode(),
    "NUL in type": json.dumps(
        {"id": "evt_4", "type": "invoice\u0000paid", "data": {"object": {}}}
    ).encode(),
    "not UTF-8": b'{"id": "\xff"}',
    "a string": b'"evt"',
}


@pytest.mark.parametrize("name", sorted(MALFORMED_EVENTS))
async def test_malformed_signed_stripe_event_is_400_and_not_recorded(
    stack: tuple[LifecycleClient, httpx.AsyncClient], name: str
) -> None:
    lc, api = stack
    payload = MALFORMED_EVENTS[name]
    before = await _recorded(lc)
    r = await api.post(
        "/webhooks/stripe",
        content=payload,
        headers={
            "Stripe-Signature": _sign_bytes(payload),
            "Content-Type": "application/json",
        },
    )
    assert_problem(r, 400, "not a Stripe event")
    assert await _recorded(lc) == before


async def test_non_ascii_stripe_signature_is_400(api: httpx.AsyncClient) -> None:
    payload = b'{"id": "evt_x", "type": "invoice.paid", "data": {"object": {}}}'
    header = "t=1,v1=" + "\u00e9" * 64
    r = await api.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": header.encode("latin-1"), "Content-Type": "application/json"},
    )
    assert_problem(r, 400, "Stripe-Signature")


async def test_event_with_malformed_invoice_fields_is_ignored_not_500(
    stack: tuple[LifecycleClient, httpx.AsyncClient],
) -> None:
    lc, api = stack
    obj = {"id": 5, "subscription": "sub_\u0000", "parent": "nope"}
    payload = json.dumps(
        {"id": uid("evt"), "type": "invoice.paid", "data": {"object": obj}}
    ).encode()
    r = await api.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": _sign_bytes(payload), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "ignored: the invoice has no subscription"


def _sign_bytes(payload: bytes) -> str:
    """``sign`` for any bytes, also those that are not UTF-8 (signed as latin-1 text)."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return sign(payload.decode("latin-1").encode("utf-8"))
    return sign(payload)


async def _recorded(lc: LifecycleClient) -> int:
    async with lc.repository.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


# -- free text: NUL, control characters and length, refused before anything starts ----------

CONTROL = ["\u0000", "\u0007", "\n", "\u007f", "\u0085", "\ud800"]


@pytest.mark.parametrize("char", CONTROL)
async def test_control_characters_in_free_text_are_422_naming_the_field(
    api: httpx.AsyncClient, char: str
) -> None:
    acme = uid("acme")
    await onboard(api, acme)
    bad = f"a{char}b"
    cases = [
        ("/tenants", {"tenant_id": uid("n"), "name": bad, "email": "a@b.io"}, "name"),
        ("/tenants", {"tenant_id": uid("n"), "name": "N", "email": "a@b.io", "plan": bad}, "plan"),
        (f"/tenants/{acme}/suspend", {"reason": bad}, "reason"),
        (f"/tenants/{acme}/delete", {"requested_by": bad}, "requested_by"),
        (f"/tenants/{acme}/delete", {"requested_by": "dpo", "reason": bad}, "reason"),
        (f"/tenants/{acme}/legal-hold", {"reason": bad}, "reason"),
        (f"/tenants/{acme}/legal-hold", {"requested_by": bad}, "requested_by"),
        (f"/tenants/{acme}/reactivate", {"requested_by": bad}, "requested_by"),
        (f"/tenants/{acme}/upgrade", {"to_plan": bad}, "to_plan"),
        (f"/tenants/{acme}/downgrade", {"to_plan": bad}, "to_plan"),
    ]
    for path, body, field in cases:
        # A lone surrogate cannot be UTF-8 JSON: send it escaped, as a client would.
        r = await api.post(
            path,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        problem = assert_problem(r, 422, field)
        # pydantic's JSON parser may itself refuse a lone surrogate (not a unicode string).
        assert "control characters" in problem["detail"] or (
            char == "\ud800" and "unicode string" in problem["detail"]
        ), problem
        assert [e["field"] for e in problem["errors"]] == [field], (path, problem)
    # Nothing started: the tenant is still ACTIVE and suspends normally afterwards.
    tenant = (await api.get(f"/tenants/{acme}")).json()
    assert tenant["state"] == "ACTIVE"
    r = await api.post(f"/tenants/{acme}/suspend", json={"reason": "unpaid invoice"})
    assert r.status_code == 202, r.text
    assert await wait_operation(api, r.json()["workflow_id"]) == "completed"
    assert (await api.get(f"/tenants/{acme}")).json()["state"] == "SUSPENDED"


async def test_unicode_text_is_kept(api: httpx.AsyncClient) -> None:
    tenant_id = uid("uni")
    r = await api.post(
        "/tenants", json={"tenant_id": tenant_id, "name": "Zoë & Søn 株式会社", "email": "z@s.io"}
    )
    assert r.status_code == 202, r.text
    assert await wait_operation(api, r.json()["workflow_id"]) == "completed"
    assert (await api.get(f"/tenants/{tenant_id}")).json()["name"] == "Zoë & Søn 株式会社"


async def test_over_long_text_is_422_naming_the_field(api: httpx.AsyncClient) -> None:
    acme = uid("acme")
    await onboard(api, acme)
    cases = [
        ("/tenants", {"tenant_id": uid("n"), "name": "n" * 201, "email": "a@b.io"}, "name"),
        (f"/tenants/{acme}/suspend", {"reason": "r" * 2001}, "reason"),
        (f"/tenants/{acme}/suspend", {"reason": ""}, "reason"),
        (f"/tenants/{acme}/delete", {"requested_by": "d" * 321}, "requested_by"),
        (f"/tenants/{acme}/upgrade", {"to_plan": "p" * 65}, "to_plan"),
    ]
    for path, body, field in cases:
        problem = assert_problem(await api.post(path, json=body), 422, field)
        assert [e["field"] for e in problem["errors"]] == [field]
    assert (await api.get(f"/tenants/{acme}")).json()["state"] == "ACTIVE"


@pytest.mark.parametrize("amount", [10**12 + 1, 2**63, 2**64, 10**40])
async def test_usage_amounts_are_bounded(api: httpx.AsyncClient, amount: int) -> None:
    acme = uid("acme")
    await onboard(api, acme)
    r = await api.put(f"/tenants/{acme}/usage", json={"users": amount})
    assert_problem(r, 422, "users")
    r = await api.put(f"/tenants/{acme}/usage", json={"users": 10**12})
    assert r.status_code == 200 and r.json()["usage"]["users"] == 10**12


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/tenants", {"GET", "POST"}),
        ("PUT", "/health", {"GET"}),
        ("GET", "/tenants/acme-co/suspend", {"POST"}),
        ("PATCH", "/tenants/acme-co/legal-hold", {"POST", "DELETE"}),
    ],
)
async def test_405_names_the_allowed_methods(
    api: httpx.AsyncClient, method: str, path: str, allow: set[str]
) -> None:
    r = await api.request(method, path)
    problem = assert_problem(r, 405, "allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allow
    assert method in problem["detail"]


async def test_body_that_is_not_utf8_is_400_naming_it(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/tenants", content=b'{"name": "\xff"}', headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 400, "the body is not UTF-8", "at byte 10")
