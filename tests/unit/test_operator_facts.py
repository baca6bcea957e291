"""Pure parts met on the real cluster: Job conditions of Kubernetes >= 1.31, reportProgressTimeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from datapipeline.controller.facts import job_fact
from datapipeline.core.definition import parse_pipeline
from datapipeline.core.runstate import (
    FAILED,
    RUNNING,
    TIMEDOUT,
    WAITING_FOR_RUNNER,
    DeleteJob,
    JobFact,
    RunSpec,
    RunState,
    attempt_job_name,
    reconcile,
)
from datapipeline.k8s.api import parse_log_time

T0 = datetime(2026, 11, 21, 3, tzinfo=UTC)
RUN = "stall-1"


def test_failure_target_counts_as_failed_with_its_reason() -> None:
    # What a Job looks like between its deadline and its Failed condition (the pod is being deleted).
    job = {"metadata": {"name": "j"}, "spec": {"activeDeadlineSeconds": 5},
           "status": {"startTime": "2026-11-21T03:00:00Z", "failed": 1, "terminating": 1, "conditions": [
               {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded",
                "lastTransitionTime": "2026-11-21T03:00:05Z"}]}}
    fact = job_fact(job)
    assert fact.state == "failed" and fact.reason == "DeadlineExceeded"
    assert fact.finished == datetime(2026, 11, 21, 3, 0, 5, tzinfo=UTC)


def test_a_pod_killed_by_the_deadline_before_the_job_says_so_is_a_timeout() -> None:
    job = {"metadata": {"name": "j"}, "spec": {"activeDeadlineSeconds": 5},
           "status": {"startTime": "2026-11-21T03:00:00Z", "failed": 1}}
    pod = {"metadata": {"labels": {"job-name": "j"}}, "status": {"containerStatuses": [{"state": {"terminated": {
        "exitCode": 1, "reason": "Error", "finishedAt": "2026-11-21T03:00:06Z"}}}]}}
    assert job_fact(job, [pod]).reason == "DeadlineExceeded"
    early = {**pod, "status": {"containerStatuses": [{"state": {"terminated": {
        "exitCode": 1, "reason": "Error", "finishedAt": "2026-11-21T03:00:02Z"}}}]}}
    assert job_fact(job, [early]).reason == "Error"


def test_running_pod_gives_the_progress_baseline() -> None:
    job = {"metadata": {"name": "j"}, "status": {"startTime": "2026-11-21T03:00:00Z", "active": 1}}
    pod = {"metadata": {"labels": {"job-name": "j"}}, "status": {"containerStatuses": [
        {"state": {"running": {"startedAt": "2026-11-21T03:00:04Z"}}}]}}
    fact = job_fact(job, [pod])
    assert fact.running and fact.progress_at == datetime(2026, 11, 21, 3, 0, 4, tzinfo=UTC)


def test_a_job_whose_pods_all_ended_before_it_says_so_is_still_active_with_its_pods_ended() -> None:
    job = {"metadata": {"name": "j"}, "status": {"startTime": "2026-11-21T03:00:00Z", "active": 1, "ready": 0}}
    done = {"metadata": {"labels": {"job-name": "j"}, "creationTimestamp": "2026-11-21T03:00:00Z"},
            "status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {
                "exitCode": 0, "finishedAt": "2026-11-21T03:00:03Z"}}}]}}
    fact = job_fact(job, [done])
    assert fact.state == "active" and fact.pods_ended
    # The kubelet reports the container's end before the pod's terminal phase.
    stopped = {**done, "status": {**done["status"], "phase": "Running"}}
    assert job_fact(job, [stopped]).pods_ended
    running = {**done, "status": {"phase": "Running", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 0}}}, {"state": {"running": {}}}]}}
    assert not job_fact(job, [running]).pods_ended  # one of its containers still runs
    pending = {"metadata": {"labels": {"job-name": "j"}, "creationTimestamp": "2026-11-21T03:00:04Z"},
               "status": {"phase": "Pending"}}
    assert not job_fact(job, [done, pending]).pods_ended  # a replacement pod is on its way
    assert not job_fact(job).pods_ended  # no pod seen yet
    assert job_fact({**job, "status": {**job["status"], "succeeded": 1, "active": 0}}, [done]).state == "succeeded"


def test_log_timestamps() -> None:
    assert parse_log_time("2026-11-21T03:00:04.123456789Z progress: x") == datetime(2026, 11, 21, 3, 0, 4, 123456,
                                                                                   tzinfo=UTC)
    assert parse_log_time("") is None and parse_log_time("no stamp here") is None


def _stall_definition(**extra: Any) -> Any:
    return parse_pipeline({"scheduleType": "ondemand", "activities": [
        {"name": "a", "type": "ShellCommandActivity", "command": "true", "reportProgressTimeout": "30s", **extra}]})


def _decide(definition: Any, state: RunState, fact: JobFact | None, now: datetime) -> Any:
    spec = RunSpec(RUN, T0, T0)
    jobs = {fact.name: fact} if fact else {}
    return reconcile(definition, spec, state, jobs, now)


def test_a_stalled_attempt_is_stopped_and_retried() -> None:
    d = _stall_definition(maximumRetries=1, retryDelay="10s")
    first = _decide(d, RunState(), None, T0)
    job = attempt_job_name(RUN, "a", 1)
    live = JobFact(job, "active", started=T0, running=True, progress_at=T0 + timedelta(seconds=20))
    # Fresh progress: keeps running, wakes at the stall limit.
    ok = _decide(d, first.state, live, T0 + timedelta(seconds=40))
    assert ok.state.activities["a"].status == RUNNING
    assert ok.wake_at == T0 + timedelta(seconds=50)
    assert not [c for c in ok.commands if isinstance(c, DeleteJob)]
    # No new line for 30 s: stopped, failed, retried.
    stalled = _decide(d, ok.state, live, T0 + timedelta(seconds=51))
    a = stalled.state.activities["a"]
    assert [c.name for c in stalled.commands if isinstance(c, DeleteJob)] == [job]
    assert a.status == WAITING_FOR_RUNNER and a.retry_at is not None
    assert a.error_id == "ProgressTimeout" and "no progress" in (a.error_message or "")
    assert a.attempts[-1].status == FAILED


def test_a_stalled_attempt_without_retries_fails_the_activity() -> None:
    d = _stall_definition(maximumRetries=0)
    first = _decide(d, RunState(), None, T0)
    job = attempt_job_name(RUN, "a", 1)
    # A Job whose container just ended while its status still says ready: no evidence, no verdict.
    ending = JobFact(job, "active", started=T0, running=True, progress_at=None)
    assert _decide(d, first.state, ending, T0 + timedelta(seconds=31)).state.activities["a"].status == RUNNING
    live = JobFact(job, "active", started=T0, running=True, progress_at=T0)
    stalled = _decide(d, first.state, live, T0 + timedelta(seconds=31))
    a = stalled.state.activities["a"]
    assert a.status == FAILED and a.status != TIMEDOUT and a.error_id == "ProgressTimeout"
    assert stalled.state.phase == "Failed"


def test_the_job_asks_the_runner_for_frequent_heartbeats() -> None:
    from datapipeline.core.resolve import RunContext, resolve_command
    from datapipeline.k8s.jobs import PROGRESS_ENV, Owner, build_job_spec

    d = _stall_definition()
    resolved = resolve_command(d, RunContext("p", RUN, T0, T0), "activity", "a", "a", 1, None, {}, T0)
    job = build_job_spec(name="j", namespace="ns", owner=Owner("r", "u"), pipeline="p", task=resolved.task,
                         definition=d, activity="a", environ={})
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[PROGRESS_ENV] == "10"


def test_cached_runs_keep_what_events_name_them_by_and_drop_the_frozen_copy() -> None:
    """Events about a run name it by apiVersion, kind, name, namespace and uid (involvedObject); the cache
    keeps those and the frozen copy's digest, not the copy."""
    from datapipeline.controller.caches import SEEN_DIGEST, trim_run, trim_run_summary
    from datapipeline.controller.frozen import digest

    frozen = {"activities": [{"name": "a"}]}
    run = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
           "metadata": {"name": "r", "namespace": "n", "uid": "u", "resourceVersion": "7", "managedFields": [{}]},
           "spec": {"pipelineRef": {"name": "p"}, "values": {"myX": "1"}},
           "status": {"phase": "Running", "pipelineSpec": frozen, "pipelineSpecHash": digest(frozen),
                      "activities": {"a": {"status": "RUNNING", "attempt": 1}}}}
    for trimmed in (trim_run(run), trim_run_summary(run)):
        assert {k: trimmed[k] for k in ("apiVersion", "kind")} == {"apiVersion": "datapipeline.io/v1alpha1",
                                                                   "kind": "PipelineRun"}
        assert trimmed["metadata"] == {"name": "r", "namespace": "n", "uid": "u", "resourceVersion": "7"}
        assert "pipelineSpec" not in trimmed["status"]
    assert trim_run(run)["status"][SEEN_DIGEST] == digest(frozen)
    assert trim_run_summary(run)["status"]["activities"] == {"a": {"status": "RUNNING"}}
    assert "values" not in trim_run_summary(run)["spec"]


def test_max_active_instances_counts_unfinished_jobs_and_task_attempts_of_other_runs() -> None:
    from datapipeline.controller.facts import attempt_instance, busy_instances, job_instance
    from datapipeline.k8s.jobs import LABEL_ACTIVITY, LABEL_KIND, LABEL_RERUN, LABEL_RUN

    def obj(run: str, activity: str, status: dict[str, Any], **labels: str) -> dict[str, Any]:
        return {"metadata": {"labels": {LABEL_RUN: run, LABEL_ACTIVITY: activity, LABEL_KIND: "activity", **labels}},
                "status": status}

    jobs = [obj("r1", "load", {"active": 1}), obj("r2", "load", {"succeeded": 1}), obj("r3", "load", {}),
            obj("r4", "load", {"active": 1}, **{LABEL_RERUN: "x"}), obj("me", "load", {"active": 1})]
    attempts = [obj("r5", "load", {"phase": "Running"}), obj("r6", "load", {}), obj("r7", "load", {"phase": "Failed"}),
                obj("r8", "extract", {"phase": "Succeeded"}), obj("r9", "extract", {"phase": "Claimed"})]
    # r1, r3 (Jobs) and r5, r6 (unclaimed or running TaskAttempts) count; finished ones, reruns and this run do not.
    instances = [*map(job_instance, jobs), *map(attempt_instance, attempts)]
    assert busy_instances("me", instances) == {"load": 4, "extract": 1}


def test_an_attempt_that_finishes_leaves_the_pipelines_instance_index() -> None:
    import asyncio

    from datapipeline.controller import caches
    from datapipeline.k8s.jobs import LABEL_ACTIVITY, LABEL_KIND, LABEL_PIPELINE, LABEL_RUN

    labels = {LABEL_RUN: "r1", LABEL_ACTIVITY: "load", LABEL_KIND: "activity", LABEL_PIPELINE: "p"}

    def entry(status: dict[str, Any]) -> Any:
        body = {"metadata": {"name": "j", "labels": labels}, "status": status}
        return asyncio.run(caches.pipeline_job_instances(namespace="n", body=body, labels=labels))

    assert entry({"active": 1}) == {("n", "p"): ("r1", "load")}
    assert entry({"succeeded": 1}) == {}  # kopf drops the object's entry on {} (None would keep the old one)
