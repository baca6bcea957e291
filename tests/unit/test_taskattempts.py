"""Worker groups (docs/worker-groups.md), pure: routing, the TaskAttempt manifest, its facts and the poller's
patches. The cluster scenarios are tests/operator/test_worker_groups.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from datapipeline.controller.runs import attempt_wake_at
from datapipeline.controller.step import step
from datapipeline.core import taskattempt as ta
from datapipeline.core.definition import parse_pipeline
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import RunContext
from datapipeline.core.runstate import FAILED, RunSpec, RunState
from datapipeline.core.task import TaskResult
from datapipeline.k8s.jobs import Owner
from datapipeline.runner import poller

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
RUN = "etl-1"
OWNER = Owner(name=RUN, uid="uid-1")


def spec(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scheduleType": "ondemand",
        "aws": {"credentialsSecret": "aws-keys", "region": "eu-west-1"},
        "workerGroups": {"onprem": {"mode": "poll", "leaseSeconds": 30}, "edge": {"mode": "nodeSelector"}},
        "databases": [{"name": "pg", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://127.0.0.1/app",
                       "username": "app", "passwordSecret": {"name": "pg", "key": "pw"}}],
        "computeProfiles": [{"name": "big", "type": "ComputeProfile", "cpu": "1"}],
        "preconditions": [{"name": "rows", "type": "ShellCommandPrecondition", "command": "true"}],
        "activities": [
            {"name": "extract", "type": "SqlActivity", "database": "pg", "script": "select 1", "workerGroup": "onprem",
             "attemptTimeout": "10 minutes", "precondition": ["rows"]},
            {"name": "both", "type": "ShellCommandActivity", "command": "true", "workerGroup": "onprem",
             "runsOn": "big"},
            {"name": "edge", "type": "ShellCommandActivity", "command": "true", "workerGroup": "edge"},
            {"name": "plain", "type": "ShellCommandActivity", "command": "true"},
        ],
    }
    base.update(extra)
    return base


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(DefinitionError) as caught:
        parse_pipeline(raw)
    return "\n".join(str(p) for p in caught.value.problems)


# ---------------------------------------------------------------------------- the definition
def test_an_undeclared_worker_group_is_refused_naming_the_field_and_both_modes() -> None:
    text = problems(spec(workerGroups={"edge": {"mode": "nodeSelector"}}))
    assert 'spec.activities[0].workerGroup: no worker group named "onprem" in spec.workerGroups (declared: edge); ' \
           "declare it with mode poll (pollers started with `datapipeline-runner poll --worker-group NAME` run its " \
           "attempts) or mode nodeSelector (its pods run on nodes labelled datapipeline.io/worker-group=NAME)" in text


def test_worker_group_declarations_are_checked() -> None:
    assert "spec.workerGroups.OnPrem: worker group name \"OnPrem\" must be a DNS label of at most 40 characters" \
        in problems(spec(workerGroups={"OnPrem": {}, "onprem": {}, "edge": {}}))
    assert 'spec.workerGroups.onprem.mode: must be one of poll, nodeSelector, not "pol"; did you mean "poll"?' \
        in problems(spec(workerGroups={"onprem": {"mode": "pol"}, "edge": {}}))
    assert "spec.workerGroups.onprem.leaseSeconds: must be a whole number of seconds from 10 to 3600" \
        in problems(spec(workerGroups={"onprem": {"leaseSeconds": 5}, "edge": {}}))
    assert 'spec.workerGroups.onprem.lease: unknown field "lease"' \
        in problems(spec(workerGroups={"onprem": {"lease": 5}, "edge": {}}))
    assert "spec.workerGroups: must be an object" in problems(spec(workerGroups=["onprem"]))
    # A nodeSelector group is any label value; a precondition's and the defaults' workerGroup are checked too.
    assert parse_pipeline(spec(workerGroups={"onprem": {}, "edge": {}, "Edge_Hosts.1": {"mode": "nodeSelector"}}))
    raw = spec(defaults={"workerGroup": "nowhere"})
    raw["preconditions"][0]["workerGroup"] = "elsewhere"
    text = problems(raw)
    assert 'spec.defaults.workerGroup: no worker group named "nowhere"' in text
    assert 'spec.preconditions[0].workerGroup: no worker group named "elsewhere"' in text


# ---------------------------------------------------------------------------- routing
def decide(d: PipelineDefinition) -> dict[str, dict[str, Any]]:
    result = step(d, RunSpec(RUN, T0, T0), RunState(), {}, T0, context=RunContext("etl", RUN, T0, T0),
                  namespace="ns", owner=OWNER, pipeline="etl", environ={})
    return {command.name: manifest for command, manifest in result.create}


def test_poll_groups_get_task_attempts_and_everything_else_jobs() -> None:
    made = decide(parse_pipeline(spec()))
    kinds = {name: m["kind"] for name, m in made.items()}
    # extract waits for its precondition: the check runs where extract runs (a poll group: a TaskAttempt).
    assert kinds == {"etl-1-extract-rows-c1": "TaskAttempt", "etl-1-both-1": "Job", "etl-1-edge-1": "Job",
                     "etl-1-plain-1": "Job"}
    assert made["etl-1-edge-1"]["spec"]["template"]["spec"]["nodeSelector"] == {"datapipeline.io/worker-group": "edge"}
    assert "nodeSelector" not in made["etl-1-both-1"]["spec"]["template"]["spec"]  # runsOn wins, as on AWS
    assert "nodeSelector" not in made["etl-1-plain-1"]["spec"]["template"]["spec"]


def test_a_task_attempt_holds_the_task_and_references_to_secrets_never_values() -> None:
    d = parse_pipeline(spec(preconditions=[], activities=[spec()["activities"][0] | {"precondition": []}]))
    attempt = decide(d)["etl-1-extract-1"]
    assert attempt["apiVersion"] == "datapipeline.io/v1alpha1"
    assert attempt["metadata"]["ownerReferences"][0]["name"] == RUN
    labels = attempt["metadata"]["labels"]
    assert labels["datapipeline.io/worker-group"] == "onprem" and labels["datapipeline.io/attempt"] == "1"
    body = attempt["spec"]
    assert body["workerGroup"] == "onprem" and body["leaseSeconds"] == 30
    assert body["deadlineSeconds"] == 600  # attemptTimeout, counted from the claim
    task = json.loads(body["task"])
    assert task["type"] == "SqlActivity" and task["name"] == "extract"
    password_env = task["database"]["password_env"]
    assert {"name": password_env, "secret": "pg", "key": "pw"} in body["secretEnv"]
    assert {"name": "AWS_SECRET_ACCESS_KEY", "secret": "aws-keys", "key": "AWS_SECRET_ACCESS_KEY"} in body["secretEnv"]
    assert {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"} in body["env"]
    assert all("value" not in ref for ref in body["secretEnv"])


# ---------------------------------------------------------------------------- facts
def obj(status: dict[str, Any] | None = None, lease: int = 30, created: datetime = T0) -> dict[str, Any]:
    return {"metadata": {"name": "etl-1-extract-1", "resourceVersion": "42",
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"workerGroup": "onprem", "task": "{}", "leaseSeconds": lease}, "status": status or {}}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def claimed(renewed: datetime, progress: datetime | None = None) -> dict[str, Any]:
    status = {"phase": ta.CLAIMED, "claimedBy": "host-a", "claimTime": stamp(T0), "renewTime": stamp(renewed)}
    if progress is not None:
        status["progressTime"] = stamp(progress)
    return status


def test_an_attempt_as_the_state_machine_sees_it() -> None:
    waiting = ta.attempt_fact(obj(), T0 + timedelta(hours=1))
    assert waiting.state == "active" and not waiting.running and waiting.started is None
    running = ta.attempt_fact(obj(claimed(T0 + timedelta(seconds=20), T0 + timedelta(seconds=15))),
                              T0 + timedelta(seconds=40))
    assert running.state == "active" and running.running and running.started == T0
    assert running.progress_at == T0 + timedelta(seconds=15)
    lost = ta.attempt_fact(obj(claimed(T0 + timedelta(seconds=20))), T0 + timedelta(seconds=50))
    assert lost.state == "failed" and lost.reason == ta.REASON_WORKER_LOST
    assert lost.finished == T0 + timedelta(seconds=50)
    assert lost.result is not None and lost.result.error_id == "Runner.WorkerLost"
    assert "the poller host-a stopped renewing its claim (last at 2026-11-30T12:00:20Z; leaseSeconds 30)" \
        in str(lost.result.error_message)
    done = TaskResult("FINISHED", rows_read=2)
    succeeded = ta.attempt_fact(obj({**claimed(T0), **ta.verdict_patch(done, 0, T0, None, "tail")["status"]}), T0)
    assert succeeded.state == "succeeded" and succeeded.exit_code == 0 and succeeded.result == done
    not_met = TaskResult("FALSE", error_id="Precondition.NotMet", error_message="no")
    failed = ta.attempt_fact(obj({**claimed(T0), **ta.verdict_patch(not_met, 75, T0, None, "")["status"]}), T0)
    assert failed.state == "failed" and failed.exit_code == 75  # the check said "not yet", as a Job's exit code
    timed_out = ta.verdict_patch(TaskResult("FAILED"), 143, T0, ta.REASON_DEADLINE, "")["status"]
    assert ta.attempt_fact(obj({**claimed(T0), **timed_out}), T0).reason == "DeadlineExceeded"


def test_writes_that_must_not_race_carry_the_resource_version() -> None:
    claim = ta.claim_patch(obj(), "host-a", T0)
    assert claim["metadata"] == {"resourceVersion": "42"}
    assert claim["status"] == {"phase": "Claimed", "claimedBy": "host-a", "claimTime": "2026-11-30T12:00:00Z",
                               "renewTime": "2026-11-30T12:00:00Z"}
    lost = ta.lost_patch(obj(claimed(T0)), T0 + timedelta(minutes=1))
    assert lost["metadata"] == {"resourceVersion": "42"}
    assert lost["status"]["phase"] == "Failed" and lost["status"]["reason"] == "WorkerLost"
    assert ta.renew_patch(T0, None) == {"status": {"renewTime": "2026-11-30T12:00:00Z"}}


def test_a_run_wakes_when_a_lease_runs_out_or_an_unclaimed_attempt_is_worth_a_warning() -> None:
    now = T0 + timedelta(seconds=10)
    assert attempt_wake_at([obj(claimed(T0 + timedelta(seconds=5)))], now) == T0 + timedelta(seconds=35)
    assert attempt_wake_at([obj()], now) == T0 + ta.NO_WORKER_WARNING
    assert attempt_wake_at([obj({"phase": "Succeeded", "claimedBy": "x"})], now) is None


# ---------------------------------------------------------------------------- the poller
def test_the_pollers_arguments_are_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv, message in ((["--worker-group", "On_Prem"], '--worker-group "On_Prem": a poll worker group is a DNS '
                                                         "label of at most 40 characters"),
                          (["--worker-group", "a", "--max-tasks", "0"], "--max-tasks must be from 1 to 64"),
                          (["--worker-group", "a", "--secrets-dir", str(tmp_path / "none")], "not a directory")):
        with pytest.raises(SystemExit):
            poller.parse_args(argv)
        assert message in capsys.readouterr().err


def test_a_task_without_a_result_file_is_a_failure_naming_its_exit_code(tmp_path: Path) -> None:
    result = poller.read_result(tmp_path / "missing.json", 137)
    assert result.status == FAILED and result.error_message == "the runner exited with code 137 without a result"


def test_the_log_tail_is_bounded() -> None:
    task = poller.Task(name="t", obj={}, claimed=T0)
    for i in range(5000):
        task.add_output(f"line {i}\n".encode())
    tail = task.log_tail()
    assert len(tail.encode()) <= ta.LOG_TAIL_BYTES and tail.endswith("line 4999\n")


def test_secrets_come_from_the_secrets_dir_before_the_api_server(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "pw").write_text("s3cret\n")

    class NoApi:
        def read_namespaced_secret(self, name: str, namespace: str) -> Any:
            from kubernetes.client.exceptions import ApiException

            raise ApiException(status=403, reason="Forbidden")

    p = poller.Poller(None, NoApi(), "ns", "onprem", "me", 1, tmp_path)
    assert p.secret_value(ta.SecretEnvRef("DB_PW", "pg", "pw")) == "s3cret"
    with pytest.raises(poller.SecretUnavailable) as caught:
        p.secret_value(ta.SecretEnvRef("OTHER", "other", "key"))
    assert f"OTHER: Secret other key key is not on this machine ({tmp_path}/other/key) and reading it from the " \
           "API server failed (403 Forbidden)" in str(caught.value)
