"""RFC 9457 problem+json: the one shape of every API error."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from lifecycle.domain.errors import LifecycleError
from lifecycle.domain.tenants import validate_tenant_id

logger = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    410: "Gone",
    413: "Content too large",
    422: "Invalid input",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **ext: Any,
) -> JSONResponse:
    """A problem+json response (``type`` about:blank, ``title``, ``status``, ``detail``);
    ``headers`` are added to it (e.g. ``Allow`` of a 405, ``Retry-After`` of a 503)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(ext)
    all_headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    all_headers.update(headers or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=all_headers)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API answers them
    (``application/problem+json``); 422s add ``errors`` (field, message)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting ``statuses`` as problem+json (for ``responses=``);
    the ``Problem`` schema they refer to is added by :func:`document_problem`."""
    return {
        status: {
            "description": TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def document_problem(schema: dict[str, Any]) -> None:
    """Add the ``Problem`` schema to an OpenAPI document's components."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")


class ProblemError(Exception):
    """Raise from a route to answer a problem with extension members (e.g. ``violations``)."""

    def __init__(
        self, status: int, detail: str, *, headers: dict[str, str] | None = None, **ext: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.ext, self.headers = status, detail, ext, headers


def _message(error: dict[str, Any], body: Any) -> str:
    """A validation error's message in words a caller can act on: where malformed JSON
    breaks (line and column), and the slug rule instead of the tenant id's regex."""
    if error["type"] == "json_invalid" and isinstance(body, str):
        pos = int(error["loc"][-1])
        line = body.count("\n", 0, pos) + 1
        column = pos - body.rfind("\n", 0, pos)
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return f"malformed JSON at line {line}, column {column}: {reason}"
    if error["type"] == "string_pattern_mismatch" and error["loc"][-1] == "tenant_id":
        try:
            validate_tenant_id(str(error.get("input")))
        except ValueError as rule:
            return str(rule)
    return str(error["msg"]).removeprefix("Value error, ")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


#: Seconds a client is asked to wait (``Retry-After``) when a dependency is down.
RETRY_AFTER_SECONDS = 5
#: Temporal answers that mean "not reachable now", not "this request is wrong".
UNAVAILABLE = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route fully answers on this path (Starlette's own ``Allow`` names
    only the methods of the first route whose path matches)."""
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def _workflow_not_ready(exc: RPCError) -> bool:
    """Temporal refused a signal, update or query because the workflow's task is being
    retried (``WorkflowNotReadyFailure``: e.g. its worker was lost and another takes over):
    transient, so a 503 to retry, not a 500."""
    return exc.status == RPCStatusCode.FAILED_PRECONDITION and any(
        d.type_url.endswith("WorkflowNotReadyFailure") for d in exc.grpc_status.details
    )


def _unavailable(request: Request, detail: str) -> JSONResponse:
    """503 with ``Retry-After``: a dependency is down or did not answer in time."""
    return problem(
        503,
        detail,
        instance=request.url.path,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into problem+json."""

    @app.exception_handler(LifecycleError)
    async def _domain(request: Request, exc: LifecycleError) -> JSONResponse:
        return problem(exc.status, exc.detail, title=exc.title, instance=request.url.path)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem(
            exc.status, exc.detail, instance=request.url.path, headers=exc.headers, **exc.ext
        )

    @app.exception_handler(RPCError)
    async def _temporal(request: Request, exc: RPCError) -> JSONResponse:
        if _workflow_not_ready(exc):
            return _unavailable(request, f"the operation's workflow is not ready: {exc}")
        if exc.status not in UNAVAILABLE:
            return await _internal(request, exc)
        return _unavailable(request, f"Temporal is unavailable ({exc.status.name}): {exc}")

    @app.exception_handler(WorkflowQueryFailedError)
    async def _query(request: Request, exc: WorkflowQueryFailedError) -> JSONResponse:
        # a workflow whose task is failing (or replaying on a busy worker) cannot answer now
        return _unavailable(request, f"the operation's workflow did not answer: {exc}")

    @app.exception_handler(TimeoutError)
    async def _timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return _unavailable(request, "a dependency did not answer in time")

    @app.exception_handler(ConnectionError)
    async def _connection(request: Request, exc: ConnectionError) -> JSONResponse:
        return _unavailable(request, f"a dependency refused the connection: {exc}")

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        return _unavailable(request, f"the database is unavailable: {type(exc.orig).__name__}")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not an input: logged with its traceback, answered without its details.
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal error; see the API's log", instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": "body" if e["type"] == "json_invalid" else _field(tuple(e["loc"])),
                "message": _message(e, exc.body),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, detail, instance=request.url.path, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # Starlette's 405 carries ``Allow``: keep it (RFC 9110 requires it) and name it.
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            detail = f"the body is not UTF-8: {exc.__cause__.reason} at byte {exc.__cause__.start}"
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return problem(
            exc.status_code,
            detail,
            instance=request.url.path,
            headers=headers,
        )
