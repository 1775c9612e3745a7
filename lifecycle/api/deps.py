"""FastAPI dependencies: the LifecycleClient and bearer-token auth."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Header, Request

from lifecycle.api.problems import ProblemError
from lifecycle.client.lifecycle import LifecycleClient


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
