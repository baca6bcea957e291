"""Resolving a run's activities, preconditions and actions into TaskSpecs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.resolve import ResolveError, RunContext, parameter_values, resolve_command
from datapipeline.core.task import TaskSpec

START = datetime(2026, 11, 21, 3, tzinfo=UTC)
END = datetime(2026, 11, 22, 3, tzinfo=UTC)


def definition(**extra: Any) -> PipelineDefinition:
    spec: dict[str, Any] = {
        "scheduleType": "ondemand",
        "pipelineLogUri": "s3://logs/#{@pipelineId}/",
        "aws": {"region": "eu-west-1", "s3EndpointUrl": "http://minio:9000", "credentialsSecret": "aws"},
        "parameters": [{"id": "myBucket", "type": "String", "default": "data"},
                       {"id": "myLimit", "type": "Integer", "default": "10"},
                       {"id": "myDays", "type": "String", "isArray": True, "default": ["mon", "tue"]}],
        "values": {"myBucket": "prod-data"},
        "defaults": {"vars": {"myEnv": "prod"}},
        "dataFormats": [{"name": "csv", "type": "CSV", "column": ["id INT", "name STRING"]}],
        "databases": [{"name": "pg", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db:5432/app",
                       "username": "app", "passwordSecret": {"name": "pg-secret", "key": "password"}}],
        "dataNodes": [
            {"name": "out", "type": "S3DataNode", "dataFormat": "csv",
             "directoryPath": "s3://#{myBucket}/out/#{format(@scheduledStartTime,'YYYY-MM-dd')}/"},
            {"name": "tbl", "type": "SqlDataNode", "database": "pg", "table": "orders",
             "selectQuery": "select * from #{table} where day = '#{format(@scheduledStartTime,'YYYY-MM-dd')}'",
             "precondition": ["has-rows"]},
        ],
        "preconditions": [{"name": "has-rows", "type": "Exists"},
                          {"name": "flag", "type": "S3KeyExists",
                           "s3Key": "s3://#{myBucket}/flags/#{format(node.@scheduledStartTime,'YYYY-MM-dd')}"}],
        "actions": [{"name": "alarm", "type": "SnsAlarm", "topicArn": "arn:aws:sns:eu-west-1:1:t",
                     "subject": "#{node.@id} failed", "message": "#{node.errorMessage} at "
                     "#{node.@scheduledStartTime}; output #{node.output.directoryPath}"}],
        "activities": [
            {"name": "copy", "type": "CopyActivity", "input": ["tbl"], "output": ["out"], "onFail": ["alarm"],
             "precondition": ["flag"], "maximumRetries": 1, "retryDelay": "2 minutes",
             "vars": {"myNote": "#{myEnv}-#{myLimit + 1}"}},
            {"name": "report", "type": "ShellCommandActivity", "dependsOn": ["copy"],
             "command": "echo #{myBucket} #{myLimit * 2} #{@scheduledEndTime} #{output.directoryPath} #{myDays}",
             "output": ["out"], "scriptArgument": ["#{myEnv}", "#{@runName}"]},
        ],
    }
    spec.update(extra)
    return parse_pipeline(spec)


RUN = RunContext(pipeline="orders", run="orders-20261121t0300z", scheduled_start=START, scheduled_end=END)


def test_activity_fields_are_rendered_for_the_run() -> None:
    resolved = resolve_command(definition(), RUN, "activity", "report", "report", 1)
    task = resolved.task
    assert task.kind == "activity" and task.type == "ShellCommandActivity" and task.attempt == 1
    assert task.fields["command"] == ("echo prod-data 20 2026-11-22T03:00:00 s3://prod-data/out/2026-11-21/ "
                                      "mon,tue")
    assert task.fields["scriptArgument"] == ["prod", "orders-20261121t0300z"]
    assert task.fields["dependsOn"] == ["copy"]
    assert task.log_uri == "s3://logs/orders/"
    assert task.aws.region == "eu-west-1" and task.aws.s3_endpoint_url == "http://minio:9000"
    # The spec is the JSON contract: it round-trips.
    assert TaskSpec.from_json(task.to_json()) == TaskSpec.from_json(task.to_json())
    json.loads(task.to_json())


def test_overrides_win_over_values_and_defaults() -> None:
    d = definition()
    assert parameter_values(d, {})["myBucket"] == "prod-data"
    assert parameter_values(d, {"myBucket": "other"})["myBucket"] == "other"
    assert parameter_values(d, {})["myLimit"] == 10
    run = RunContext("orders", "r", START, END, overrides={"myLimit": "3"})
    resolved = resolve_command(d, run, "activity", "report", "report", 1)
    # A run's value reaches the shell as a quoted variable, never as command text.
    assert resolved.task.fields["command"].startswith('echo prod-data "${DATAPIPELINE_VALUE_1}" ')
    assert resolved.env == (("DATAPIPELINE_VALUE_1", "6"),)


def test_inputs_outputs_databases_and_secrets() -> None:
    resolved = resolve_command(definition(), RUN, "activity", "copy", "copy", 2)
    task = resolved.task
    assert [n.name for n in task.inputs] == ["tbl"] and [n.name for n in task.outputs] == ["out"]
    tbl = task.inputs[0]
    assert tbl.fields["selectQuery"] == "select * from orders where day = '2026-11-21'"
    assert tbl.database is not None and tbl.database.connection_string == "jdbc:postgresql://db:5432/app"
    assert tbl.database.password_env == "DATAPIPELINE_DB_PG_PASSWORD" and tbl.database.username == "app"
    assert "passwordSecret" not in json.dumps(task.to_json())
    assert [(s.env, s.secret, s.key) for s in resolved.secrets] == [("DATAPIPELINE_DB_PG_PASSWORD", "pg-secret",
                                                                     "password")]
    out = task.outputs[0]
    assert out.fields["directoryPath"] == "s3://prod-data/out/2026-11-21/"
    assert out.data_format is not None and out.data_format.fields["column"] == ["id INT", "name STRING"]
    assert task.fields["retryDelay"] == 120 and task.fields["vars"]["myNote"] == "prod-11"


def test_action_sees_the_triggering_node() -> None:
    node = {"@id": "copy", "errorMessage": "table missing", "@scheduledStartTime": "2026-11-21T03:00:00Z",
            "@status": "FAILED"}
    task = resolve_command(definition(), RUN, "action", "alarm", "copy", 2, node=node).task
    assert task.kind == "action" and task.type == "SnsAlarm"
    assert task.fields["subject"] == "copy failed"
    assert task.fields["message"] == ("table missing at 2026-11-21T03:00:00; output "
                                      "s3://prod-data/out/2026-11-21/")
    assert task.node["errorMessage"] == "table missing"


def test_precondition_with_node_and_guarded_data_node() -> None:
    node = {"@id": "copy", "@scheduledStartTime": "2026-11-21T03:00:00Z"}
    flag = resolve_command(definition(), RUN, "precondition", "flag", "copy", 1, node=node).task
    assert flag.kind == "precondition" and flag.fields["s3Key"] == "s3://prod-data/flags/2026-11-21"
    exists = resolve_command(definition(), RUN, "precondition", "has-rows", "copy", 3, guarded_node="tbl",
                             node=node).task
    assert exists.guarded_node is not None and exists.guarded_node.fields["table"] == "orders"
    assert exists.attempt == 3


def test_unresolvable_expression_is_a_resolve_error() -> None:
    d = definition()
    run = RunContext("orders", "r", START, END, overrides={"myLimit": "many"})
    with pytest.raises(ResolveError):
        resolve_command(d, run, "activity", "report", "report", 1)


def test_self_referencing_var_is_an_error_not_a_hang() -> None:
    d = parse_pipeline({"scheduleType": "ondemand", "activities": [
        {"name": "a", "type": "ShellCommandActivity", "command": "echo #{myA}", "vars": {"myA": "x#{myA}"}}]})
    with pytest.raises(ResolveError):
        resolve_command(d, RUN, "activity", "a", "a", 1)
