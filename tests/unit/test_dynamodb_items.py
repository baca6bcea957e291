"""DynamoDB items as Hive rows and back (core/dynamodbitems.py): types, sparse items, whole items, bad input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from datapipeline.core.dynamodbitems import (
    ITEM_COLUMN,
    ColumnError,
    columns,
    item_of,
    item_text,
    parse_item,
    row_of,
    spark_schema,
)

COLS = columns(["id", "n INT", "total DOUBLE", "price DECIMAL(10,2)", "ok BOOLEAN", "raw BINARY",
                "name VARCHAR(20)"], "format")


def test_columns_default_to_string_and_give_spark_types() -> None:
    assert [(c.name, c.kind, c.spark_type) for c in COLS] == [
        ("id", "STRING", "STRING"), ("n", "INT", "INT"), ("total", "DOUBLE", "DOUBLE"),
        ("price", "DECIMAL", "DECIMAL(10,2)"), ("ok", "BOOLEAN", "BOOLEAN"), ("raw", "BINARY", "BINARY"),
        ("name", "VARCHAR", "STRING")]
    assert spark_schema(COLS[:2], with_item=True) == f"`id` STRING, `n` INT, `{ITEM_COLUMN}` STRING"
    assert columns("ts BIGINT", "f")[0].kind == "BIGINT"  # one column as a plain string, as AWS writes it
    assert columns(None, "f") == ()


@pytest.mark.parametrize(("entries", "message"), [
    (["ts TIMESTAMP"], "f: column[0] 'ts TIMESTAMP': a DynamoDB attribute fills only STRING, VARCHAR(n), CHAR(n), "
                       "TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p,s), BOOLEAN, BINARY"),
    (["a INT", "tags ARRAY<STRING>"], "f: column[1] 'tags ARRAY<STRING>': a DynamoDB attribute fills only"),
    (["1st STRING"], "f: column[0] '1st STRING': the name must be letters, digits and _"),
    (["`x` STRING"], "f: column[0] '`x` STRING': the name must be"),
    ([f"{ITEM_COLUMN} STRING"], f"f: column[0]: {ITEM_COLUMN} is the name of the whole item's column"),
])
def test_columns_a_dynamodb_item_cannot_fill_are_refused_naming_them(entries: list[str], message: str) -> None:
    with pytest.raises(ColumnError) as refused:
        columns(entries, "f")
    assert str(refused.value).startswith(message)


def test_a_sparse_or_mistyped_item_gives_nulls_as_hive_does() -> None:
    item = {"id": {"S": "a"}, "n": {"N": "7"}, "total": {"N": "2.5"}, "price": {"N": "19.99"},
            "ok": {"N": "1"}, "raw": {"B": "AAE="}, "name": {"N": "12"}}
    assert row_of(item, COLS, None) == ("a", 7, 2.5, Decimal("19.99"), True, bytearray(b"\x00\x01"), "12")
    odd = {"id": {"N": "5"}, "n": {"N": "7.5"}, "total": {"S": "x"}, "price": {"N": "NaN"}, "ok": {"N": "2"},
           "raw": {"B": "not base64!"}, "name": {"SS": ["a"]}}
    assert row_of(odd, COLS, None) == ("5", None, None, None, None, None, None)
    assert row_of({}, COLS, "whole") == (None,) * len(COLS) + ("whole",)
    assert row_of({"ok": {"BOOL": False}}, COLS, None)[4] is False


def test_an_item_is_the_whole_item_when_the_row_carries_it_else_its_columns() -> None:
    whole = {"id": {"S": "a"}, "extra": {"M": {"k": {"L": [{"NULL": True}]}}}}
    assert item_of({ITEM_COLUMN: item_text(whole), "id": "ignored"}, COLS) == whole
    row: dict[str, Any] = {"id": "b", "n": 3, "total": 0.1, "price": Decimal("1.50"), "ok": False,
                           "raw": bytearray(b"\xff"), "name": None}
    assert item_of(row, COLS) == {"id": {"S": "b"}, "n": {"N": "3"}, "total": {"N": "0.1"},
                                  "price": {"N": "1.50"}, "ok": {"BOOL": False}, "raw": {"B": "/w=="}}


def test_lines_are_dynamodb_json_or_dynamodbs_own_export_and_nothing_else() -> None:
    assert parse_item('{"id": {"S": "a"}}') == {"id": {"S": "a"}}
    assert parse_item('{"Item": {"id": {"S": "a"}}}') == {"id": {"S": "a"}}
    assert parse_item('{"Item": {"S": "an attribute named Item"}}') == {"Item": {"S": "an attribute named Item"}}
    for line, message in (("[]", "an item must be a non-empty JSON object"), ("{}", "an item must be"),
                          ('{"id": "b"}', 'attribute id: "b" is not a DynamoDB JSON attribute value'),
                          ('{"id": {"X": 1}}', 'attribute id: {"X": 1} is not')):
        with pytest.raises(ValueError) as refused:
            parse_item(line)
        assert str(refused.value).startswith(message)
    with pytest.raises(ValueError):
        parse_item("not json")
