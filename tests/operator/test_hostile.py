"""Hostile input against the operator on the real cluster: injection, substitution, leaks, refusals, ownership."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kdp_harness import Operator, pipeline_doc, run_doc, shell

pytestmark = pytest.mark.cluster
ONDEMAND: dict[str, Any] = {"scheduleType": "ondemand", "activated": False}
TOKEN = "tok-9f8e7d6c5b4a-masked"
TEAM_KEY = "team-key-1a2b3c4d5e6f"
PASSWORD = "pw-0a1b2c3d4e5f6071"
AWS_KEY = "aws-secret-5e6f7a8b9c0d"
HEADER = "hdr-token-11aa22bb33cc"


def conditions(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (run.get("status") or {}).get("conditions") or ()}


def test_a_run_value_that_tries_to_inject_a_command_is_refused_and_never_makes_a_job(operator: Operator) -> None:
    operator.apply(pipeline_doc("inj", [shell("a", "echo #{myDay}")], **ONDEMAND, parameters=[
        {"id": "myDay", "default": "2026-01-01", "overridable": True, "pattern": r"\d{4}-\d{2}-\d{2}"}]))
    operator.apply(run_doc("inj-1", "inj", values={"myDay": "2026-01-01; touch /tmp/pwned"}))
    run = operator.wait_phase("inj-1", ("Failed",), timeout=60)
    ready = conditions(run)["Ready"]
    assert ready["reason"] == "InvalidValues"
    assert ready["message"] == ('spec.values.myDay: "2026-01-01; touch /tmp/pwned" does not match the parameter\'s '
                                "pattern \\d{4}-\\d{2}-\\d{2}")
    assert [e["reason"] for e in operator.events("PipelineRun", "inj-1")] == ["InvalidValues"]
    time.sleep(2)
    assert operator.jobs("inj-1") == []


def test_a_parameter_the_author_did_not_open_cannot_be_set_by_a_run(operator: Operator) -> None:
    operator.apply(pipeline_doc("closed", [shell("a", "echo #{myCmd}")], **ONDEMAND,
                                parameters=[{"id": "myCmd", "default": "hello"}]))
    operator.apply(run_doc("closed-1", "closed", values={"myCmd": "$(id)"}))
    run = operator.wait_phase("closed-1", ("Failed",), timeout=60)
    assert conditions(run)["Ready"]["message"] == ('spec.values.myCmd: parameter "myCmd" cannot be set by a run; '
                                                   "the Pipeline's author allows it with overridable: true")
    assert operator.jobs("closed-1") == []


def test_an_allowed_run_value_reaches_the_shell_as_text(operator: Operator) -> None:
    hostile = "x'; echo INJECTED; '$(echo SUBST)"
    operator.apply(pipeline_doc("quoted", [shell("a", "echo \"got=#{myNote}\"; echo 'single=#{myNote}'")],
                                **ONDEMAND, parameters=[{"id": "myNote", "default": "none", "overridable": True}]))
    operator.apply(run_doc("quoted-1", "quoted", values={"myNote": hostile}))
    operator.wait_phase("quoted-1")
    pod = operator.get("pods", selector="datapipeline.io/run=quoted-1")["items"][0]["metadata"]["name"]
    log = operator.kubectl("logs", pod)
    assert f"got={hostile}" in log and f"single={hostile}" in log
    assert "\nINJECTED" not in log and "SUBST\n" not in log.replace("$(echo SUBST)", "")


def test_a_configmap_planted_with_the_runs_name_changes_nothing(operator: Operator) -> None:
    evil = {"runnerImage": "evil.example/steal:1", "scheduleType": "ondemand",
            "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "echo evil"}]}
    operator.kubectl("create", "configmap", "planted-1", f"--from-literal=spec.json={json.dumps(evil)}",
                     "--from-literal=generation=1")
    operator.apply(pipeline_doc("planted", [shell("a", "echo fine")], **ONDEMAND))
    operator.apply(run_doc("planted-1", "planted"))
    run = operator.wait_phase("planted-1")
    assert run["status"]["pipelineSpec"]["activities"][0]["command"] == "echo fine"
    images = {c["image"] for j in operator.jobs("planted-1") for c in j["spec"]["template"]["spec"]["containers"]}
    assert images and not any("evil" in i for i in images)


def test_a_frozen_definition_changed_after_the_run_started_is_refused(operator: Operator) -> None:
    operator.apply(pipeline_doc("frozen", [shell("a", "sleep 4")], **ONDEMAND))
    operator.apply(run_doc("frozen-1", "frozen"))
    operator.wait(lambda: operator.jobs("frozen-1"), timeout=60)
    patch = {"status": {"pipelineSpec": {"scheduleType": "ondemand", "runnerImage": "evil.example/x:1",
                                         "activities": [shell("a", "echo evil")]}}}
    operator.kubectl("patch", "pipelinerun", "frozen-1", "--subresource=status", "--type=merge", "-p",
                     json.dumps(patch))
    run = operator.wait_phase("frozen-1", ("Failed",), timeout=60)
    assert "the run's frozen definition does not match its hash" in conditions(run)["Ready"]["message"]
    assert len(operator.jobs("frozen-1")) == 1


def test_no_secret_reaches_logs_termination_messages_status_events_or_job_specs(operator: Operator) -> None:
    operator.kubectl("create", "secret", "generic", "api-token", f"--from-literal=token={TOKEN}")
    operator.kubectl("create", "secret", "generic", "team-env", f"--from-literal=TEAM_KEY={TEAM_KEY}")
    operator.kubectl("create", "secret", "generic", "db", f"--from-literal=password={PASSWORD}",
                     "--from-literal=user=svc-user-77aa")
    operator.kubectl("create", "secret", "generic", "aws-creds", "--from-literal=AWS_ACCESS_KEY_ID=akid-9988776655",
                     f"--from-literal=AWS_SECRET_ACCESS_KEY={AWS_KEY}")
    operator.kubectl("create", "secret", "generic", "hook-headers", f"--from-literal=Authorization={HEADER}")
    operator.apply(pipeline_doc("leak", [
        shell("a", 'echo "token #{*myToken}"; echo "team $TEAM_KEY"; echo "pw $DATAPIPELINE_DB_PG_PASSWORD"; '
                   'echo "user $DATAPIPELINE_DB_PG_USERNAME"; echo "aws $AWS_SECRET_ACCESS_KEY $AWS_ACCESS_KEY_ID"; '
                   'echo "$TEAM_KEY" >&2; exit 3', runsOn="cp", maximumRetries=0, input=["tbl"], stage=False,
              onFail=["hook"]),
    ], **ONDEMAND, aws={"region": "us-east-1", "credentialsSecret": "aws-creds"},
        actions=[{"name": "hook", "type": "Webhook", "url": "http://127.0.0.1:9/alarm", "subject": "failed",
                  "message": "#{node.@id}: #{node.errorMessage}", "headersFromSecret": "hook-headers"}],
        parameters=[{"id": "*myToken", "valueFromSecret": {"name": "api-token", "key": "token"}}],
        computeProfiles=[{"name": "cp", "type": "ComputeProfile", "envFromSecrets": ["team-env"]}],
        dataNodes=[{"name": "tbl", "type": "SqlDataNode", "database": "pg", "table": "t"}],
        databases=[{"name": "pg", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db:5432/app",
                    "usernameSecret": {"name": "db", "key": "user"},
                    "passwordSecret": {"name": "db", "key": "password"}}]))
    operator.apply(run_doc("leak-1", "leak"))
    operator.wait_phase("leak-1", ("Failed",), timeout=120)

    def action_done() -> bool:  # the Webhook (onFail), with its header Secret, ran too
        return any(j["metadata"]["labels"].get("datapipeline.io/kind") == "action"
                   and ((j.get("status") or {}).get("failed") or (j.get("status") or {}).get("succeeded"))
                   for j in operator.jobs("leak-1"))

    operator.wait(action_done, timeout=120)
    run = operator.get("pipelinerun", "leak-1")
    pods = operator.get("pods", selector="datapipeline.io/run=leak-1")["items"]
    logs = "".join(operator.kubectl("logs", p["metadata"]["name"]) for p in pods)
    assert "token ***" in logs and "team ***" in logs and "pw ***" in logs and "user ***" in logs
    assert "aws *** ***" in logs
    seen = {
        "pod logs": logs,
        "termination messages": json.dumps([s.get("state") for p in pods
                                            for s in p["status"].get("containerStatuses") or ()]),
        "run status": json.dumps(run["status"]),
        "events": json.dumps(operator.get("events")["items"]),
        "job specs": json.dumps(operator.jobs("leak-1")),
    }
    for place, text in seen.items():
        for secret in (TOKEN, TEAM_KEY, PASSWORD, "svc-user-77aa", AWS_KEY, "akid-9988776655", HEADER):
            assert secret not in text, f"{secret} leaked into {place}"


def test_a_request_the_api_server_refuses_becomes_a_condition_and_one_event(operator: Operator) -> None:
    """A cluster policy refusing the run's Jobs: the run says why, once, and backs off (no tight loop)."""
    ns = operator.namespace
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": f"no-jobs-{ns}"},
              "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
                  {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["jobs"]}]},
                  "validations": [{"expression": "false", "message": "jobs are frozen in this namespace"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": f"no-jobs-{ns}"},
               "spec": {"policyName": f"no-jobs-{ns}", "validationActions": ["Deny"],
                        "matchResources": {"namespaceSelector": {"matchLabels": {
                            "kubernetes.io/metadata.name": ns}}}}}
    operator.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                            "items": [policy, binding]}))
    try:
        # The API server loads a new policy within moments: wait until a dry run is refused (nothing written).
        operator.wait(lambda: "jobs are frozen" in operator.kubectl(
            "create", "job", "probe", "--image=localhost/none", "--dry-run=server", "-o", "name", check=False,
            stderr=True), timeout=30, every=0.5)
        operator.apply(pipeline_doc("refused", [shell("a", "true")], **ONDEMAND))
        operator.apply(run_doc("refused-1", "refused"))
        run = operator.wait(lambda: conditions(operator.get("pipelinerun", "refused-1")).get("Ready", {})
                            .get("reason") == "ReconcileError" and operator.get("pipelinerun", "refused-1"), 60)
        message = conditions(run)["Ready"]["message"]
        assert "the API server refused a request (422" in message and "jobs are frozen in this namespace" in message
        time.sleep(8)
        events = [e for e in operator.events("PipelineRun", "refused-1") if e["reason"] == "ReconcileError"]
        assert len(events) == 1 and (events[0].get("count") or 1) == 1
        attempts = operator.log.read_text().count(f"run {ns}/refused-1: pass failed")
        assert 1 <= attempts <= 6, f"{attempts} failed passes in ~10 s: no backoff"
    finally:
        operator.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", f"no-jobs-{ns}",
                         check=False)


def test_runs_made_by_the_cli_are_deleted_with_their_pipeline(operator: Operator) -> None:
    operator.apply(pipeline_doc("owned", [shell("a", "true")], **ONDEMAND,
                                parameters=[{"id": "myX", "default": "a", "overridable": True,
                                             "allowedValues": ["a", "b"]}]))
    operator.cli("run", "owned", "--name", "owned-1", "--param", "myX=b")
    refused = operator.cli_failure("run", "owned", "--name", "owned-2", "--param", "myX=c")
    assert refused == 'error: --param myX: "c" is not allowed; one of a, b\n'
    run = operator.get("pipelinerun", "owned-1")
    assert run["metadata"]["ownerReferences"][0]["kind"] == "Pipeline"
    assert "owned-2" not in operator.kubectl("get", "pipelineruns", "-o", "name")
    operator.kubectl("delete", "pipeline", "owned", "--wait=true")
    operator.wait(lambda: "owned-1" not in operator.kubectl("get", "pipelineruns", "-o", "name"), timeout=60)
