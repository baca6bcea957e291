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

from datapipeline.core.emrsteps import SparkSubmit
from datapipeline.core.hivescript import ScriptError, script_variables, split_statements, substitute
from datapipeline.core.sparkconf import SparkConfError, table_options, table_schema
from datapipeline.core.task import DataNodeSpec, TaskResult
from datapipeline.runner import spark
from datapipeline.runner.activities.shell import Outcome
from datapipeline.runner.context import Context, strings
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import get
from datapipeline.runner.nodes import S3_TYPES, is_gzip, s3_files, s3_location
from datapipeline.runner.s3 import S3Url

log = get("hive")
DRIVER = "datapipeline.runner.spark_hive"


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"{spec.type} {spec.name}"
    statements = _statements(ctx, what)
    inputs = [_input(ctx, node, i) for i, node in enumerate(spec.inputs, 1)]
    outputs = [_output(node, i, inputs) for i, node in enumerate(spec.outputs, 1)]
    launcher = spark.prepare(ctx, what)
    plan_path = os.path.join(ctx.scratch(), "hive-plan.json")
    result_path = os.path.join(ctx.scratch(), "hive-result.json")
    with open(plan_path, "w", encoding="utf-8") as f:
        json.dump({"name": what, "statements": statements, "inputs": inputs, "outputs": outputs,
                   "result": result_path}, f)
    log.info("running %d statement(s) with Spark SQL on %d input(s) and %d output(s)", len(statements),
             len(inputs), len(outputs))
    driver = _driver_path()
    argv = spark.submit_argv(launcher, SparkSubmit(driver, (plan_path,)), driver)
    outcome = spark.run(launcher, ctx, argv, what)
    if outcome.returncode != 0:
        raise _failure(what, result_path, outcome)
    return TaskResult("FINISHED", output_uris=tuple(_written(ctx, spec.outputs)))


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
    return statements


def _script(ctx: Context, what: str) -> str:
    if ctx.spec.type == "HiveCopyActivity":
        if len(ctx.spec.inputs) != 1 or len(ctx.spec.outputs) != 1:
            raise InvalidTask(f"{what}: HiveCopyActivity copies one input to one output, not "
                              f"{len(ctx.spec.inputs)} to {len(ctx.spec.outputs)}")
        where = ctx.field("filterSql")
        return "INSERT OVERWRITE TABLE output1 SELECT * FROM input1" + (f" WHERE ({where})" if where else "")
    text, uri = ctx.field("hiveScript"), ctx.field("scriptUri")
    if bool(text) == bool(uri):
        raise InvalidTask(f"{what}: set exactly one of hiveScript and scriptUri")
    if text:
        return str(text)
    url = S3Url.parse(uri, f"{what} scriptUri")
    return ctx.s3.read_text(url, f"{what} scriptUri ({url})")


def _check_node(node: DataNodeSpec, role: str, index: int) -> str:
    where = f"{role} {node.name!r} (${{{role}{index}}})"
    if node.type not in S3_TYPES:
        raise InvalidTask(f"{where}: a Hive table here is an S3DataNode's data, not a {node.type}'s "
                          "(DynamoDB and SQL tables are not supported yet: docs/spark.md)", "Task.UnsupportedNode")
    return where


def _input(ctx: Context, node: DataNodeSpec, index: int) -> dict[str, Any]:
    where = _check_node(node, "input", index)
    try:
        options, schema = table_options(node.data_format, False, where), table_schema(node.data_format)
    except SparkConfError as e:
        raise InvalidTask(str(e), "Task.UnsupportedFormat") from None
    # Hadoop's rule: names starting with _ or . are bookkeeping (_SUCCESS), not data.
    files = [f for f in s3_files(ctx, node, "input")
             if not os.path.basename(f.key).startswith(("_", ".")) and not f.key.endswith("/")]
    if not files:
        log.warning("%s holds no files: the table is empty", where)
    return {"table": f"input{index}", "what": where, "paths": [_s3a(f) for f in files], "options": options,
            "schema": schema}


def _output(node: DataNodeSpec, index: int, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    where = _check_node(node, "output", index)
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
            "options": options, "schema": schema}


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
        _, url = s3_location(node, "output")
        for file, _ in ctx.s3.list(S3Url(url.bucket, url.dir_prefix), f"output {node.name!r}", limit=100):
            if not os.path.basename(file.key).startswith(("_", ".")) and len(uris) < 20:
                uris.append(str(file))
    return uris
