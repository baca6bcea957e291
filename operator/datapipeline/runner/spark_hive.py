"""The Spark driver of HiveActivity and HiveCopyActivity: ``spark-submit spark_hive.py PLAN.json``.

The runner (runner/activities/hive.py) writes the plan: the statements, already substituted and split,
each input's files, each output's directory, their Spark CSV options and schemas, and where to write
the result. This file runs in Spark's Python, so it imports nothing of the runner; it reports a
failing statement in the result file (number, Spark's error class and message) and exits 3, never with
a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

EXIT_STATEMENT_FAILED = 3
QUERY_KEYWORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "VALUES", "TABLE", "FROM", "EXPLAIN")
SHOWN_ROWS = 100


def main(plan_path: str) -> int:
    with open(plan_path, encoding="utf-8") as f:
        plan: dict[str, Any] = json.load(f)
    from pyspark.sql import SparkSession

    spark = _session(SparkSession, plan["name"])
    try:
        failure = _tables(spark, plan) or _statements(spark, plan["statements"])
    finally:
        spark.stop()
    with open(plan["result"], "w", encoding="utf-8") as f:
        json.dump(failure or {"status": "ok"}, f)
    return EXIT_STATEMENT_FAILED if failure else 0


def _session(session_class: Any, name: str) -> Any:
    """With Hive support when Spark has Hive's classes (pyspark does): a script's own Hive DDL (CREATE
    EXTERNAL TABLE ... ROW FORMAT DELIMITED ... LOCATION 's3://...') then works as on EMR. The metastore is
    Derby's, in the working directory: the attempt's scratch space, gone with it."""
    try:
        return session_class.builder.appName(name).enableHiveSupport().getOrCreate()
    except Exception as e:  # a Spark built without Hive: Spark SQL's own tables only
        print(f"Spark has no Hive support ({_first_lines(str(e))}); Hive DDL in the script will fail",
              file=sys.stderr, flush=True)
        return session_class.builder.appName(name).getOrCreate()


def _tables(spark: Any, plan: dict[str, Any]) -> dict[str, Any] | None:
    """Each input a view, each output a table stored at its directory, as Data Pipeline's Hive tables are."""
    for item in plan["inputs"]:
        try:
            reader = spark.read.options(**item["options"])
            if item["schema"]:
                reader = reader.schema(item["schema"])
            if item["paths"]:
                frame = reader.csv(item["paths"])
            elif item["schema"]:
                frame = spark.createDataFrame([], item["schema"])
            else:
                return _failed(item["what"], "it holds no files and its data format names no columns", "")
            frame.createOrReplaceTempView(item["table"])
        except Exception as e:
            return _failed(item["what"], *_describe(spark, e))
    for item in plan["outputs"]:
        try:
            schema = spark.createDataFrame([], item["schema"]).schema
            spark.catalog.createTable(item["table"], path=item["path"], source="csv", schema=schema,
                                      **item["options"])
        except Exception as e:
            return _failed(item["what"], *_describe(spark, e))
    return None


def _statements(spark: Any, statements: list[str]) -> dict[str, Any] | None:
    for number, statement in enumerate(statements, 1):
        started = time.monotonic()
        print(f"statement {number} of {len(statements)}: {_head(statement)}", flush=True)
        try:
            frame = spark.sql(statement)
            if statement.lstrip("( \n\t").split(None, 1)[0].upper() in QUERY_KEYWORDS:
                _show(frame)
        except Exception as e:
            error_class, message = _describe(spark, e)
            return {"status": "failed", "statement": number, "count": len(statements), "text": _head(statement),
                    "error_class": error_class, "message": message}
        print(f"statement {number} done in {time.monotonic() - started:.1f}s", flush=True)
    return None


def _show(frame: Any) -> None:
    """A query's rows, tab separated, as Hive's CLI prints them (at most SHOWN_ROWS)."""
    rows = frame.limit(SHOWN_ROWS + 1).collect()
    for row in rows[:SHOWN_ROWS]:
        print("\t".join("NULL" if v is None else str(v) for v in row), flush=True)
    if len(rows) > SHOWN_ROWS:
        print(f"... more than {SHOWN_ROWS} rows", flush=True)


def _failed(what: str, error_class: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "what": what, "error_class": error_class, "message": message}


def _describe(spark: Any, error: Exception) -> tuple[str, str]:
    """Spark's error class and message, without the JVM's stack (the cause's message when it adds one)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors.exceptions.captured import CapturedException

    if isinstance(error, CapturedException):
        error_class = error.getErrorClass() or type(error).__name__
        return error_class, _first_lines(error.desc or str(error))
    if isinstance(error, Py4JJavaError):
        java = error.java_exception
        utils = spark.sparkContext._jvm.org.apache.commons.lang3.exception.ExceptionUtils
        message = _first_lines(str(java.getMessage() or java.toString()))
        root = str(utils.getRootCauseMessage(java) or "")
        if root and root not in message:
            message += f" (caused by {_first_lines(root)})"
        return java.getClass().getSimpleName(), message
    return type(error).__name__, _first_lines(str(error))


def _first_lines(text: str, limit: int = 1500) -> str:
    """Spark's message without what follows it: a query plan, a stack, a JVM trace."""
    kept: list[str] = []
    for line in text.strip().splitlines():
        if line.startswith(("\tat ", "== ", "JVM stacktrace:", "'", "+-", " ")) or (kept and not line.strip()):
            break
        kept.append(line.rstrip())
    text = " ".join(kept).rstrip(";")
    return text if len(text) <= limit else text[:limit] + "..."


def _head(statement: str, limit: int = 100) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= limit else text[:limit] + "..."


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
