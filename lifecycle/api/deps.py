"""FastAPI dependencies: the LifecycleClient, bearer-token auth, Idempotency-Key handling."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from lifecycle.api.problems import ProblemError
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.persistence.tables import IdempotencyKey, utcnow


def get_client(request: Request) -> LifecycleClient:
    return request.app.state.lifecycle


Lifecycle = Annotated[LifecycleClient, Depends(get_client)]


async def require_token(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> str:
    """Check ``Authorization: Bearer <API_TOKEN>`` in constant time; returns the actor name."""
    expected: str = request.app.state.api_token
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ProblemError(401, "missing bearer token: send 'Authorization: Bearer <API_TOKEN>'")
    if not secrets.compare_digest(token.encode(), expected.encode()):
        raise ProblemError(401, "invalid bearer token")
    return "api"


Actor = Annotated[str, Depends(require_token)]


async def idempotent(
    request: Request,
    lifecycle: LifecycleClient,
    key: str | None,
    produce: Callable[[], Awaitable[dict[str, Any]]],
    status_code: int = 202,
) -> JSONResponse:
    """Run ``produce`` once per ``Idempotency-Key``: a retry with the same key and the same
    request returns the stored response; the same key with another request is a 422."""
    if not key:
        return JSONResponse(await produce(), status_code=status_code)
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
    response = await produce()
    try:
        async with sessions.begin() as session:
            session.add(
                IdempotencyKey(
                    key=key,
                    request_hash=digest,
                    status_code=status_code,
                    response=json.loads(json.dumps(response, default=str)),
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        pass  # a concurrent retry stored the same operation first; both answers name it
    return JSONResponse(response, status_code=status_code)


IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
