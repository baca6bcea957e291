"""The Spark driver of HiveActivity and HiveCopyActivity: ``spark-submit spark_hive.py PLAN.json``.

The runner (runner/activities/hive.py) writes the plan: the statements, already substituted and split,
each input's files (or DynamoDB table), each output's directory (or DynamoDB table), their Spark CSV options
and schemas, and where to write the result. This file runs in Spark's Python; it imports the runner's
DynamoDB adapter (runner/spark_dynamodb.py) only when a node is a DynamoDB table or DynamoDB JSON lines. It
reports a failing statement in the result file (number, Spark's error class and message) and exits 3, never
with a traceback.
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

    spark = _session(SparkSession, plan["name"], bool(plan.get("hive", True)))
    try:
        failure = _tables(spark, plan) or _statements(spark, plan["statements"]) or _copy(spark, plan)
    finally:
        spark.stop()
    with open(plan["result"], "w", encoding="utf-8") as f:
        json.dump(failure or {"status": "ok"}, f)
    return EXIT_STATEMENT_FAILED if failure else 0


def _session(session_class: Any, name: str, hive: bool) -> Any:
    """With Hive support when the script needs it (the runner says) and Spark has Hive's classes (pyspark does):
    a script's own Hive DDL (CREATE EXTERNAL TABLE ... ROW FORMAT DELIMITED ... LOCATION 's3://...') then works
    as on EMR. The metastore is Derby's, in the working directory: the attempt's scratch space, gone with it.
    Without Hive DDL, Spark's own catalog serves the input views and output tables, and no metastore starts."""
    if not hive:
        return session_class.builder.appName(name).getOrCreate()
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
            if item.get("source") == "jdbc":
                frame = _jdbc_frame(spark, item["jdbc"], query=item["jdbc"]["query"])
            elif item.get("source", "files") != "files":
                frame = _dynamodb_input(spark, item)
            elif item["paths"]:
                reader = spark.read.options(**item["options"])
                frame = (reader.schema(item["schema"]) if item["schema"] else reader).csv(item["paths"])
            elif item["schema"]:
                frame = spark.createDataFrame([], item["schema"])
            else:
                return _failed(item["what"], "it holds no files and its data format names no columns", "")
            frame.createOrReplaceTempView(item["table"])
        except Exception as e:
            return _failed(item["what"], *_describe(spark, e))
    for item in plan["outputs"]:
        if item.get("sink") == "jdbc":  # the runner's staging table; INSERT OVERWRITE truncates it, never drops it
            try:
                _jdbc_frame(spark, item["jdbc"], truncate="true").createOrReplaceTempView(item["table"])
            except Exception as e:
                return _failed(item["what"], *_describe(spark, e))
            continue
        if item.get("sink", "table") != "table":
            continue  # written by _copy
        try:
            schema = spark.createDataFrame([], item["schema"]).schema
            spark.catalog.createTable(item["table"], path=item["path"], source="csv", schema=schema,
                                      **item["options"])
        except Exception as e:
            return _failed(item["what"], *_describe(spark, e))
    return None


def _jdbc_frame(spark: Any, jdbc: dict[str, Any], **options: str) -> Any:
    """A SQL query (an input) or table (an output's staging table) through Spark's JDBC source; the password
    comes from the Spark process's environment, where the runner put it."""
    import os

    every = {**jdbc["properties"], "url": jdbc["url"], "driver": jdbc["driver"], "user": jdbc["user"],
             "password": os.environ.get(jdbc["password_env"], ""), **options}
    if "dbtable" in jdbc:
        every["dbtable"] = jdbc["dbtable"]
    return spark.read.format("jdbc").options(**every).load()


def _dynamodb_input(spark: Any, item: dict[str, Any]) -> Any:
    from datapipeline.core.dynamodbitems import columns
    from datapipeline.runner import spark_dynamodb

    cols = columns(item["columns"], item["what"])
    if item["source"] == "dynamodb":
        return spark_dynamodb.read_table(spark, item["dynamodb"], cols, item["with_item"])
    if not item["paths"]:
        from datapipeline.core.dynamodbitems import spark_schema

        return spark.createDataFrame([], spark_schema(cols, item["with_item"]))
    return spark_dynamodb.read_lines(spark, item["paths"], cols, item["with_item"])


def _copy(spark: Any, plan: dict[str, Any]) -> dict[str, Any] | None:
    """HiveCopyActivity to a DynamoDB table, to DynamoDB JSON lines, or from items (whole items travel along)."""
    copy = plan.get("copy")
    if not copy:
        return None
    from datapipeline.core.dynamodbitems import ITEM_COLUMN, columns
    from datapipeline.runner import spark_dynamodb

    output = plan["outputs"][0]
    started = time.monotonic()
    print(f"copy: {_head(copy['query'])} into {output['what']}", flush=True)
    try:
        frame = spark.sql(copy["query"])
        cols = columns(output["columns"], output["what"]) if output["sink"] != "table" else ()
        if output["sink"] == "dynamodb":
            count = spark_dynamodb.write_table(frame, output["dynamodb"], cols)
            print(f"copy: put {count} item(s) into table {output['dynamodb']['table']}", flush=True)
        elif output["sink"] == "dynamodb-lines":
            spark_dynamodb.write_lines(spark, frame, output["path"], cols, bool(output.get("gzip")))
        else:  # a Hive table on S3: the columns, without the whole item
            kept = frame.drop(ITEM_COLUMN) if ITEM_COLUMN in frame.columns else frame
            kept.write.insertInto(output["table"], overwrite=True)
    except Exception as e:
        return _failed(output["what"], *_describe(spark, e))
    print(f"copy done in {time.monotonic() - started:.1f}s", flush=True)
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
        if type(error).__name__ == "PythonException":  # a task's Python error: its last line says it
            lines = [line.strip() for line in str(error.desc or error).splitlines() if line.strip()]
            return "PythonException", (lines[-1] if lines else "")[:1500]
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
