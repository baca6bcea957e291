"""The Job manifest of an attempt: pure, deterministic, secure by default."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.resolve import RunContext, resolve_command
from datapipeline.core.runstate import attempt_job_name
from datapipeline.core.task import TASK_ENV, TaskSpec
from datapipeline.k8s.jobs import DEFAULT_IMAGE, Owner, build_job_spec, label_value

START = datetime(2026, 11, 21, 3, tzinfo=UTC)
RUN = "etl-20261121t0300z"
OWNER = Owner(name=RUN, uid="1234-uid")


def definition(**extra: Any) -> PipelineDefinition:
    spec: dict[str, Any] = {
        "scheduleType": "ondemand",
        "aws": {"credentialsSecret": "aws-keys", "region": "eu-west-1"},
        "databases": [{"name": "pg", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db/app",
                       "username": "app", "passwordSecret": {"name": "pg", "key": "pw"}}],
        "computeProfiles": [{"name": "big", "type": "ComputeProfile", "cpu": "500m", "memory": "256Mi",
                             "nodeSelector": {"pool": "batch"},
                             "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
                             "serviceAccountName": "etl", "envFromSecrets": ["extra"], "terminateAfter": "5m"}],
        "actions": [{"name": "hook", "type": "Webhook", "url": "http://x", "message": "m",
                     "headersFromSecret": "hook-headers"}],
        "activities": [
            {"name": "Load_Data", "type": "SqlActivity", "database": "pg", "script": "select 1", "runsOn": "big",
             "attemptTimeout": "10m", "onFail": ["hook"]},
            {"name": "echo", "type": "ShellCommandActivity", "command": "sleep 2; exit 0"},
        ],
    }
    spec.update(extra)
    return parse_pipeline(spec)


def build(d: PipelineDefinition, activity: str, attempt: int = 1, **kw: Any) -> dict[str, Any]:
    resolved = resolve_command(d, RunContext("etl", RUN, START, START + timedelta(days=1)), "activity", activity,
                               activity, attempt)
    return build_job_spec(name=attempt_job_name(RUN, activity, attempt), namespace="ns", owner=OWNER,
                          pipeline="etl", task=resolved.task, definition=d, activity=activity,
                          secrets=resolved.secrets, deadline=d.activities[activity].attempt_timeout, **kw)


def test_basic_job_shape() -> None:
    job = build(definition(), "echo", environ={})
    assert job["metadata"]["name"] == "etl-20261121t0300z-echo-1"
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
                                                   "name": RUN, "uid": "1234-uid", "controller": True,
                                                   "blockOwnerDeletion": True}]
    labels = job["metadata"]["labels"]
    assert labels["datapipeline.io/pipeline"] == "etl" and labels["datapipeline.io/run"] == RUN
    assert labels["datapipeline.io/activity"] == "echo" and labels["datapipeline.io/attempt"] == "1"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and "activeDeadlineSeconds" not in spec
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["image"] == DEFAULT_IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePolicy"] == "File"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsNonRoot"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    task_env = next(e for e in container["env"] if e["name"] == TASK_ENV)
    task = TaskSpec.from_json(task_env["value"])
    assert task.fields["command"] == "sleep 2; exit 0"
    json.dumps(job)  # serialisable


def test_image_from_env_and_spec() -> None:
    assert build(definition(), "echo", environ={"DATAPIPELINE_RUNNER_IMAGE": "reg/x:1"})["spec"]["template"][
        "spec"]["containers"][0]["image"] == "reg/x:1"
    d = definition(runnerImage="reg/y:2")
    assert build(d, "echo", environ={"DATAPIPELINE_RUNNER_IMAGE": "reg/x:1"})["spec"]["template"]["spec"][
        "containers"][0]["image"] == "reg/y:2"


def test_secrets_are_references_only_and_profile_applies() -> None:
    job = build(definition(), "Load_Data", attempt=3, environ={})
    assert job["metadata"]["name"] == "etl-20261121t0300z-load-data-3"
    assert job["metadata"]["labels"]["datapipeline.io/activity"] == "Load_Data"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATAPIPELINE_DB_PG_PASSWORD"] == {"name": "DATAPIPELINE_DB_PG_PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": "pg", "key": "pw"}}}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "aws-keys", "key": "AWS_ACCESS_KEY_ID"}
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "256Mi"},
                                      "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert container["envFrom"] == [{"secretRef": {"name": "extra"}}]
    assert pod["nodeSelector"] == {"pool": "batch"} and pod["serviceAccountName"] == "etl"
    assert pod["tolerations"][0]["key"] == "batch"
    # attemptTimeout 10m, terminateAfter 5m: the smaller wins.
    assert job["spec"]["activeDeadlineSeconds"] == 300


def test_action_job_with_header_secret() -> None:
    d = definition()
    resolved = resolve_command(d, RunContext("etl", RUN, START, START), "action", "hook", "Load_Data", 1,
                               node={"@id": "Load_Data"})
    job = build_job_spec(name="x", namespace="ns", owner=OWNER, pipeline="etl", task=resolved.task, definition=d,
                         activity="Load_Data", environ={})
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert {"prefix": "DATAPIPELINE_HEADER_", "secretRef": {"name": "hook-headers"}} in container["envFrom"]
    assert job["metadata"]["labels"]["datapipeline.io/kind"] == "action"


def test_label_value() -> None:
    assert label_value("a b/c") == "a-b-c"
    assert len(label_value("x" * 100)) == 63
    assert label_value("-abc-") == "abc"


# ---------------------------------------------------------------------------- controller's pure parts
def test_job_facts_from_job_and_pod_dicts() -> None:
    from datapipeline.controller.facts import job_facts

    job_ok = {"metadata": {"name": "j1"}, "status": {"startTime": "2026-11-21T03:00:00Z", "succeeded": 1,
                                                     "completionTime": "2026-11-21T03:00:05Z",
                                                     "conditions": [{"type": "Complete", "status": "True"}]}}
    job_bad = {"metadata": {"name": "j2"}, "status": {"startTime": "2026-11-21T03:00:00Z", "failed": 1,
                                                      "conditions": [{"type": "Failed", "status": "True",
                                                                      "reason": "BackoffLimitExceeded",
                                                                      "lastTransitionTime": "2026-11-21T03:00:09Z"}]}}
    job_run = {"metadata": {"name": "j3"}, "status": {"startTime": "2026-11-21T03:00:00Z", "active": 1, "ready": 1}}
    job_gone = {"metadata": {"name": "j4", "deletionTimestamp": "x"}, "status": {}}
    pod_ok = {"metadata": {"labels": {"batch.kubernetes.io/job-name": "j1"}}, "status": {"containerStatuses": [
        {"state": {"terminated": {"exitCode": 0, "message": '{"status":"FINISHED","rows_written":5}'}}}]}}
    pod_bad = {"metadata": {"labels": {"job-name": "j2"}}, "status": {"containerStatuses": [
        {"state": {"terminated": {"exitCode": 3, "message": "not json"}}}]}}
    facts = job_facts([job_ok, job_bad, job_run, job_gone], [pod_ok, pod_bad])
    assert facts["j1"].state == "succeeded" and facts["j1"].result is not None and facts["j1"].result.rows_written == 5
    assert facts["j1"].finished == datetime(2026, 11, 21, 3, 0, 5, tzinfo=UTC)
    assert facts["j2"].state == "failed" and facts["j2"].exit_code == 3 and facts["j2"].reason == "BackoffLimitExceeded"
    assert facts["j2"].result is not None and facts["j2"].result.error_message == "not json"
    assert facts["j3"].state == "active" and facts["j3"].running
    assert "j4" not in facts


def test_step_turns_unresolvable_tasks_into_failed_attempts() -> None:
    from datapipeline.controller.step import step
    from datapipeline.core.runstate import FAILED, RunSpec, RunState

    d = parse_pipeline({"scheduleType": "ondemand",
                        "parameters": [{"id": "myN", "type": "String", "default": "x"}],
                        "activities": [{"name": "bad", "type": "ShellCommandActivity", "command": "echo #{myN * 2}",
                                        "maximumRetries": 3},
                                       {"name": "good", "type": "ShellCommandActivity", "command": "true"}]})
    result = step(d, RunSpec(RUN, START, START), RunState(), {}, START,
                  context=RunContext("etl", RUN, START, START), namespace="ns", owner=OWNER, pipeline="etl",
                  environ={})
    assert [c.name for c, _ in result.create] == [attempt_job_name(RUN, "good", 1)]
    bad = result.state.activities["bad"]
    assert bad.status == FAILED and bad.error_id == "Expression" and bad.attempt == 1
    assert any(e.reason == "ResolveFailed" for e in result.events)
    assert result.create[0][1]["metadata"]["name"] == attempt_job_name(RUN, "good", 1)


def test_merge_patch_nulls_removed_keys() -> None:
    from datapipeline.controller.step import merge_patch

    old = {"phase": "Running", "activities": {"a": {"status": "RUNNING", "waitingOn": "x"}}, "completionTime": None}
    new = {"phase": "Running", "activities": {"a": {"status": "FINISHED"}}, "completionTime": None}
    assert merge_patch(old, new) == {"activities": {"a": {"status": "FINISHED", "waitingOn": None}}}
    assert merge_patch(new, new) == {}


def test_run_filter_and_conditions() -> None:
    from datapipeline.controller.runs import conditions, run_is_live

    assert run_is_live(spec={}, status={}, meta={})
    assert not run_is_live(spec={}, status={"phase": "Succeeded"}, meta={})
    assert run_is_live(spec={"rerun": {"id": "1"}}, status={"phase": "Failed"}, meta={})
    assert not run_is_live(spec={"rerun": {"id": "1"}}, status={"phase": "Failed", "handledRerun": "1"}, meta={})
    assert run_is_live(spec={"markFinished": ["a"]}, status={"phase": "Failed"}, meta={})
    conds = {c["type"]: c for c in conditions({}, "Succeeded", "Succeeded", "ok", 1, START)}
    assert conds["Succeeded"]["status"] == "True" and conds["Ready"]["status"] == "True"
    assert conds["Succeeded"]["observedGeneration"] == 1
    running = {c["type"]: c for c in conditions({}, "Running", "Running", "1/2", 1, START)}
    assert running["Succeeded"]["status"] == "Unknown"
