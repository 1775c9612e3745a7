"""JSON log lines carry the tenant, the operation and the workflow (lifecycle.logs)."""

import json
import logging

from lifecycle.logs import JsonFormatter, correlation


def test_json_log_lines_carry_tenant_operation_workflow() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "billing skipped for %s",
            "args": ("acme",),
            "levelname": "WARNING",
            "name": "temporalio.activity",
            "temporal_activity": {
                "workflow_id": "tenant-acme-upgrade",
                "workflow_run_id": "r1",
                "activity_type": "change_subscription",
            },
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "billing skipped for acme" and line["level"] == "WARNING"
    assert (line["tenant_id"], line["operation"], line["workflow_id"]) == (
        "acme",
        "upgrade",
        "tenant-acme-upgrade",
    )
    assert line["activity"] == "change_subscription" and line["time"].endswith("Z")
    assert correlation(logging.makeLogRecord({"msg": "plain"})) == {}
