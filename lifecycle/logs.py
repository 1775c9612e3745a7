"""Logging set-up: one short human line per record on the embedded default, one JSON object
per line in production (TEMPORAL_ADDRESS set), each carrying tenant_id, operation and
workflow_id when the record comes from a lifecycle activity or workflow."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from lifecycle.config import Settings
from lifecycle.domain.operations import parse_workflow_id
from lifecycle.domain.text import redact

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def correlation(record: logging.LogRecord) -> dict[str, Any]:
    """tenant_id, operation, workflow_id (and run/activity) of a record from the Temporal
    SDK's activity or workflow logger (``temporal_activity`` / ``temporal_workflow``)."""
    info = getattr(record, "temporal_activity", None) or getattr(record, "temporal_workflow", None)
    if not isinstance(info, dict) or "workflow_id" not in info:
        return {}
    out = {
        "workflow_id": info["workflow_id"],
        "run_id": info.get("workflow_run_id") or info.get("run_id"),
    }
    if "activity_type" in info:
        out["activity"] = info["activity_type"]
    parsed = parse_workflow_id(info["workflow_id"])
    if parsed:
        out["tenant_id"], out["operation"] = parsed
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC ISO-8601), level, logger, message, the
    correlation fields and any ``extra=`` given by the caller."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        body.update(correlation(record))
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("temporal_") and key not in body:
                body[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exception"] = record.exc_text
        return redact(json.dumps(body, default=str))


class DevFormatter(logging.Formatter):
    """One short line per record for a terminal (the embedded default): ``HH:MM:SS LEVEL
    logger: message [tenant operation]``, the first line of the message only, an exception
    as ``(Type: text)`` on the same line, cut to ``width`` characters. The Temporal SDK's
    context dict is left out (see :func:`configure_logging`); the tenant and the operation
    name where the line comes from."""

    def __init__(self, width: int = 160) -> None:
        super().__init__()
        self.width = width

    def format(self, record: logging.LogRecord) -> str:
        message = (record.getMessage().strip().splitlines() or [""])[0]
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})"
        where = correlation(record)
        if "tenant_id" in where:
            message += f" [{where['tenant_id']} {where['operation']}]"
        name = record.name.removeprefix("temporalio.")
        at = time.strftime("%H:%M:%S", self.converter(record.created))
        line = f"{at} {record.levelname:<7} {name}: {message}"
        return redact(line if len(line) <= self.width else line[: self.width - 1] + "…")


class RedactingFilter(logging.Filter):
    """Rewrites every record's message with URL userinfo and query strings as ``***``
    (webhook credentials, tokens in URLs, signed download links in the access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure_logging(settings: Settings) -> None:
    """Root logger at LOG_LEVEL; JSON lines unless running the embedded default (then
    :class:`DevFormatter`); every line redacted (:class:`RedactingFilter`). The Temporal SDK's
    activity and workflow loggers stop appending their context dict to messages: the
    correlation fields carry it (``temporal_activity`` / ``temporal_workflow`` extras)."""
    from temporalio import activity, workflow

    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    if settings.embedded:
        handler.setFormatter(DevFormatter())
    else:
        formatter = JsonFormatter()
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
