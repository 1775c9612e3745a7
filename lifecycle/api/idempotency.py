"""``Idempotency-Key`` handling: a retried POST returns the same operation, also under
concurrency (the key's row is the claim)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from lifecycle.api.problems import ProblemError
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.persistence.tables import IdempotencyKey, utcnow


async def idempotent(
    request: Request,
    lifecycle: LifecycleClient,
    key: str | None,
    produce: Callable[[], Awaitable[BaseModel]],
    status_code: int = 202,
) -> JSONResponse:
    """Run ``produce`` once per ``Idempotency-Key``: a retry with the same key and the same
    request returns the stored response; the same key with another request is a 422."""
    if not key:
        return JSONResponse((await produce()).model_dump(mode="json"), status_code=status_code)
    body = await request.body()
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    sessions = lifecycle.repository.sessions
    async with sessions() as session:
        stored = await session.get(IdempotencyKey, key)
    if stored is not None:
        if stored.request_hash != digest:
            raise ProblemError(
                422, f"Idempotency-Key '{key}' was already used with a different request"
            )
        return JSONResponse(stored.response, status_code=stored.status_code)
    response = (await produce()).model_dump(mode="json")
    try:
        async with sessions.begin() as session:
            session.add(
                IdempotencyKey(
                    key=key,
                    request_hash=digest,
                    status_code=status_code,
                    response=response,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        pass  # a concurrent retry stored the same operation first; both answers name it
    return JSONResponse(response, status_code=status_code)


IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
