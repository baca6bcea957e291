"""Pipelines and runs as the API server returns them, for the console's unit tests."""

from __future__ import annotations

from typing import Any

SPEC: dict[str, Any] = {
    "activated": True,
    "schedule": {"period": "1 day", "startDateTime": "2026-01-01T00:00:00Z"},
    "parameters": [{"id": "myDay", "type": "String", "pattern": r"\d{4}-\d{2}-\d{2}", "default": "2026-01-01",
                    "overridable": True},
                   {"id": "myTable", "default": "orders"}],
    "dataNodes": [{"name": "orders", "type": "S3DataNode", "directoryPath": "s3://b/orders",
                   "precondition": ["orders-ready"]}],
    "preconditions": [{"name": "orders-ready", "type": "S3PrefixNotEmpty", "s3Prefix": "s3://b/orders"},
                      {"name": "quiet", "type": "ShellCommandPrecondition", "command": "true"}],
    "activities": [
        {"name": "extract", "type": "ShellCommandActivity", "command": "x", "input": ["orders"]},
        {"name": "load", "type": "ShellCommandActivity", "command": "y", "dependsOn": ["extract"],
         "precondition": ["quiet"]},
        {"name": "report", "type": "ShellCommandActivity", "command": "z", "dependsOn": ["load"]},
    ],
}


def pipeline(name: str = "daily", namespace: str = "team-a", **status: Any) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}, "spec": SPEC,
            "status": status}


FAILED_ACTIVITIES: dict[str, Any] = {
    "extract": {"status": "FINISHED", "attempt": 1, "startTime": "2026-11-30T01:00:00Z",
                "endTime": "2026-11-30T01:01:00Z", "exitCode": 0,
                "checks": {"orders/orders-ready": {"status": "MET", "checks": 1}}},
    "load": {"status": "FAILED", "attempt": 2, "startTime": "2026-11-30T01:01:00Z",
             "endTime": "2026-11-30T01:05:00Z", "exitCode": 1, "errorMessage": "boom: warehouse locked",
             "checks": {"quiet": {"status": "MET", "checks": 1}},
             "attempts": [{"n": 1, "status": "FAILED", "start": "2026-11-30T01:01:00Z",
                           "end": "2026-11-30T01:02:00Z", "exitCode": 1, "error": "first boom"},
                          {"n": 2, "status": "FAILED", "start": "2026-11-30T01:04:00Z",
                           "end": "2026-11-30T01:05:00Z", "exitCode": 1, "error": "boom: warehouse locked"}]},
    "report": {"status": "CASCADE_FAILED", "cascadeFailedOn": "load"},
}


def run(name: str, phase: str = "Failed", start: str = "2026-11-30T00:00:00Z", pipeline_name: str = "daily",
        namespace: str = "team-a", activities: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"datapipeline.io/pipeline": pipeline_name}},
            "spec": {"pipelineRef": {"name": pipeline_name}, "scheduledStartTime": start, "trigger": "Scheduled"},
            "status": {"phase": phase, "progress": "1/3", "startTime": start,
                       "activities": FAILED_ACTIVITIES if activities is None else activities}}
