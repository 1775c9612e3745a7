"""Bounded resources (issue 14, items 3 and 4): bodies over MAX_REQUEST_BYTES are refused
before they are read, authentication comes before parsing, slow request heads are cut off,
and a Temporal that is down answers 503 problem+json with Retry-After in bounded time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.dev.devserver import free_port, temporal_cli
from lifecycle.domain.operations import LIFECYCLE_OPERATION, TENANT_ID
from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid

LIMIT = 4096


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, max_request_bytes=LIMIT, api_header_timeout_seconds=0.5)
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        yield http


async def raw(api: httpx.AsyncClient, head: str, body: bytes = b"") -> tuple[bytes, float]:
    """Send ``head`` (and ``body``) on a fresh connection; return the whole answer (until the
    server closes) and the seconds it took."""
    url = api.base_url
    reader, writer = await asyncio.open_connection(url.host, url.port)
    started = time.monotonic()
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=20)
    writer.close()
    return answer, time.monotonic() - started


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_announced_body_over_the_limit_is_413_unread(api: httpx.AsyncClient) -> None:
    # 200 MB announced, none sent: the answer comes at once, so the body was never awaited.
    head = (
        "POST /tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Authorization: Bearer test-token\r\nContent-Length: 200000000\r\n"
        "Connection: close\r\n\r\n"
    )
    answer, seconds = await raw(api, head)
    assert status_of(answer) == 413 and seconds < 5
    assert b"application/problem+json" in answer and b"MAX_REQUEST_BYTES (4096 bytes)" in answer


async def test_streamed_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"tenant_id": "big-co", "name": "'
        for _ in range(10):
            yield b"x" * 1024
        yield b'", "email": "a@b.io"}'

    r = await api.post("/tenants", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "MAX_REQUEST_BYTES")
    assert_problem(await api.get("/tenants/big-co"), 404)


async def test_body_at_the_limit_is_read(api: httpx.AsyncClient) -> None:
    body = json.dumps({"tenant_id": uid("edge"), "name": "E", "email": "e@e.io"}).encode()
    padded = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(padded) == LIMIT
    r = await api.post("/tenants", content=padded, headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text


async def test_unauthenticated_body_is_refused_before_it_is_read(api: httpx.AsyncClient) -> None:
    head = (
        "POST /tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 4000\r\nConnection: close\r\n\r\n"
    )
    answer, seconds = await raw(api, head)  # the body never comes
    assert status_of(answer) == 401 and seconds < 5
    assert b"missing bearer token" in answer


async def test_stalled_body_is_408(api: httpx.AsyncClient) -> None:
    head = (
        "POST /tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Authorization: Bearer test-token\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
    )
    answer, seconds = await raw(api, head, b'{"tenant_id": ')  # the rest never comes
    assert status_of(answer) == 408 and seconds < 5, answer
    assert b"stalled for more than 0.5 s" in answer


async def test_slow_request_head_is_cut_off(api: httpx.AsyncClient) -> None:
    url = api.base_url
    reader, writer = await asyncio.open_connection(url.host, url.port)
    started = time.monotonic()
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    assert time.monotonic() - started < 5
    writer.close()
    # A complete request on a kept-alive connection is served, then the bound applies again.
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    while await asyncio.wait_for(reader.read(65536), timeout=10):
        pass  # the rest of the answer, then the close once the idle bound passes
    assert time.monotonic() - started < 5
    writer.close()


async def test_temporal_down_is_503_with_retry_after_in_bounded_time(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        data_converter=pydantic_data_converter,
        search_attributes=[TENANT_ID, LIFECYCLE_OPERATION],
        port=free_port(),
        ui=False,
    )
    target = env.client.service_client.config.target_host
    settings = make_settings(tmp_path, temporal_address=target, temporal_rpc_timeout_seconds=2)
    lc = await LifecycleClient.connect(settings)
    try:
        async with serve_api(lc) as http:
            await env.shutdown()
            started = time.monotonic()
            r = await http.post(
                "/tenants", json={"tenant_id": uid("down"), "name": "D", "email": "d@d.io"}
            )
            seconds = time.monotonic() - started
            assert_problem(r, 503, "Temporal is unavailable")
            assert r.headers["retry-after"] == "5" and seconds < 6, seconds
            r = await http.get("/operations/tenant-down-co-onboard")
            assert_problem(r, 503, "Temporal")
            assert r.headers["retry-after"] == "5"
            assert (await http.get("/health")).status_code == 503
    finally:
        await lc.close()


async def test_database_down_is_503_with_retry_after(tmp_path: Path) -> None:
    from temporalio.client import Client

    from lifecycle.persistence.engine import Sessions, create_engine
    from lifecycle.persistence.tenants import TenantRepository

    dead = f"127.0.0.1:{free_port()}"
    temporal = await Client.connect(dead, lazy=True)
    engine = create_engine(f"postgresql+asyncpg://postgres@{dead}/nothing")
    lc = LifecycleClient(make_settings(tmp_path), temporal, TenantRepository(Sessions(engine)))
    async with serve_api(lc) as http:
        for path in ("/tenants", "/tenants/acme-co", "/status"):
            r = await http.get(path)
            assert_problem(r, 503, "refused the connection")
            assert r.headers["retry-after"] == "5"
