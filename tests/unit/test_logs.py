"""JSON log lines carry the tenant, the operation and the workflow (lifecycle.logs)."""

import json
import logging

from lifecycle.logs import DevFormatter, JsonFormatter, correlation


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


def test_dev_log_lines_are_one_short_human_line() -> None:
    try:
        raise ValueError("card declined\nsecond line")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.makeLogRecord(
        {
            "msg": "billing call failed for %s\n  detail that would interleave",
            "args": ("acme",),
            "levelname": "WARNING",
            "name": "temporalio.activity",
            "exc_info": exc_info,
            "temporal_activity": {
                "workflow_id": "tenant-acme-upgrade",
                "workflow_run_id": "r1",
                "activity_type": "change_subscription",
                "attempt": 3,
                "namespace": "default",
                "task_queue": "tenant-lifecycle",
            },
        }
    )
    line = DevFormatter().format(record)
    assert "\n" not in line and len(line) <= 160
    assert line.endswith(
        "WARNING activity: billing call failed for acme (ValueError: card declined) [acme upgrade]"
    )
    long = logging.makeLogRecord({"msg": "x" * 500, "levelname": "INFO", "name": "lifecycle"})
    assert len(DevFormatter(width=80).format(long)) == 80
