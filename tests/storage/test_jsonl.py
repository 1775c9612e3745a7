"""The export's row encoders: orjson straight over the row where that is exact."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Time,
    Uuid,
)
from sqlalchemy import Date as DateType
from sqlalchemy.sql.elements import quoted_name

from lifecycle.storage.jsonl import decode_row, encode_row, row_encoder

fast = Table(
    "fast",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String),
    Column("at", DateTime),
    Column("day", DateType),
    Column("amount", Numeric),
    Column("blob", LargeBinary),
    Column("key", Uuid),
    Column("span", Interval),
)
rows = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits: fallback
        "name": st.none() | st.text(),
        "at": st.none() | st.datetimes(),
        "day": st.none() | st.dates(),
        "amount": st.none() | st.decimals(allow_nan=False, allow_infinity=False),
        "blob": st.none() | st.binary(max_size=40),
        "key": st.none() | st.uuids(),
        # within a century: intervals are written as float seconds, exact to the microsecond
        # up to about 285 years (2**53 microseconds), for both encoders alike
        "span": st.none()
        | st.timedeltas(min_value=timedelta(days=-36_500), max_value=timedelta(days=36_500)),
    }
)


@given(row=rows)
def test_orjson_path_writes_what_encode_row_writes(row: dict[str, Any]) -> None:
    """Same JSON values as the reference encoder, one line, and the row decodes back."""
    encode = row_encoder(fast)
    assert encode is not encode_row
    line = encode(row)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == json.loads(encode_row(row))
    assert decode_row(fast, line) == row


def test_columns_orjson_would_write_otherwise_take_encode_row() -> None:
    """Floats (NaN would become null), aware timestamps (their offset would stay), times of
    day (orjson 3.13 writes 10,000 microseconds as ``.10000``), JSON."""
    for column in (
        Column("x", Float),
        Column("x", DateTime(timezone=True)),
        Column("x", Time),
        Column("x", JSON),
    ):
        table = Table("t", MetaData(), Column("id", Integer, primary_key=True), column)
        assert row_encoder(table) is encode_row
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("x", Float))
    assert json.loads(row_encoder(table)({"id": 1, "x": float("nan")}))["x"] == "NaN"
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("x", Time))
    assert json.loads(row_encoder(table)({"id": 1, "x": time(0, 0, 0, 10_000)}))["x"] == (
        "00:00:00.010000"
    )
    naive = datetime(2026, 1, 1, 12, 0, 0, 10_000, tzinfo=UTC).replace(tzinfo=None)
    assert row_encoder(fast)({"id": 1, "at": naive}) == encode_row({"id": 1, "at": naive})


def test_rows_of_reflected_tables_never_reach_the_stdlib_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reflected column names are ``quoted_name`` (a str subclass): orjson takes them as keys
    (it used to refuse them, and every exported row fell back to the stdlib encoder)."""
    from lifecycle.storage import jsonl

    def refuse(_obj: object) -> str:
        raise AssertionError("the stdlib encoder ran")

    monkeypatch.setattr(jsonl._ENCODER, "encode", refuse)
    row = {quoted_name("id", None): 7, quoted_name("name", None): "é"}
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("x", Float))
    assert (
        json.loads(row_encoder(fast)(row))
        == json.loads(encode_row(row))
        == {
            "id": 7,
            "name": "é",
        }
    )
    assert row_encoder(table) is encode_row
