"""Logging set-up: readable lines on the embedded default, one JSON object per line in
production (TEMPORAL_ADDRESS set), each carrying tenant_id, operation and workflow_id when the
record comes from a lifecycle activity or workflow."""

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
    """Root logger at LOG_LEVEL; JSON lines unless running the embedded default; every line
    redacted (:class:`RedactingFilter`)."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    if settings.embedded:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        formatter = JsonFormatter()
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
