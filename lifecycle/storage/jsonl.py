"""JSON Lines codec of exported rows: one JSON object per row, types preserved as text.

Timestamps are ISO-8601 in UTC (a timestamp without time zone is taken as UTC), dates and
times ISO-8601, decimals strings (no float rounding), binary values base64, UUIDs strings,
intervals seconds, non-finite floats the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
:func:`decode_row` reverses :func:`encode_row` given the table's column types.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.types import TypeEngine

_PLAIN = frozenset({str, int, bool, type(None)})
#: One encoder for every row (json.dumps with options builds a new encoder per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: Reflected column names are SQLAlchemy ``quoted_name``s, a ``str`` subclass that orjson
#: refuses as a key without OPT_NON_STR_KEYS (every row then fell back to the stdlib
#: encoder, ~10x slower: found by profiling the export worker, 2026-12-03).
_ORJSON_KEYS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_ORJSON_ROW = _ORJSON_KEYS | orjson.OPT_NAIVE_UTC


def encode_value(value: Any) -> Any:
    """A JSON-able form of one column value (see the module docstring)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return encode_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return str(value)


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One row as a UTF-8 JSON line ending in ``\\n``.

    orjson writes it (about 20x the stdlib encoder here: the encoding holds the GIL, so it
    bounds an export's table chunks); the stdlib encoder takes what orjson refuses (integers
    beyond 64 bits). Both write compact UTF-8 JSON that decodes to the same values.
    """
    obj = {k: v if type(v) in _PLAIN else encode_value(v) for k, v in row.items()}
    try:
        return orjson.dumps(obj, option=_ORJSON_KEYS)
    except orjson.JSONEncodeError:
        return _ENCODER.encode(obj).encode("utf-8") + b"\n"


def row_encoder(table: Table) -> Callable[[dict[str, Any]], bytes]:
    """The fastest exact encoder of ``table``'s rows (dicts of column values).

    When no column can hold a value orjson writes otherwise than :func:`encode_row`, orjson
    encodes the row itself: naive timestamps as UTC, dates, UUIDs and enums natively,
    the rest (decimals, binary, intervals) through :func:`encode_value`, with no Python
    loop over the values (2-3x faster here). Otherwise, and for any row orjson refuses, it
    is :func:`encode_row`. The columns that need the slow path: floats (orjson writes NaN as
    null), timezone-aware timestamps (orjson keeps their offset, the export writes UTC),
    times of day (orjson 3.13 writes 10,000 microseconds as ``.10000``), JSON and array
    values (they may hold floats), and types without a Python type.
    """
    if any(_needs_encode_row(column.type) for column in table.columns):
        return encode_row
    return _encode_with_orjson


def _needs_encode_row(column_type: TypeEngine[Any]) -> bool:
    kind = _python_type(column_type)
    if kind is datetime:
        return bool(getattr(column_type, "timezone", False))
    return kind is None or kind in (float, dict, list, object, time)


def _encode_with_orjson(row: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(row, default=encode_value, option=_ORJSON_ROW)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits, a time with a zone
        return encode_row(row)


def _python_type(column_type: TypeEngine[Any]) -> type | None:
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


def decode_value(column_type: TypeEngine[Any], value: Any) -> Any:
    """Reverse :func:`encode_value` for a column of ``column_type``."""
    if value is None:
        return None
    kind = _python_type(column_type)
    if kind is bytes:
        return base64.b64decode(value)
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if getattr(column_type, "timezone", False):
            return parsed
        return parsed.astimezone(UTC).replace(tzinfo=None)
    if kind is date:
        return date.fromisoformat(value)
    if kind is time:
        return time.fromisoformat(value)
    if kind is Decimal:
        return Decimal(value)
    if kind is float:
        return _NON_FINITE.get(value, value) if isinstance(value, str) else float(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is timedelta:
        return timedelta(seconds=value)
    return value


def decode_row(table: Table, line: bytes | str) -> dict[str, Any]:
    """One JSON line back to the column values of ``table``'s row."""
    obj = json.loads(line)
    return {name: decode_value(table.c[name].type, value) for name, value in obj.items()}
