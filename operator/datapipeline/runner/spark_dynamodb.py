"""DynamoDB tables and DynamoDB JSON lines as Spark data, for the Spark driver of HiveActivity and
HiveCopyActivity (runner/spark_hive.py). It runs in Spark's Python: the driver builds the plan of work, and the
executors (local threads or executor pods) run the functions below, each with its own boto3 client.

A table is read with DynamoDB's parallel scan, one Spark task per segment (``Segment``/``TotalSegments``), and
written with ``BatchWriteItem`` from each partition (the export tool's batching and retries). Credentials come
from the environment as for any boto3 program (the executor pods get the pipeline's keys by Secret reference);
the endpoint and region travel in the plan. Rows and items convert by core/dynamodbitems.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from datapipeline.core.dynamodbitems import (
    ITEM_COLUMN,
    Column,
    item_of,
    item_text,
    parse_item,
    row_of,
    spark_schema,
)

ERROR_COLUMN = "dynamodb_line_error"
SCAN_PAGE = 1000  # items per Scan call: DynamoDB returns at most 1 MB a page anyway


def client(conf: Mapping[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(region_name=conf["region"], connect_timeout=5, read_timeout=60,
                    retries={"max_attempts": int(os.environ.get("DATAPIPELINE_AWS_MAX_ATTEMPTS", "6")),
                             "mode": "adaptive"})  # adaptive: backs off when DynamoDB throttles
    return boto3.session.Session().client("dynamodb", endpoint_url=conf.get("endpoint") or None, config=config)


# ------------------------------------------------------------------------------------------------ reading
def read_table(spark: Any, conf: Mapping[str, Any], cols: tuple[Column, ...], with_item: bool) -> Any:
    """A DataFrame of the table's items, scanned in parallel segments (``conf["segments"]``, 0: one per core)."""
    segments = int(conf["segments"]) or max(1, int(spark.sparkContext.defaultParallelism))
    texts = spark.sparkContext.parallelize(range(segments), segments).flatMap(
        lambda segment: _scan_segment(conf, segment, segments))
    rows = texts.map(lambda text: _row(text, cols, with_item))
    return spark.createDataFrame(rows, spark_schema(cols, with_item))


def _scan_segment(conf: Mapping[str, Any], segment: int, segments: int) -> Iterator[str]:
    from datapipeline.runner.tools.dynamodb import encode

    pages = client(conf).get_paginator("scan").paginate(
        TableName=conf["table"], Segment=segment, TotalSegments=segments, PaginationConfig={"PageSize": SCAN_PAGE})
    for page in pages:
        for item in page.get("Items", ()):
            yield item_text(encode(item))


def _row(text: str, cols: tuple[Column, ...], with_item: bool) -> tuple[Any, ...]:
    item = parse_item(text)  # DynamoDB's own items: always well formed
    return row_of(item, cols, item_text(item) if with_item else None)


def read_lines(spark: Any, paths: list[str], cols: tuple[Column, ...], with_item: bool) -> Any:
    """A DataFrame of DynamoDB JSON lines (DynamoDBExportDataFormat files in S3), one item per line.

    Every line is checked before the frame is used (one extra pass over the files): a line that is not an item
    fails the attempt naming its file, before anything is written."""
    from pyspark.sql.functions import input_file_name

    lines = spark.read.text(paths).select("value", input_file_name().alias("file"))
    width = len(cols) + (1 if with_item else 0)
    rows = lines.rdd.filter(lambda r: r.value.strip()).map(
        lambda r: _row_or_error(r.value, cols, with_item, r.file.rsplit("/", 1)[-1], width))
    schema = ", ".join(filter(None, (spark_schema(cols, with_item), f"`{ERROR_COLUMN}` STRING")))
    frame = spark.createDataFrame(rows, schema)
    bad = frame.where(frame[ERROR_COLUMN].isNotNull()).select(ERROR_COLUMN).limit(1).collect()
    if bad:
        raise ValueError(bad[0][0])
    return frame.drop(ERROR_COLUMN)


def _row_or_error(text: str, cols: tuple[Column, ...], with_item: bool, where: str,
                  width: int) -> tuple[Any, ...]:
    try:
        item = parse_item(text)
    except ValueError as e:
        return (*([None] * width), f"{where}: not a DynamoDB JSON item ({e}): {text.strip()[:80]}")
    return (*row_of(item, cols, item_text(item) if with_item else None), None)


# ------------------------------------------------------------------------------------------------ writing
def write_table(frame: Any, conf: Mapping[str, Any], cols: tuple[Column, ...]) -> int:
    """Puts every row of ``frame`` as an item of the table; returns how many."""
    table = client(conf).describe_table(TableName=conf["table"])["Table"]
    keys = [k["AttributeName"] for k in table["KeySchema"]]
    # Every row must make an item with the table's key: checked first (one extra pass), so that a bad row fails
    # the attempt before any item is put.
    unkeyed = frame.rdd.map(lambda row: _unkeyed(row.asDict(), keys, cols)).filter(bool).take(1)
    if unkeyed:
        raise ValueError(f"table {conf['table']}: {unkeyed[0]}")
    counts = frame.rdd.mapPartitions(lambda rows: [_put_rows(conf, keys, cols, rows)])
    return int(counts.sum())


def _unkeyed(row: Mapping[str, Any], keys: list[str], cols: tuple[Column, ...]) -> str:
    """Why the row's item cannot be put (a key attribute missing), or the empty string."""
    item = item_of(row, cols)
    missing = [k for k in keys if k not in item]
    if not missing:
        return ""
    shown = {k: v for k, v in row.items() if k != ITEM_COLUMN}
    return f"a row has no {', '.join(missing)} (the table's key): {json.dumps(shown, default=str)[:120]}"


def _put_rows(conf: Mapping[str, Any], keys: list[str], cols: tuple[Column, ...], rows: Iterable[Any]) -> int:
    from datapipeline.runner.tools.dynamodb import BATCH, decode_item, encode, write_batch

    ddb, table = client(conf), conf["table"]
    batch: list[dict[str, Any]] = []
    in_batch: set[str] = set()
    count = 0
    for row in rows:
        item = decode_item(item_text(item_of(row.asDict(), cols)), f"table {table}")  # binary as bytes
        key = json.dumps([encode(item[k]) for k in keys])
        if key in in_batch or len(batch) == BATCH:  # a batch may not hold one key twice: the later item wins
            write_batch(ddb, table, batch)
            count += len(batch)
            batch, in_batch = [], set()
        batch.append(item)
        in_batch.add(key)
    if batch:
        write_batch(ddb, table, batch)
        count += len(batch)
    return count


def write_lines(spark: Any, frame: Any, path: str, cols: tuple[Column, ...], gzip: bool) -> None:
    """The rows as DynamoDB JSON lines in the directory ``path`` (replacing what it held), one item per line."""
    texts = frame.rdd.map(lambda row: (item_text(item_of(row.asDict(), cols)),))
    writer = spark.createDataFrame(texts, "value STRING").write.mode("overwrite")
    if gzip:
        writer = writer.option("compression", "gzip")
    writer.text(path)
