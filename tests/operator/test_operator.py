"""The operator against the real cluster: schedules, graphs, retries, timeouts, cancel, rerun, restarts."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kdp_harness import Operator, activity_attempts, pipeline_doc, run_doc, shell

from datapipeline.core.schedule import format_time, run_name

pytestmark = pytest.mark.cluster
# Runs are created by hand: an activated on-demand pipeline would start its own run first, and the manual one
# would wait behind it (maxActiveInstances of Default is 1 for on-demand pipelines).
ONDEMAND: dict[str, Any] = {"scheduleType": "ondemand", "activated": False}


def test_cron_pipeline_produces_exactly_the_expected_runs(operator: Operator) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    operator.apply(pipeline_doc("cron5", [shell("a", "exit 0")], schedule={
        "cron": "*/5 * * * * *", "startDateTime": format_time(start), "occurrences": 3}, maxActiveRuns=3))
    runs = operator.wait(lambda: len(operator.runs("cron5")) == 3 and operator.runs("cron5"), timeout=60)
    names = [r["metadata"]["name"] for r in runs]
    first = start + timedelta(seconds=(5 - start.second % 5) % 5)
    assert names == [run_name("cron5", first + timedelta(seconds=5 * i)) for i in range(3)]
    for name in names:
        operator.wait_phase(name)
    time.sleep(6)
    assert len(operator.runs("cron5")) == 3


def test_period_pipeline_and_backfill_bounded_by_max_active_runs(operator: Operator) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=50)
    operator.apply(pipeline_doc("period", [shell("a", "sleep 3")], schedule={
        "period": "10 seconds", "startDateTime": format_time(start), "occurrences": 4}, maxActiveRuns=2))
    seen_max = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = operator.runs("period")
        active = [r for r in runs if (r.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        seen_max = max(seen_max, len(active))
        if len(runs) == 4 and not active:
            break
        time.sleep(0.5)
    runs = operator.runs("period")
    assert [r["metadata"]["name"] for r in runs] == [run_name("period", start + timedelta(seconds=10 * i))
                                                     for i in range(4)]
    assert seen_max <= 2
    created = [r["metadata"]["creationTimestamp"] for r in runs]
    assert created == sorted(created)  # oldest first


def test_chain_and_diamond(operator: Operator) -> None:
    operator.apply(pipeline_doc("diamond", [shell("a"), shell("b", dependsOn=["a"]), shell("c", dependsOn=["a"]),
                                            shell("d", dependsOn=["b", "c"])], **ONDEMAND))
    operator.apply(run_doc("diamond-1", "diamond"))
    run = operator.wait_phase("diamond-1")
    acts = run["status"]["activities"]
    assert all(a["status"] == "FINISHED" for a in acts.values())
    assert acts["d"]["startTime"] >= max(acts["b"]["endTime"], acts["c"]["endTime"])
    assert run["status"]["progress"] == "4/4"
    assert activity_attempts(operator, "diamond-1") == {"a": [1], "b": [1], "c": [1], "d": [1]}
    operator.kubectl("wait", "--for=condition=Succeeded", "pipelinerun/diamond-1", "--timeout=5s")
    # The run's milestones are Kubernetes Events on it (kubectl get events / kubectl describe); its start and
    # each attempt's creation, start and end only with DATAPIPELINE_EVENTS=all (the status holds them).
    reasons = operator.wait(lambda: (lambda found: "RunSucceeded" in found and found)(
        [e["reason"] for e in operator.events("PipelineRun", "diamond-1")]), timeout=30)
    assert reasons == ["RunSucceeded"]
    assert "diamond-1" in operator.kubectl("get", "events", "--field-selector",
                                           "involvedObject.kind=PipelineRun,reason=RunSucceeded")


def test_retries_then_cascade(operator: Operator) -> None:
    operator.apply(pipeline_doc("retry", [
        shell("a", "exit 1", maximumRetries=2, retryDelay="3s"),
        shell("b", dependsOn=["a"]), shell("c", dependsOn=["b"])], defaults={"failureAndRerunMode": "cascade"},
        **ONDEMAND))
    operator.apply(run_doc("retry-1", "retry"))
    run = operator.wait_phase("retry-1", ("Failed",))
    acts = run["status"]["activities"]
    assert acts["a"]["status"] == "FAILED" and acts["a"]["attempt"] == 3
    assert [x["status"] for x in acts["a"]["attempts"]] == ["FAILED"] * 3
    assert acts["b"]["status"] == "CASCADE_FAILED" and acts["c"]["status"] == "CASCADE_FAILED"
    starts = [datetime.fromisoformat(x["start"].replace("Z", "+00:00")) for x in acts["a"]["attempts"]]
    ends = [datetime.fromisoformat(x["end"].replace("Z", "+00:00")) for x in acts["a"]["attempts"]]
    assert all((starts[i + 1] - ends[i]).total_seconds() >= 2 for i in range(2))
    assert activity_attempts(operator, "retry-1") == {"a": [1, 2, 3]}


def test_attempt_timeout(operator: Operator) -> None:
    operator.apply(pipeline_doc("slow", [shell("a", "sleep 60", attemptTimeout="5s", maximumRetries=0)], **ONDEMAND))
    operator.apply(run_doc("slow-1", "slow"))
    run = operator.wait_phase("slow-1", ("Failed",), timeout=120)
    a = run["status"]["activities"]["a"]
    assert a["status"] == "FAILED" and a["errorId"] == "AttemptTimeout"  # TIMEDOUT is a resource state


def test_report_progress_timeout_stops_a_stalled_attempt(operator: Operator) -> None:
    # "quiet" runs its runner with a heartbeat once an hour: after its first log line it looks stalled.
    # "chatty" runs as long but heartbeats often enough (the operator sets its interval), so it finishes.
    operator.apply(pipeline_doc("stall", [
        shell("quiet", "sleep 120", runsOn="hush", reportProgressTimeout="6s", maximumRetries=0),
        shell("chatty", "sleep 12", reportProgressTimeout="6s", maximumRetries=0)],
        computeProfiles=[{"name": "hush", "type": "ComputeProfile",
                          "env": {"DATAPIPELINE_PROGRESS_INTERVAL": "3600"}}], **ONDEMAND))
    operator.apply(run_doc("stall-1", "stall"))
    run = operator.wait_phase("stall-1", ("Failed",), timeout=150)
    quiet, chatty = run["status"]["activities"]["quiet"], run["status"]["activities"]["chatty"]
    assert quiet["status"] == "FAILED" and quiet["errorId"] == "ProgressTimeout"
    assert "reported no progress" in quiet["errorMessage"]
    assert chatty["status"] == "FINISHED"
    # The stalled attempt's Job was stopped (deleted), not left running for its 120 s.
    operator.wait(lambda: not [j for j in operator.jobs("stall-1")
                               if j["metadata"]["labels"]["datapipeline.io/activity"] == "quiet"], timeout=60)


def test_late_action(operator: Operator) -> None:
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    # Lateness never applies to on-demand pipelines: a scheduled one, inactive, run by hand for a past interval.
    operator.apply(pipeline_doc("late", [shell("a", "sleep 30", lateAfterTimeout="1m", onLateAction=["hook"])],
                                actions=[{"name": "hook", "type": "Webhook", "url": "http://127.0.0.1:9/x",
                                          "message": "late #{node.@id}"}], activated=False,
                                schedule={"period": "1 day", "startDateTime": format_time(past)}))
    operator.apply(run_doc("late-1", "late", scheduledStartTime=format_time(past)))
    operator.wait(lambda: [j for j in operator.jobs("late-1")
                           if j["metadata"]["labels"].get("datapipeline.io/kind") == "action"], timeout=60)


def test_cancel(operator: Operator) -> None:
    operator.apply(pipeline_doc("cancel", [shell("a", "sleep 120"), shell("b", dependsOn=["a"])], **ONDEMAND))
    operator.apply(run_doc("cancel-1", "cancel"))
    operator.wait(lambda: (operator.get("pipelinerun", "cancel-1").get("status") or {}).get("activities", {})
                  .get("a", {}).get("status") == "RUNNING", timeout=90)
    operator.kubectl("patch", "pipelinerun", "cancel-1", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    run = operator.wait_phase("cancel-1", ("Cancelled",))
    assert {a["status"] for a in run["status"]["activities"].values()} == {"CANCELED"}
    # The operator puts no finalizer on anything: with it stopped (uninstalled), runs and pipelines can
    # still be deleted, and so can their namespace.
    assert not run["metadata"].get("finalizers")
    assert not operator.get("pipeline", "cancel")["metadata"].get("finalizers")
    operator.stop()
    operator.kubectl("delete", "pipelinerun", "cancel-1", "--timeout=60s")
    operator.kubectl("delete", "pipeline", "cancel", "--timeout=60s")
    assert not operator.get("pipelineruns")["items"] or operator.wait(
        lambda: not operator.get("pipelineruns")["items"], timeout=60)


def test_rerun_only_the_failed_activity(operator: Operator) -> None:
    operator.apply(pipeline_doc("rerun", [shell("a"), shell("b", "test -f /tmp/never", maximumRetries=0),
                                          shell("c", dependsOn=["b"])], **ONDEMAND))
    operator.apply(run_doc("rerun-1", "rerun"))
    operator.wait_phase("rerun-1", ("Failed",))
    operator.kubectl("patch", "pipelinerun", "rerun-1", "--type=merge", "-p",
                     '{"spec":{"rerun":{"id":"1","failedOnly":true}}}')
    operator.wait(lambda: operator.get("pipelinerun", "rerun-1")["status"].get("handledRerun") == "1")
    operator.wait_phase("rerun-1", ("Failed",))
    assert activity_attempts(operator, "rerun-1") == {"a": [1], "b": [1, 2]}


def test_precondition_true_after_a_while(operator: Operator) -> None:
    soon = int(time.time()) + 8
    operator.apply(pipeline_doc("pre", [shell("a", precondition=["clock"])], preconditions=[
        {"name": "clock", "type": "ShellCommandPrecondition", "command": f"test $(date +%s) -ge {soon}",
         "retryDelay": "2s", "preconditionTimeout": "2m"}], **ONDEMAND))
    operator.apply(run_doc("pre-1", "pre"))
    run = operator.wait_phase("pre-1", timeout=150)
    assert run["status"]["activities"]["a"]["checks"]["clock"]["checks"] >= 2


def test_operator_killed_mid_run_converges_without_duplicates(operator: Operator) -> None:
    operator.apply(pipeline_doc("kill", [shell("a", "sleep 4"), shell("b", "sleep 4", dependsOn=["a"]),
                                         shell("c", "sleep 4", dependsOn=["a"]),
                                         shell("d", "sleep 2", dependsOn=["b", "c"])], **ONDEMAND))
    operator.apply(run_doc("kill-1", "kill"))
    operator.wait(lambda: activity_attempts(operator, "kill-1").get("a"), timeout=60)
    operator.kill()
    time.sleep(6)
    operator.start()
    operator.wait(lambda: "b" in activity_attempts(operator, "kill-1"), timeout=60)
    operator.kill()
    time.sleep(3)
    operator.start()
    operator.wait_phase("kill-1", timeout=180)
    assert activity_attempts(operator, "kill-1") == {"a": [1], "b": [1], "c": [1], "d": [1]}
