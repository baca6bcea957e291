"""HiveActivity and HiveCopyActivity with Spark SQL (docs/spark.md).

The runner prepares everything a user can get wrong (the script, its variables, the data nodes and their
formats) before Spark starts, so those errors are quick and name the field; Spark then runs the plan in
runner/spark_hive.py, which reports a failing statement with Spark's own message.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

from datapipeline.core.dynamodbitems import (
    DYNAMODB_FORMATS,
    EXPORT_FORMAT,
    Column,
    ColumnError,
    columns,
    spark_schema,
)
from datapipeline.core.emrsteps import SparkSubmit
from datapipeline.core.hivescript import (
    ScriptError,
    needs_hive_support,
    overwritten_tables,
    script_variables,
    split_statements,
    substitute,
)
from datapipeline.core.sparkconf import SparkConfError, table_options, table_schema
from datapipeline.core.task import DataNodeSpec, TaskResult
from datapipeline.runner import spark
from datapipeline.runner.activities.hive_sql import (
    SQL_NODES,
    SqlOutput,
    drop_stages,
    publish,
    sql_input,
    sql_output,
)
from datapipeline.runner.activities.shell import Outcome
from datapipeline.runner.context import Context, strings
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import get
from datapipeline.runner.nodes import S3_TYPES, is_gzip, s3_files, s3_location
from datapipeline.runner.s3 import S3Url

log = get("hive")
DYNAMODB_NODE = "DynamoDBDataNode"
DRIVER = "datapipeline.runner.spark_hive"


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"{spec.type} {spec.name}"
    statements = _statements(ctx, what)
    secrets: dict[str, str] = {}  # environment of the Spark process only: SQL nodes' passwords
    inputs = [_input(ctx, node, i, secrets) for i, node in enumerate(spec.inputs, 1)]
    _check_outputs(spec.type, spec.outputs)
    staged: list[SqlOutput] = []
    try:
        return _run(ctx, what, statements, inputs, secrets, staged)
    finally:
        drop_stages(staged)


def _run(ctx: Context, what: str, statements: list[str], inputs: list[dict[str, Any]], secrets: dict[str, str],
         staged: list[SqlOutput]) -> TaskResult:
    spec = ctx.spec
    outputs = []
    for i, node in enumerate(spec.outputs, 1):
        if node.type in SQL_NODES:  # a staging table, its rows moved into the node's table at the end
            entry, out = sql_output(node, _check_node(spec.type, node, "output", i), i, secrets)
            staged.append(out)
            outputs.append(entry)
        else:
            outputs.append(_output(ctx, node, i, inputs))
    copy = None
    if spec.type == "HiveCopyActivity" and (inputs[0]["source"] != "files" or outputs[0]["sink"] != "table"):
        # DynamoDB on either side: the filtered rows go to the output by the DynamoDB adapter, whole items along.
        copy, statements = {"query": _copy_query(ctx)}, []
    launcher = spark.prepare(ctx, what)
    launcher.env.update(secrets)
    plan_path = os.path.join(ctx.scratch(), "hive-plan.json")
    result_path = os.path.join(ctx.scratch(), "hive-result.json")
    with open(plan_path, "w", encoding="utf-8") as f:
        json.dump({"name": what, "statements": statements, "inputs": inputs, "outputs": outputs, "copy": copy,
                   "hive": needs_hive_support(statements), "result": result_path}, f)
    log.info("running %d statement(s) with Spark SQL on %d input(s) and %d output(s)", len(statements),
             len(inputs), len(outputs))
    driver = _driver_path()
    argv = spark.submit_argv(launcher, SparkSubmit(driver, (plan_path,)), driver)
    outcome = spark.run(launcher, ctx, argv, what)
    if outcome.returncode != 0:
        raise _failure(what, result_path, outcome)
    publish(staged, overwritten_tables(statements))
    return TaskResult("FINISHED", output_uris=tuple(_written(ctx, spec.outputs)))


def _check_outputs(activity: str, outputs: tuple[DataNodeSpec, ...]) -> None:
    """Every output's type, before a staging table is made for any."""
    for i, node in enumerate(outputs, 1):
        _check_node(activity, node, "output", i)


def _driver_path() -> str:
    found = importlib.util.find_spec(DRIVER)
    assert found is not None and found.origin is not None, "the runner package lost its Spark driver"
    return found.origin


def _statements(ctx: Context, what: str) -> list[str]:
    """The script (HiveActivity) or the copy (HiveCopyActivity), substituted and split into statements."""
    spec = ctx.spec
    tables = {f"input{i}": f"input{i}" for i in range(1, len(spec.inputs) + 1)}
    tables.update({f"output{i}": f"output{i}" for i in range(1, len(spec.outputs) + 1)})
    try:
        variables = {**script_variables(strings(ctx.field("scriptVariable"))), **tables}
        script = _script(ctx, what)
        statements = split_statements(substitute(script, variables))
    except ScriptError as e:
        raise InvalidTask(f"{what}: {e}", "Hive.BadScript") from None
    if not statements:
        raise InvalidTask(f"{what}: the script holds no statement", "Hive.BadScript")
    if spec.type == "HiveCopyActivity" and len(statements) != 1:
        raise InvalidTask(f"{what}: filterSql is one condition (what follows WHERE), not several statements",
                          "Hive.BadScript")
    return statements


def _script(ctx: Context, what: str) -> str:
    if ctx.spec.type == "HiveCopyActivity":
        if len(ctx.spec.inputs) != 1 or len(ctx.spec.outputs) != 1:
            raise InvalidTask(f"{what}: HiveCopyActivity copies one input to one output, not "
                              f"{len(ctx.spec.inputs)} to {len(ctx.spec.outputs)}")
        return f"INSERT OVERWRITE TABLE output1 {_copy_query(ctx)}"
    text, uri = ctx.field("hiveScript"), ctx.field("scriptUri")
    if bool(text) == bool(uri):
        raise InvalidTask(f"{what}: set exactly one of hiveScript and scriptUri")
    if text:
        return str(text)
    url = S3Url.parse(uri, f"{what} scriptUri")
    return ctx.s3.read_text(url, f"{what} scriptUri ({url})")


def _copy_query(ctx: Context) -> str:
    where = ctx.field("filterSql")
    return "SELECT * FROM input1" + (f" WHERE ({where})" if where else "")


def _check_node(activity: str, node: DataNodeSpec, role: str, index: int) -> str:
    where = f"{role} {node.name!r} (${{{role}{index}}})"
    if node.type in SQL_NODES and activity == "HiveCopyActivity":
        raise InvalidTask(f"{where}: HiveCopyActivity copies S3 and DynamoDB data; read or write a SQL table with a "
                          "HiveActivity or a CopyActivity", "Task.UnsupportedNode")
    if node.type not in (*S3_TYPES, DYNAMODB_NODE, *SQL_NODES):
        raise InvalidTask(f"{where}: a Hive table here is an S3DataNode's, a DynamoDBDataNode's or a SQL table's "
                          f"data, not a {node.type}'s", "Task.UnsupportedNode")
    return where


def _dynamodb_columns(node: DataNodeSpec, where: str, required: bool) -> tuple[Column, ...] | None:
    """The node's DynamoDB format's columns; None when it has no DynamoDB format (and need not)."""
    data_format = node.data_format
    if data_format is None or data_format.type not in DYNAMODB_FORMATS:
        if required:
            raise InvalidTask(f"{where}: a DynamoDB table is read through a DynamoDBDataFormat or "
                              "DynamoDBExportDataFormat naming its columns: give the node one as dataFormat",
                              "Task.UnsupportedFormat")
        return None
    try:
        return columns(data_format.fields.get("column"), f"{where} data format {data_format.type}")
    except ColumnError as e:
        raise InvalidTask(str(e), "Task.UnsupportedFormat") from None


def _dynamodb_conf(ctx: Context, node: DataNodeSpec, where: str) -> dict[str, Any]:
    table = str(node.fields.get("tableName") or "")
    if not table:
        raise InvalidTask(f"{where}: tableName is required")
    # AWS definitions spell regions both ways ("us-west-1", "us_west_1").
    region = str(node.fields.get("region") or ctx.spec.aws.region).replace("_", "-").lower()
    return {"table": table, "region": region, "endpoint": ctx.spec.aws.dynamodb_endpoint_url, "segments": 0}


def _input(ctx: Context, node: DataNodeSpec, index: int, secrets: dict[str, str]) -> dict[str, Any]:
    where = _check_node(ctx.spec.type, node, "input", index)
    if node.type in SQL_NODES:
        return sql_input(node, where, index, secrets)
    cols = _dynamodb_columns(node, where, required=node.type == DYNAMODB_NODE)
    if cols is not None:
        assert node.data_format is not None
        entry: dict[str, Any] = {
            "table": f"input{index}", "what": where, "columns": list(node.data_format.fields.get("column") or ()),
            "with_item": node.data_format.type == EXPORT_FORMAT, "schema": spark_schema(cols, False),
            "options": {}, "paths": []}
        if node.type == DYNAMODB_NODE:
            return {**entry, "source": "dynamodb", "dynamodb": _dynamodb_conf(ctx, node, where)}
        return {**entry, "source": "dynamodb-lines", "paths": [_s3a(f) for f in _data_files(ctx, node, where)]}
    try:
        options, schema = table_options(node.data_format, False, where), table_schema(node.data_format)
    except SparkConfError as e:
        raise InvalidTask(str(e), "Task.UnsupportedFormat") from None
    files = _data_files(ctx, node, where)
    return {"table": f"input{index}", "what": where, "paths": [_s3a(f) for f in files], "options": options,
            "schema": schema, "source": "files",
            "entries": list(node.data_format.fields.get("column") or ()) if node.data_format else []}


def _data_files(ctx: Context, node: DataNodeSpec, where: str) -> list[S3Url]:
    # Hadoop's rule: names starting with _ or . are bookkeeping (_SUCCESS), not data.
    files = [f for f in s3_files(ctx, node, "input")
             if not os.path.basename(f.key).startswith(("_", ".")) and not f.key.endswith("/")]
    if not files:
        log.warning("%s holds no files: the table is empty", where)
    return files


def _output(ctx: Context, node: DataNodeSpec, index: int, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    where = _check_node(ctx.spec.type, node, "output", index)
    copy = ctx.spec.type == "HiveCopyActivity"
    cols = _dynamodb_columns(node, where, required=False)
    if (node.type == DYNAMODB_NODE or cols is not None) and not copy:
        raise InvalidTask(f"{where}: HiveActivity writes Hive tables (CSV, TSV, Custom) on S3 here; to write a "
                          "DynamoDB table or DynamoDB JSON, copy with a HiveCopyActivity", "Task.UnsupportedNode")
    if node.type == DYNAMODB_NODE or cols is not None:
        # A copy's items: the output format's columns, else the input's (whole items, when they travel, win).
        entries = list(node.data_format.fields.get("column") or ()) if node.data_format else []
        entry = {"table": f"output{index}", "what": where,
                 "columns": entries or (inputs[0]["columns"] if "columns" in inputs[0] else
                                        _plain_columns(inputs[0], where))}
        if node.type == DYNAMODB_NODE:
            return {**entry, "sink": "dynamodb", "dynamodb": _dynamodb_conf(ctx, node, where)}
        kind, url = s3_location(node, "output")
        if kind != "directoryPath":
            raise InvalidTask(f"{where}: DynamoDB JSON lines go to a directory: give the node a directoryPath, "
                              f"not a {kind}")
        return {**entry, "sink": "dynamodb-lines", "path": _s3a(S3Url(url.bucket, url.dir_prefix)),
                "gzip": is_gzip(node)}
    kind, url = s3_location(node, "output")
    if kind != "directoryPath":
        raise InvalidTask(f"{where}: a Hive table is a directory: give the node a directoryPath, not a {kind}")
    try:
        options, schema = table_options(node.data_format, is_gzip(node), where), table_schema(node.data_format)
    except SparkConfError as e:
        raise InvalidTask(str(e), "Task.UnsupportedFormat") from None
    if schema is None and len(inputs) == 1 and inputs[0]["schema"]:
        schema = inputs[0]["schema"]  # a copy keeps its input's columns, as HiveCopyActivity does
    if schema is None:
        raise InvalidTask(f"{where}: the table needs columns: give the node's data format a column list "
                          "('name TYPE' entries)")
    return {"table": f"output{index}", "what": where, "path": _s3a(S3Url(url.bucket, url.dir_prefix)),
            "options": options, "schema": schema, "sink": "table"}


def _plain_columns(source: dict[str, Any], where: str) -> list[str]:
    """A CSV input's ``name TYPE`` column entries, for items made from its rows."""
    if not source.get("entries"):
        raise InvalidTask(f"{where}: items are made from the input's columns: give the input's data format a "
                          "column list ('name TYPE' entries)", "Task.UnsupportedFormat")
    return list(source["entries"])


def _s3a(url: S3Url) -> str:
    return f"s3a://{url.bucket}/{url.key}"


def _failure(what: str, result_path: str, outcome: Outcome) -> TaskError:
    try:
        with open(result_path, encoding="utf-8") as f:
            result = json.load(f)
    except (OSError, ValueError):
        detail = spark.failure_detail(outcome)
        return TaskError("Spark.Failed", f"{what}: Spark exited with status {outcome.returncode}"
                         + (f": {detail}" if detail else ""))
    message = str(result["message"])
    if not message.startswith(f"[{result['error_class']}]"):  # Spark's newer messages name their class already
        message = f"{result['error_class']}: {message}"
    if "statement" in result:
        return TaskError("Hive.StatementFailed", f"{what}: statement {result['statement']} of {result['count']} "
                         f"({result['text']}) failed: {message}")
    return TaskError("Hive.TableFailed", f"{what}: {result['what']}: {message}")


def _written(ctx: Context, outputs: tuple[DataNodeSpec, ...]) -> list[str]:
    """The data files the outputs now hold (at most 20, as every activity reports)."""
    uris: list[str] = []
    for node in outputs:
        if node.type not in S3_TYPES:
            continue  # a DynamoDB table: the copy's log says how many items it put
        _, url = s3_location(node, "output")
        for file, _ in ctx.s3.list(S3Url(url.bucket, url.dir_prefix), f"output {node.name!r}", limit=100):
            if not os.path.basename(file.key).startswith(("_", ".")) and len(uris) < 20:
                uris.append(str(file))
    return uris
