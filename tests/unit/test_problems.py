"""Temporal's transient refusals are 503s to retry, never 500s.

A workflow whose task is being retried (its worker was killed and another takes over)
refuses updates with FAILED_PRECONDITION + ``WorkflowNotReadyFailure``; the topology test met
it on ``POST /reactivate`` right after a worker kill. Raised here directly: the state is hard
to hold still on purpose."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from google.protobuf.any_pb2 import Any as AnyProto
from temporalio.api.common.v1 import GrpcStatus
from temporalio.service import RPCError, RPCStatusCode

from lifecycle.api import problems

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
