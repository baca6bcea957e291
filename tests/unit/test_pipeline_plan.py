"""The Pipeline side's decision, without Kubernetes: from a definition, its runs and the time, what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from datapipeline.controller.pipeline_plan import NewRun, PlanSettings, plan_pipeline
from datapipeline.core.definition import parse_pipeline
from datapipeline.core.model import PipelineDefinition

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SETTINGS = PlanSettings(max_intervals=1_000, missed_grace=timedelta(seconds=60))
ACTIVATED = {"activatedAt": "2026-11-30T09:00:00Z", "activationTime": "2026-11-30T09:00:00Z"}


def hourly(**extra: Any) -> PipelineDefinition:
    return parse_pipeline({"activated": True, "schedule": {"period": "1 hour",
                                                           "startDateTime": "2026-11-30T09:00:00Z"},
                           "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true"}], **extra})


def run(name: str, start: str, phase: str | None = None, trigger: str = "Scheduled") -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": start},
            "spec": {"scheduledStartTime": start, "trigger": trigger}, "status": {"phase": phase} if phase else {}}


def test_an_invalid_definition_is_a_condition_and_nothing_else() -> None:
    decision = plan_pipeline(None, "spec.activities: a pipeline needs at least one activity", {}, [], NOW, 3,
                             SETTINGS)
    assert decision.create == [] and decision.delete == [] and decision.wake_at is None
    assert decision.status["health"] == "ERROR" and decision.status["state"] == "PENDING"
    valid = {c["type"]: c for c in decision.status["conditions"]}["Valid"]
    assert (valid["status"], valid["reason"], valid["message"]) == (
        "False", "InvalidDefinition", "spec.activities: a pipeline needs at least one activity")


def test_the_activation_is_saved_before_any_run() -> None:
    decision = plan_pipeline(hourly(), "", {}, [], NOW, 1, SETTINGS)
    assert decision.create == [] and decision.wake_at == NOW
    assert decision.status["activatedAt"] == decision.status["activationTime"] == "2026-11-30T12:00:00Z"


def test_due_intervals_become_runs_bounded_by_max_active_runs() -> None:
    decision = plan_pipeline(hourly(maxActiveRuns=2), "", ACTIVATED, [], NOW, 1, SETTINGS)
    assert [(r.start.hour, r.trigger) for r in decision.create] == [(9, "Scheduled"), (10, "Scheduled")]
    assert decision.status["queueDepth"] == 2 and decision.queued == 2  # 11:00 and 12:00 wait their turn
    assert decision.wake_at is None  # held back: a finishing run wakes the worker
    assert decision.create[0].lag == (NOW - datetime(2026, 11, 30, 9, tzinfo=UTC)).total_seconds()


def test_nothing_due_costs_nothing_until_the_next_interval() -> None:
    runs = [run(f"p-{h}", f"2026-11-30T{h:02d}:00:00Z", "Succeeded") for h in (9, 10, 11)]
    status = {**ACTIVATED, "lastScheduledTime": "2026-11-30T11:00:00Z"}
    decision = plan_pipeline(hourly(), "", status, runs, NOW - timedelta(minutes=25), 1, SETTINGS)
    assert decision.create == [] and decision.wake_at == NOW
    assert decision.status["nextRunTime"] == "2026-11-30T12:00:00Z"
    assert decision.status["lastRun"] == {"name": "p-11", "status": "Succeeded"}


def test_finished_runs_past_the_history_limits_are_deleted_and_health_follows_the_newest() -> None:
    runs = [run(f"ok-{h}", f"2026-11-30T{h:02d}:00:00Z", "Succeeded") for h in range(0, 5)]
    runs.append(run("bad", "2026-11-30T06:00:00Z", "Failed"))
    decision = plan_pipeline(hourly(successfulRunsHistoryLimit=2), "", ACTIVATED, runs, NOW, 1, SETTINGS)
    assert decision.delete == ["ok-0", "ok-1", "ok-2"]
    assert [r["metadata"]["name"] for r in decision.kept_runs] == ["ok-3", "ok-4", "bad"]
    assert decision.status["health"] == "ERROR"


def test_an_on_demand_pipeline_makes_one_run_per_activation() -> None:
    definition = parse_pipeline({"activated": True, "scheduleType": "ondemand",
                                 "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true"}]})
    first = plan_pipeline(definition, "", ACTIVATED, [], NOW, 1, SETTINGS)
    assert first.create == [NewRun(datetime(2026, 11, 30, 9, tzinfo=UTC), None, "OnDemand")]
    again = plan_pipeline(definition, "", {**ACTIVATED, **first.status}, [], NOW, 1, SETTINGS)
    assert again.create == []


def test_a_paused_or_deactivated_pipeline_makes_no_run() -> None:
    paused = plan_pipeline(hourly(paused=True), "", ACTIVATED, [], NOW, 1, SETTINGS)
    assert paused.create == [] and paused.status["state"] == "PAUSED"
    off = parse_pipeline({"activated": False, "schedule": {"period": "1 hour"},
                          "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true"}]})
    stopped = plan_pipeline(off, "", ACTIVATED, [], NOW, 1, SETTINGS)
    assert stopped.create == [] and stopped.status["state"] == "INACTIVE"
    assert stopped.status["lastDeactivatedTime"] == "2026-11-30T12:00:00Z"
    assert stopped.status["activationTime"] is None


def test_intervals_missed_while_the_operator_was_down_follow_the_policy_in_one_warning() -> None:
    status = {**ACTIVATED, "lastScheduledTime": "2026-11-30T09:00:00Z"}
    decision = plan_pipeline(hourly(missedRunPolicy="RunLatest"), "", status, [], NOW, 1, SETTINGS)
    assert [r.start.hour for r in decision.create] == [12]
    assert [(n.type, n.reason, n.message) for n in decision.notices] == [
        ("Warning", "RunsSkipped", "2 missed interval(s) skipped by missedRunPolicy RunLatest, from "
                                   "2026-11-30T10:00:00Z to 2026-11-30T11:00:00Z")]
