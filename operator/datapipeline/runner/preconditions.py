"""Precondition checks. Holding: return FINISHED (exit 0). Not holding: raise NotMet (exit 75).

A check that cannot run at all (bad credentials, unreachable endpoint) is a failure
(exit 1), not "not met": waiting longer would not help.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import ClientError

from datapipeline.core.task import DataNodeSpec, TaskResult
from datapipeline.runner.activities.shell import base_env, command_argv, run_command
from datapipeline.runner.aws import client, errors_as
from datapipeline.runner.context import Context
from datapipeline.runner.errors import InvalidTask, NotMet, TaskError
from datapipeline.runner.log import get
from datapipeline.runner.nodes import S3_TYPES, SQL_TYPES, s3_location
from datapipeline.runner.s3 import S3Url

log = get("precondition")
HOLDS = TaskResult("FINISHED")


def _what(ctx: Context) -> str:
    return f"{ctx.spec.type} {ctx.spec.name}"


def _key_exists(ctx: Context, url: S3Url, where: str) -> bool:
    try:
        return ctx.s3.head(url, where) is not None
    except TaskError as e:
        if e.error_id == "S3.NoSuchBucket":
            return False
        raise


def _prefix_not_empty(ctx: Context, url: S3Url, where: str) -> bool:
    """Any object whose key starts with the prefix as written (AWS semantics: logs/2026 matches logs/2026-01/x)."""
    with ctx.s3.errors(where, url):
        try:
            page = ctx.s3.client.list_objects_v2(Bucket=url.bucket, Prefix=url.key, MaxKeys=1)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return False
            raise
    return bool(page.get("KeyCount") or page.get("Contents"))


def s3_key_exists(ctx: Context) -> TaskResult:
    url = S3Url.parse(ctx.require("s3Key"), f"{_what(ctx)} s3Key")
    if not _key_exists(ctx, url, f"{_what(ctx)} (s3Key {url})"):
        raise NotMet(f"{_what(ctx)}: {url} does not exist")
    return HOLDS


def s3_prefix_not_empty(ctx: Context) -> TaskResult:
    url = S3Url.parse(ctx.require("s3Prefix"), f"{_what(ctx)} s3Prefix")
    if not _prefix_not_empty(ctx, url, f"{_what(ctx)} (s3Prefix {url})"):
        raise NotMet(f"{_what(ctx)}: no object under {url}")
    return HOLDS


def shell_command(ctx: Context) -> TaskResult:
    what = _what(ctx)
    argv = command_argv(ctx, what)
    outcome = run_command(ctx, argv, base_env(ctx), ctx.scratch(), what)
    if outcome.returncode != 0:
        raise NotMet(f"{what}: the command exited with status {outcome.returncode}"
                     + (f"; last stderr line: {outcome.last_stderr}" if outcome.last_stderr else ""))
    return HOLDS


def _dynamo_table(ctx: Context, table: str, where: str, region: str | None = None) -> dict[str, object] | None:
    ddb = client("dynamodb", ctx.spec.aws, region)
    with errors_as("DynamoDB", where, ctx.spec.aws.dynamodb_endpoint_url):
        try:
            return dict(ddb.describe_table(TableName=table)["Table"])
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise


def dynamodb_table_exists(ctx: Context) -> TaskResult:
    table = str(ctx.require("tableName"))
    if _dynamo_table(ctx, table, f"{_what(ctx)} (tableName {table})") is None:
        raise NotMet(f"{_what(ctx)}: DynamoDB table {table} does not exist")
    return HOLDS


def dynamodb_data_exists(ctx: Context) -> TaskResult:
    table = str(ctx.require("tableName"))
    where = f"{_what(ctx)} (tableName {table})"
    if _dynamo_table(ctx, table, where) is None:
        raise NotMet(f"{_what(ctx)}: DynamoDB table {table} does not exist")
    ddb = client("dynamodb", ctx.spec.aws)
    with errors_as("DynamoDB", where, ctx.spec.aws.dynamodb_endpoint_url):
        # Limit counts items examined, so one item is enough to know the table is not empty.
        items = ddb.scan(TableName=table, Limit=1, Select="COUNT").get("Count", 0)
    if not items:
        raise NotMet(f"{_what(ctx)}: DynamoDB table {table} holds no items")
    return HOLDS


def sql_query(ctx: Context) -> TaskResult:
    what = _what(ctx)
    query = str(ctx.require("query"))
    if ctx.spec.database is None:
        raise InvalidTask(f"{what}: field database is required")
    from datapipeline.runner.sql import Database  # lazily: S3 and shell checks need no SQL driver

    db = Database.connect(ctx.spec.database, what)
    try:
        with db.errors(f"{what} (query)"):
            row = db.query_one(query)
    finally:
        db.close()
    value = row[0] if row else None
    if not _truthy(value):
        raise NotMet(f"{what}: the query returned {'no row' if row is None else repr(value)}")
    return HOLDS


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "f", "false", "no", "n")
    return bool(value)


def exists(ctx: Context) -> TaskResult:
    node = ctx.spec.guarded_node
    what = _what(ctx)
    if node is None:
        raise InvalidTask(f"{what}: Exists needs the data node it guards")
    if node.type in S3_TYPES:
        kind, url = s3_location(node, "data node")
        where = f"{what} on {node.name!r} ({kind} {url})"
        found = _prefix_not_empty(ctx, S3Url(url.bucket, url.dir_prefix), where) if kind == "directoryPath" \
            else _key_exists(ctx, url, where)
        if not found:
            raise NotMet(f"{what}: data node {node.name!r} ({kind} {url}) does not exist")
        return HOLDS
    if node.type in SQL_TYPES:
        return _table_exists(ctx, node, what)
    if node.type == "DynamoDBDataNode":
        table = str(node.fields.get("tableName") or "")
        region = node.fields.get("region")
        if _dynamo_table(ctx, table, f"{what} on {node.name!r} (tableName {table})",
                         str(region) if region else None) is None:
            raise NotMet(f"{what}: DynamoDB table {table} of data node {node.name!r} does not exist")
        return HOLDS
    raise InvalidTask(f"{what}: cannot check whether a {node.type} exists")


def _table_exists(ctx: Context, node: DataNodeSpec, what: str) -> TaskResult:
    if node.database is None:
        raise InvalidTask(f"{what}: data node {node.name!r} has no database")
    table = str(node.fields.get("table") or node.fields.get("tableName") or "")
    from datapipeline.runner.sql import Database

    db = Database.connect(node.database, f"{what} on {node.name!r}")
    try:
        with db.errors(f"{what} on {node.name!r} (table {table})"):
            found = db.table_exists(table, node.fields.get("schemaName"))
    finally:
        db.close()
    if not found:
        raise NotMet(f"{what}: table {table} of data node {node.name!r} does not exist")
    return HOLDS


HANDLERS: dict[str, Callable[[Context], TaskResult]] = {
    "S3KeyExists": s3_key_exists,
    "S3PrefixNotEmpty": s3_prefix_not_empty,
    "ShellCommandPrecondition": shell_command,
    "Exists": exists,
    "SqlQueryPrecondition": sql_query,
    "DynamoDBTableExists": dynamodb_table_exists,
    "DynamoDBDataExists": dynamodb_data_exists,
}
