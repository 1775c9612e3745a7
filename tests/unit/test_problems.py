"""Temporal's transient refusals are 503s to retry, never 500s.

A workflow whose task is being retried (its worker was killed and another takes over)
refuses updates with FAILED_PRECONDITION + ``WorkflowNotReadyFailure``; the topology test met
it on ``POST /reactivate`` right after a worker kill. Raised here directly: the state is hard
to hold still on purpose."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from google.protobuf.any_pb2 import Any as AnyProto
from pydantic import BaseModel
from temporalio.api.common.v1 import GrpcStatus
from temporalio.service import RPCError, RPCStatusCode

from lifecycle.api import problems
from lifecycle.api.routes.tenants import TenantId

NOT_READY = "type.googleapis.com/temporal.api.errordetails.v1.WorkflowNotReadyFailure"


def app_raising(error: Exception) -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.post("/update")
    async def update() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


def rpc_error(status: RPCStatusCode, detail_type: str | None) -> RPCError:
    details = [AnyProto(type_url=detail_type)] if detail_type else []
    raw = GrpcStatus(code=status.value, message="refused", details=details).SerializeToString()
    return RPCError("refused", status, raw)


def test_workflow_not_ready_is_503_with_retry_after() -> None:
    r = app_raising(rpc_error(RPCStatusCode.FAILED_PRECONDITION, NOT_READY)).post("/update")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert "not ready" in r.json()["detail"]


def test_other_failed_preconditions_stay_internal_errors() -> None:
    r = app_raising(rpc_error(RPCStatusCode.FAILED_PRECONDITION, None)).post("/update")
    assert r.status_code == 500 and r.json()["detail"] == "internal error; see the API's log"


class Reason(BaseModel):
    reason: str


def validating_app() -> TestClient:
    """The API's problem handlers on a route shaped like the real ones (a ``TenantId`` path
    and a JSON body)."""
    app = FastAPI()
    problems.install(app)

    @app.post("/tenants/{tenant_id}/suspend")
    async def suspend(tenant_id: TenantId, body: Reason) -> None:
        return None

    return TestClient(app)


def test_malformed_json_names_line_and_column() -> None:
    r = validating_app().post(
        "/tenants/acme-co/suspend",
        content=b'{\n  "reason": "late",\n  oops\n}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"][0]["field"] == "body"
    assert problem["detail"].startswith("body: malformed JSON at line 3, column 3: ")


def test_a_bad_tenant_id_gets_the_slug_rule_not_a_regex() -> None:
    r = validating_app().post("/tenants/Bad_Id/suspend", json={"reason": "x"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "is not a valid slug: 3-63 characters of a-z, 0-9 and single hyphens" in detail
    assert "^" not in detail  # no raw pattern
