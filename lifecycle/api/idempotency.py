"""``Idempotency-Key`` handling: a retried POST returns the same operation, also under
concurrency.

The key's row is the claim: the first request inserts it (unique primary key) before it does
anything, runs the operation and stores the response in the row. Concurrent requests with the
same key find the row and wait for that response (IDEMPOTENCY_WAIT_SECONDS at most, then a 409
with Retry-After). A request whose canonical hash (method, path, query, JSON body with sorted
keys and no whitespace) differs from the claim's is a 422. When the operation fails, the claim
is released, so a retry (or a waiting request) runs it again; a claim still pending after
IDEMPOTENCY_STALE_SECONDS belongs to a request whose process died, and is taken over.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from lifecycle.api.problems import ProblemError
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.persistence.engine import Sessions
from lifecycle.persistence.tables import IdempotencyKey, utcnow

#: ``status_code`` of a claim whose operation has not answered yet.
PENDING = 0
#: Seconds a concurrent request waits for the first one's response.
IDEMPOTENCY_WAIT_SECONDS = 15.0
#: Age in seconds of a pending claim whose request is presumed dead (its process crashed).
IDEMPOTENCY_STALE_SECONDS = 120.0
_POLL_SECONDS = 0.05


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    """Hex SHA-256 of the request: method, path, query and the body, canonical when it is
    JSON (keys sorted, no whitespace), else as sent."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8", "surrogatepass")
    except ValueError:
        canonical = body
    head = f"{method} {path}?{query}\n".encode("utf-8", "surrogatepass")
    return hashlib.sha256(head + canonical).hexdigest()


async def idempotent(
    request: Request,
    lifecycle: LifecycleClient,
    key: str | None,
    produce: Callable[[], Awaitable[BaseModel]],
    status_code: int = 202,
) -> JSONResponse:
    """Run ``produce`` once per ``Idempotency-Key``: every request with the same key and the
    same request gets the stored response; the same key with another request is a 422; a
    request still waiting after IDEMPOTENCY_WAIT_SECONDS is a 409 with Retry-After."""
    if not key:
        return JSONResponse((await produce()).model_dump(mode="json"), status_code=status_code)
    digest = request_hash(request.method, request.url.path, request.url.query, await request.body())
    sessions = lifecycle.repository.sessions
    loop = asyncio.get_running_loop()
    deadline = loop.time() + IDEMPOTENCY_WAIT_SECONDS
    while not await _claim(sessions, key, digest):
        async with sessions() as session:
            stored = await session.get(IdempotencyKey, key)
        if stored is None:
            continue  # the first request failed and released the key: claim it now
        if stored.request_hash != digest:
            raise ProblemError(
                422, f"Idempotency-Key '{key}' was already used with a different request"
            )
        if stored.status_code != PENDING:
            return JSONResponse(stored.response, status_code=stored.status_code)
        if (utcnow() - stored.created_at).total_seconds() > IDEMPOTENCY_STALE_SECONDS:
            await _release(sessions, key, stored.created_at)
            continue
        if loop.time() > deadline:
            raise ProblemError(
                409,
                f"a request with Idempotency-Key '{key}' is still being processed; retry later",
                headers={"Retry-After": str(int(IDEMPOTENCY_WAIT_SECONDS))},
            )
        await asyncio.sleep(_POLL_SECONDS)
    try:
        response = (await produce()).model_dump(mode="json")
    except BaseException:
        await _release(sessions, key)
        raise
    async with sessions.begin() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(status_code=status_code, response=response)
        )
    return JSONResponse(response, status_code=status_code)


async def _claim(sessions: Sessions, key: str, digest: str) -> bool:
    """Insert the pending claim of ``key``; False when another request holds it."""
    try:
        async with sessions.begin() as session:
            session.add(
                IdempotencyKey(
                    key=key,
                    request_hash=digest,
                    status_code=PENDING,
                    response={},
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    return True


async def _release(sessions: Sessions, key: str, claimed_at: datetime | None = None) -> None:
    """Delete the pending claim of ``key`` (only the one made at ``claimed_at`` when given, so
    that two requests taking over a stale claim do not delete each other's)."""
    query = delete(IdempotencyKey).where(
        IdempotencyKey.key == key, IdempotencyKey.status_code == PENDING
    )
    if claimed_at is not None:
        query = query.where(IdempotencyKey.created_at == claimed_at)
    async with sessions.begin() as session:
        await session.execute(query)


IdempotencyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]
