"""DynamoDB items as rows of Hive columns, and rows back as items (HiveActivity and HiveCopyActivity, docs/spark.md).

A DynamoDBDataFormat or DynamoDBExportDataFormat names columns (``name TYPE``, Hive types). Reading, a column
takes the item's attribute of that name: a missing attribute, or one whose DynamoDB type the column cannot hold,
is NULL, as Hive's DynamoDB storage handler makes it. As the guide says, DynamoDB booleans are not Hive booleans,
but a number 0 or 1 is (and so is a BOOL here). Writing, each non-NULL column becomes the attribute of its
type. Items travel as DynamoDB JSON text (the low-level API's shape, binary values in base64): one line per item
in S3 with DynamoDBExportDataFormat, the same as ``datapipeline.runner.tools.dynamodb`` exports and imports.
Pure: no boto3, no Spark.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

EXPORT_FORMAT = "DynamoDBExportDataFormat"
DYNAMODB_FORMATS = ("DynamoDBDataFormat", EXPORT_FORMAT)
# With DynamoDBExportDataFormat a row also carries its whole item, so that a copy keeps every attribute of a
# sparse schema ("Exports all attributes from DynamoDB even if you have a sparse schema").
ITEM_COLUMN = "dynamodb_item"

_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT"})
_FLOATS = frozenset({"FLOAT", "DOUBLE"})
_STRINGS = frozenset({"STRING", "VARCHAR", "CHAR"})
KINDS = ("STRING", "VARCHAR(n)", "CHAR(n)", "TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE",
         "DECIMAL(p,s)", "BOOLEAN", "BINARY")
_TYPE = re.compile(r"([A-Za-z]+)\s*(\(\s*\d+\s*(,\s*\d+\s*)?\))?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ColumnError(ValueError):
    """A column a DynamoDB item cannot fill."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # the Hive type's name, upper case: STRING, BIGINT, DECIMAL...
    spark_type: str  # its Spark SQL type (VARCHAR and CHAR are plain strings here)


def columns(entries: Any, where: str) -> tuple[Column, ...]:
    """The format's ``column`` entries (``name TYPE``; STRING when no type), checked."""
    items = [entries] if isinstance(entries, str) else list(entries or ())
    found: list[Column] = []
    for index, entry in enumerate(items):
        name, _, type_text = str(entry).strip().partition(" ")
        type_text = type_text.strip() or "STRING"
        match = _TYPE.fullmatch(type_text)
        kind = match.group(1).upper() if match else ""
        if not _NAME.fullmatch(name):
            raise ColumnError(f"{where}: column[{index}] {str(entry)!r}: the name must be letters, digits and _ "
                              "(an attribute name), not starting with a digit")
        if name == ITEM_COLUMN:
            raise ColumnError(f"{where}: column[{index}]: {ITEM_COLUMN} is the name of the whole item's column")
        if match is None or not (kind in _INTEGERS | _FLOATS | _STRINGS | {"BOOLEAN", "BINARY"} or
                                 (kind == "DECIMAL")):
            raise ColumnError(f"{where}: column[{index}] {str(entry)!r}: a DynamoDB attribute fills only "
                              f"{', '.join(KINDS)}")
        spark_type = "STRING" if kind in _STRINGS else type_text.upper().replace(" ", "")
        found.append(Column(name, kind, spark_type))
    return tuple(found)


def spark_schema(cols: Sequence[Column], with_item: bool) -> str:
    """The Spark DDL schema of the rows :func:`row_of` makes."""
    parts = [f"`{c.name}` {c.spark_type}" for c in cols]
    return ", ".join([*parts, f"`{ITEM_COLUMN}` STRING"] if with_item else parts)


def parse_item(line: str) -> dict[str, Any]:
    """One DynamoDB JSON line (or DynamoDB's own S3 export line, ``{"Item": {...}}``) as the typed item."""
    item = json.loads(line)
    if not isinstance(item, dict) or not item:
        raise ValueError("an item must be a non-empty JSON object")
    wrapped = item.get("Item")
    if len(item) == 1 and isinstance(wrapped, dict) and not _is_attribute(wrapped):
        item = wrapped
    for name, value in item.items():
        if not _is_attribute(value):
            raise ValueError(f"attribute {name}: {json.dumps(value)[:80]} is not a DynamoDB JSON attribute value")
    return item


def row_of(item: Mapping[str, Any], cols: Sequence[Column], item_text: str | None) -> tuple[Any, ...]:
    """The row of ``item`` (typed DynamoDB JSON, binary in base64); ``item_text`` the whole item, kept as is."""
    values = tuple(value_of(item.get(c.name), c) for c in cols)
    return (*values, item_text) if item_text is not None else values


def value_of(attribute: Any, column: Column) -> Any:
    """The column's value for one attribute (None: missing, or a type the column cannot hold)."""
    if not _is_attribute(attribute):
        return None
    kind, value = next(iter(attribute.items()))
    if column.kind in _STRINGS:
        return value if kind in ("S", "N") else None
    if kind == "N":
        return _number(str(value), column)
    if column.kind == "BOOLEAN" and kind == "BOOL":
        return bool(value)
    if column.kind == "BINARY" and kind == "B":
        try:
            return bytearray(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError):
            return None
    return None


def _number(text: str, column: Column) -> Any:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if column.kind in _INTEGERS:
        return int(number) if number == number.to_integral_value() else None
    if column.kind in _FLOATS:
        return float(number)
    if column.kind == "DECIMAL":
        return number
    if column.kind == "BOOLEAN":
        return {Decimal(0): False, Decimal(1): True}.get(number)
    return None


def item_of(row: Mapping[str, Any], cols: Sequence[Column]) -> dict[str, Any]:
    """The item a row makes: its whole item when it carries one, else one attribute per non-NULL column."""
    whole = row.get(ITEM_COLUMN)
    if whole:
        return parse_item(str(whole))
    item: dict[str, Any] = {}
    for column in cols:
        value = row.get(column.name)
        if value is not None:
            item[column.name] = attribute_of(value, column)
    return item


def attribute_of(value: Any, column: Column) -> dict[str, Any]:
    if column.kind == "BOOLEAN":
        return {"BOOL": bool(value)}
    if column.kind == "BINARY":
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if column.kind in _STRINGS:
        return {"S": str(value)}
    return {"N": _number_text(value)}


def _number_text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def item_text(item: Mapping[str, Any]) -> str:
    """One item as one line of DynamoDB JSON (keys sorted, no spaces), as the export tool writes it."""
    return json.dumps(item, separators=(",", ":"), sort_keys=True)


def _is_attribute(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in (
        "S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
