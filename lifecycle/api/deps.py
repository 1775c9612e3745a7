"""FastAPI dependencies: the LifecycleClient and the role each route needs.

Authentication happens in :mod:`lifecycle.api.guard` before the body is read; a route's
dependency (``Viewer``, ``Operator``, ``Dpo``, ``Admin``) checks the principal's role and
returns its name, the audit log's actor. ``HTTPBearer`` documents the scheme in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lifecycle.api.auth import Principal, Role
from lifecycle.api.guard import authenticate
from lifecycle.api.problems import ProblemError
from lifecycle.client.lifecycle import LifecycleClient

bearer = HTTPBearer(auto_error=False, description="a token of API_TOKEN or API_TOKENS_FILE")


def get_client(request: Request) -> LifecycleClient:
    return request.app.state.lifecycle


Lifecycle = Annotated[LifecycleClient, Depends(get_client)]


def principal_of(request: Request) -> Principal:
    """The caller the guard authenticated (or, for an app without it, from the header);
    raises ProblemError 401."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    return authenticate(request.app.state.tokens, request.headers.get("authorization"))


def require(role: Role) -> Callable[..., Awaitable[str]]:
    """A dependency that admits principals whose role grants ``role`` and returns their
    name; raises ProblemError 403 naming the role needed."""

    async def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
    ) -> str:
        principal = principal_of(request)
        if not principal.may(role):
            raise ProblemError(
                403,
                f"this needs role '{role}' (or 'admin'); token '{principal.name}' has role "
                f"'{principal.role}'",
                needed_role=role,
            )
        return principal.name

    return dependency


Viewer = Annotated[str, Depends(require("viewer"))]
Operator = Annotated[str, Depends(require("operator"))]
Dpo = Annotated[str, Depends(require("dpo"))]
Admin = Annotated[str, Depends(require("admin"))]
