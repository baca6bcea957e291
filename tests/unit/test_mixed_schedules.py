"""Mixed schedules (issue #11 part 1): which producer instances a consumer waits for, the run state machine
with dependencies on other schedules' runs, and the Pipeline planning one set of runs per schedule.

The guide's headline example: "archive your web server's logs to Amazon S3 each day and then run a weekly
Amazon EMR cluster over those logs ... AWS Data Pipeline also ensures that Amazon EMR waits for the final
day's data to be uploaded to Amazon S3 before it begins its analysis" (What is AWS Data Pipeline?).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_runstate import Sim

from datapipeline.controller.pipeline_plan import PlanSettings, counted_active, plan_pipeline
from datapipeline.core.crossrun import (
    DONE,
    FAILED,
    WAITING,
    ExternalState,
    InstanceState,
    external_state,
    needed_intervals,
)
from datapipeline.core.definition import parse_pipeline
from datapipeline.core.durations import parse_period
from datapipeline.core.model import DEFAULT_SCHEDULE, PipelineDefinition, Schedule
from datapipeline.core.problems import DefinitionError
from datapipeline.core.runstate import (
    CASCADE_FAILED,
    EXTERNAL_BLOCKED,
    EXTERNAL_WAITING,
    FINISHED,
    PHASE_FAILED,
    RUNNING,
    WAITING_ON_DEPENDENCIES,
)
from datapipeline.core.schedule import Interval

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)
DAILY = Schedule(period=parse_period("1 day"), start=MONDAY)
WEEKLY = Schedule(period=parse_period("1 week"), start=MONDAY)
WEEK = Interval(MONDAY, MONDAY + timedelta(days=7))


def days(*offsets: int) -> list[datetime]:
    return [MONDAY + timedelta(days=d) for d in offsets]


def weblogs(**weekly: Any) -> PipelineDefinition:
    """The guide's flagship: a daily archive and a weekly report over the week's logs."""
    return parse_pipeline({
        "schedule": {"period": "1 day", "startDateTime": "2026-11-02T00:00:00Z"},
        "schedules": {"weekly": {"period": "1 week", "startDateTime": "2026-11-02T00:00:00Z"}},
        "activities": [
            {"name": "archive-logs", "type": "ShellCommandActivity", "command": "true"},
            {"name": "weekly-report", "type": "ShellCommandActivity", "command": "true", "schedule": "weekly",
             "dependsOn": ["archive-logs"], **weekly},
            {"name": "publish", "type": "ShellCommandActivity", "command": "true", "schedule": "weekly",
             "dependsOn": ["weekly-report"]},
        ]})


# ---------------------------------------------------------------------------- which instances
def test_a_coarse_consumer_waits_for_every_finer_instance_inside_its_interval() -> None:
    """The weekly job waits for all seven daily copies of its week, the final day's included."""
    assert [i.start for i in needed_intervals(WEEK, DAILY, MONDAY)] == days(0, 1, 2, 3, 4, 5, 6)


def test_a_finer_consumer_uses_the_coarser_instance_that_covers_its_interval() -> None:
    """"a finer-scheduled consumer of a coarser producer uses the producer's instance that covers its
    interval": Wednesday's and Monday's daily runs both use the week that began on Monday."""
    for day in (0, 2, 6):
        interval = Interval(MONDAY + timedelta(days=day), MONDAY + timedelta(days=day + 1))
        assert needed_intervals(interval, WEEKLY, MONDAY) == [WEEK]


def test_same_period_other_phase_uses_the_covering_instance() -> None:
    noon = Interval(MONDAY + timedelta(hours=12), MONDAY + timedelta(hours=36))
    assert needed_intervals(noon, DAILY, MONDAY) == [Interval(MONDAY, MONDAY + timedelta(days=1))]


def test_a_producer_that_has_not_started_is_not_waited_for() -> None:
    assert needed_intervals(WEEK, DAILY, MONDAY + timedelta(days=30)) == []


def observed(statuses: dict[int, str | None], phase: str = "Running") -> dict[datetime, InstanceState]:
    return {MONDAY + timedelta(days=d): InstanceState(f"run-{d}", phase, s) for d, s in statuses.items()}


def test_the_wait_names_at_most_three_instances_and_counts_the_rest() -> None:
    needed = needed_intervals(WEEK, DAILY, MONDAY)
    state = external_state("archive-logs", needed, observed({0: FINISHED, 1: FINISHED, 2: RUNNING, 3: RUNNING}),
                           created_until=MONDAY + timedelta(days=3), skipped_before=None)
    assert state.state == WAITING
    assert state.waiting_on == ("archive-logs x5 (2026-11-04T00:00:00Z, 2026-11-05T00:00:00Z, "
                                "2026-11-06T00:00:00Z, ...): 2 RUNNING, 3 not created yet; 2 of 7 FINISHED")


def test_every_instance_finished_or_skipped_is_done() -> None:
    needed = needed_intervals(WEEK, DAILY, MONDAY)
    state = external_state("archive-logs", needed, observed({d: FINISHED for d in range(2, 7)}),
                           created_until=MONDAY + timedelta(days=6), skipped_before=MONDAY + timedelta(days=1))
    assert state.state == DONE
    assert state.assumed  # Tuesday has no run: skipped or deleted, to be confirmed by a LIST after a restart


def test_a_failed_or_cancelled_instance_fails_the_dependency_naming_it() -> None:
    needed = needed_intervals(WEEK, DAILY, MONDAY)
    state = external_state("archive-logs", needed, observed({0: FINISHED, 1: "FAILED"}), None, None)
    assert (state.state, state.root) == (FAILED, "archive-logs@2026-11-03T00:00:00Z")
    assert state.waiting_on == "archive-logs@2026-11-03T00:00:00Z FAILED in run run-1"
    cancelled = external_state("archive-logs", needed, observed({0: WAITING_ON_DEPENDENCIES}, "Cancelled"),
                               None, None)
    assert cancelled.state == FAILED


def test_a_producer_too_fine_for_its_consumer_is_refused_by_validation() -> None:
    spec = {"schedule": {"period": "1 minutes", "startDateTime": "2026-11-02T00:00:00Z"},
            "schedules": {"monthly": {"period": "1 months", "startDateTime": "2026-11-02T00:00:00Z"}},
            "activities": [{"name": "tick", "type": "ShellCommandActivity", "command": "true"},
                           {"name": "sum", "type": "ShellCommandActivity", "command": "true", "schedule": "monthly",
                            "dependsOn": ["tick"]}]}
    with pytest.raises(DefinitionError) as error:
        parse_pipeline(spec)
    assert str(error.value.problems[0]) == (
        'spec.activities[1].dependsOn[0]: "tick" runs on schedule default, which has more than 1,000 '
        "instances in one interval of schedule monthly; use a coarser schedule for it or a finer one for this "
        "activity")


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["activities"][1].update(schedule="weeky"),
     'spec.activities[1].schedule: no schedule named "weeky"; the schedules are: default, weekly; did you mean '
     '"weekly"?'),
    (lambda s: s["schedules"].update(default={"period": "1 day"}),
     'spec.schedules.default: "default" is spec.schedule; give this schedule another name'),
    (lambda s: s["schedules"].update({"Every_Week": {"period": "1 week"}}),
     "spec.schedules.Every_Week: schedule name \"Every_Week\" must be a DNS label of at most 20 characters: lower "
     "case letters, digits and '-' (it names runs and a label)"),
    (lambda s: s.update(scheduleType="ondemand", schedule=None),
     "spec.schedules: an ondemand pipeline has no schedules (AWS: on-demand pipelines do not allow multiple "
     "schedules); remove them or use scheduleType cron"),
])
def test_schedule_mistakes_name_the_field(change: Any, message: str) -> None:
    spec: dict[str, Any] = {
        "schedule": {"period": "1 day", "startDateTime": "2026-11-02T00:00:00Z"},
        "schedules": {"weekly": {"period": "1 week", "startDateTime": "2026-11-02T00:00:00Z"}},
        "activities": [{"name": "archive-logs", "type": "ShellCommandActivity", "command": "true"},
                       {"name": "weekly-report", "type": "ShellCommandActivity", "command": "true",
                        "schedule": "weekly", "dependsOn": ["archive-logs"]}]}
    change(spec)
    spec = {k: v for k, v in spec.items() if v is not None}
    with pytest.raises(DefinitionError) as error:
        parse_pipeline(spec)
    assert message in [str(p) for p in error.value.problems]


def test_a_resource_schedule_is_accepted_with_a_warning() -> None:
    """"A resource's own schedule has no cost meaning on Kubernetes: accept it, say so in a warning.\""""
    definition = parse_pipeline({
        "schedule": {"period": "1 day", "startDateTime": "2026-11-02T00:00:00Z"},
        "schedules": {"hourly": {"period": "1 hour", "startDateTime": "2026-11-02T00:00:00Z"}},
        "computeProfiles": [{"name": "small", "schedule": "hourly"}],
        "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true", "runsOn": "small"}]})
    assert definition.warnings == ("spec.computeProfiles[0].schedule: ignored: each attempt gets its own pod, so a "
                                   "resource's schedule (AWS: one instance serving several activity instances) "
                                   "changes nothing here",)
    assert definition.schedule_names == ["default"]  # no activity on hourly: it makes no runs


# ---------------------------------------------------------------------------- the run state machine
def weekly_sim(**weekly: Any) -> Sim:
    return Sim(weblogs(**weekly).for_schedule("weekly"))


def test_a_weekly_activity_waits_for_its_days_and_says_which_in_waiting_on() -> None:
    sim = weekly_sim()
    text = "archive-logs x2 (2026-11-07T00:00:00Z, 2026-11-08T00:00:00Z): 1 RUNNING, 1 not created yet; 5 of 7 " \
           "FINISHED"
    sim.step(external={"archive-logs": ExternalState(WAITING, text)})
    assert sim.created == []
    assert sim.state.activities["weekly-report"].waiting_on == text
    assert sim.state.external == EXTERNAL_WAITING  # not counted against maxActiveRuns
    sim.step(external={"archive-logs": ExternalState(DONE)})
    assert sim.created_kinds("activity") == [sim.job("weekly-report", 1)]
    assert sim.state.external is None


def test_a_run_not_yet_told_about_its_producers_waits() -> None:
    sim = weekly_sim()
    sim.step()
    assert sim.created == []
    assert sim.state.activities["weekly-report"].waiting_on == "archive-logs (not observed yet)"


def test_a_failed_day_cascades_to_a_cascading_weekly_activity_and_its_consumers() -> None:
    """"cascade failures occur if a pipeline object is blocked in the WAITING_ON_DEPENDENCIES state and any
    dependencies have failed" (Cascading Failures and Reruns); @cascadeFailedOn names the day."""
    sim = weekly_sim(failureAndRerunMode="cascade")
    failed = ExternalState(FAILED, "archive-logs@2026-11-04T00:00:00Z FAILED in run weblogs-20261104t0000z",
                           root="archive-logs@2026-11-04T00:00:00Z")
    sim.step(external={"archive-logs": failed})
    report = sim.state.activities["weekly-report"]
    assert (report.status, report.cascade_failed_on) == (CASCADE_FAILED, "archive-logs@2026-11-04T00:00:00Z")
    assert sim.state.phase == PHASE_FAILED
    assert sim.state.external == EXTERNAL_BLOCKED  # a rerun of the day reaches it


def test_a_rerun_of_the_failed_day_makes_the_cascade_failed_week_wait_again_then_run() -> None:
    """"a rerun command on a target object ... propagate[s] to all consumers ... in the CASCADE_FAILED state"."""
    sim = weekly_sim(failureAndRerunMode="cascade")
    failed = ExternalState(FAILED, "archive-logs@2026-11-04T00:00:00Z FAILED", root="archive-logs@2026-11-04T00:00:00Z")
    sim.step(external={"archive-logs": failed})
    sim.step(external={"archive-logs": ExternalState(WAITING, "archive-logs x1 (...): 1 RUNNING; 6 of 7 FINISHED")})
    assert sim.status("weekly-report") == WAITING_ON_DEPENDENCIES
    assert sim.state.phase not in ("Failed", "Succeeded")
    assert any(e.reason == "CascadeRerun" for e in sim.events)
    sim.step(external={"archive-logs": ExternalState(DONE)})
    assert sim.created_kinds("activity") == [sim.job("weekly-report", 1)]


def test_without_cascade_a_failed_day_leaves_the_week_waiting_and_the_run_failed_until_it_is_rerun() -> None:
    sim = weekly_sim()
    failed = ExternalState(FAILED, "archive-logs@2026-11-04T00:00:00Z FAILED", root="archive-logs@2026-11-04T00:00:00Z")
    sim.step(external={"archive-logs": failed})
    assert sim.status("weekly-report") == WAITING_ON_DEPENDENCIES
    assert sim.state.phase == PHASE_FAILED  # nothing in it can progress
    sim.step(external={"archive-logs": ExternalState(DONE)})
    assert sim.created_kinds("activity") == [sim.job("weekly-report", 1)]
    assert sim.status("weekly-report") != CASCADE_FAILED


def test_the_weekly_run_finishes_after_its_own_chain() -> None:
    sim = weekly_sim()
    sim.step(external={"archive-logs": ExternalState(DONE)})
    sim.finish(sim.job("weekly-report", 1))
    sim.step()
    sim.finish(sim.job("publish", 1))
    sim.step()
    assert sim.state.phase == "Succeeded"
    assert set(sim.state.activities) == {"weekly-report", "publish"}  # the daily activity is not in this run


# ---------------------------------------------------------------------------- planning
NOW = MONDAY + timedelta(days=14, hours=1)
SETTINGS = PlanSettings(max_intervals=1000, missed_grace=timedelta(minutes=1))


def planned(definition: PipelineDefinition, runs: list[dict[str, Any]], status: dict[str, Any] | None = None,
            now: datetime = NOW) -> Any:
    status = status or {"activatedAt": "2026-11-02T00:00:00Z", "activationTime": "2026-11-02T00:00:00Z"}
    return plan_pipeline(definition, "", status, runs, now, 1, SETTINGS)


def test_each_schedule_makes_its_own_runs_with_its_own_cursor() -> None:
    """Backfill of two weeks: 14 daily and 2 weekly runs (maxActiveRuns counts per schedule)."""
    definition = parse_pipeline({**weblogs_spec(), "maxActiveRuns": 20})
    decision = planned(definition, [])
    daily = [r for r in decision.create if r.schedule == "default"]
    weekly = [r for r in decision.create if r.schedule == "weekly"]
    assert [r.start for r in daily] == days(*range(15))  # the 15th day (today) is due too: cron type
    assert [r.start for r in weekly] == days(0, 7, 14)
    assert decision.status["lastScheduledTime"] == "2026-11-16T00:00:00Z"
    assert decision.status["schedules"]["weekly"]["lastScheduledTime"] == "2026-11-16T00:00:00Z"


def test_a_run_waiting_only_for_other_runs_does_not_hold_max_active_runs() -> None:
    """Otherwise daily A -> weekly W -> daily B would deadlock at maxActiveRuns 1."""
    waiting = {"metadata": {"name": "w"}, "spec": {"schedule": "weekly"}, "status": {"phase": "Pending",
                                                                                   "external": "waiting"}}
    running = {"metadata": {"name": "r"}, "spec": {}, "status": {"phase": "Running"}}
    assert counted_active([waiting, running]) == [running]


def test_history_keeps_a_finished_day_that_an_unfinished_week_may_wait_for() -> None:
    definition = parse_pipeline({**weblogs_spec(), "successfulRunsHistoryLimit": 1})

    def run(name: str, day: int, phase: str, schedule: str = "default", length: int = 1) -> dict[str, Any]:
        start, end = MONDAY + timedelta(days=day), MONDAY + timedelta(days=day + length)
        spec = {"scheduledStartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "scheduledEndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "trigger": "Scheduled",
                **({"schedule": schedule} if schedule != "default" else {})}
        return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}

    runs = [run(f"d{d}", d, "Succeeded") for d in range(9)] + [run("w1", 7, "Pending", "weekly", 7)]
    decision = planned(definition, runs, now=MONDAY + timedelta(days=9, hours=1))
    assert decision.delete == [f"d{d}" for d in range(7)]  # d7 and d8 lie inside the unfinished week


def weblogs_spec() -> dict[str, Any]:
    return {
        "activated": True,
        "schedule": {"period": "1 day", "startDateTime": "2026-11-02T00:00:00Z"},
        "schedules": {"weekly": {"period": "1 week", "startDateTime": "2026-11-02T00:00:00Z"}},
        "activities": [
            {"name": "archive-logs", "type": "ShellCommandActivity", "command": "true"},
            {"name": "weekly-report", "type": "ShellCommandActivity", "command": "true", "schedule": "weekly",
             "dependsOn": ["archive-logs"]}]}


# ---------------------------------------------------------------------------- data nodes on their own schedule
def test_a_data_node_is_evaluated_in_its_own_schedules_instance() -> None:
    """Every object instance belongs to its schedule: a daily activity reading the weekly report node sees the
    week's path (the covering instance), whatever day it runs."""
    from datapipeline.core.crossrun import node_intervals
    from datapipeline.core.resolve import Resolver, RunContext

    definition = parse_pipeline({
        "schedule": {"period": "1 day", "startDateTime": "2026-11-02T00:00:00Z"},
        "schedules": {"weekly": {"period": "1 week", "startDateTime": "2026-11-02T00:00:00Z"}},
        "dataNodes": [{"name": "week-report", "type": "S3DataNode", "schedule": "weekly",
                       "directoryPath": "s3://b/reports/#{format(@scheduledStartTime, 'YYYY-MM-dd')}/"}],
        "activities": [{"name": "read", "type": "ShellCommandActivity", "input": ["week-report"],
                        "command": "echo #{format(@scheduledStartTime, 'YYYY-MM-dd')}"}]})
    wednesday = MONDAY + timedelta(days=2)
    starts = {name: MONDAY for name in definition.schedules}
    context = RunContext(pipeline="p", run="p-20261104t0000z", scheduled_start=wednesday,
                         scheduled_end=wednesday + timedelta(days=1),
                         intervals=node_intervals(definition, "default", wednesday, starts))
    task = Resolver(definition, context).activity("read", 1).task
    assert task.fields["command"] == "echo 2026-11-04"  # the activity: its own day
    assert task.inputs[0].fields["directoryPath"] == "s3://b/reports/2026-11-02/"  # the node: its week


def test_render_at_resolves_each_activity_for_an_interval_of_its_own_schedule(tmp_path: Any) -> None:
    """`render --at` resolves any activity for an interval of its own schedule: on a Wednesday, the daily
    activity renders that day and the weekly one the week that starts at or after it."""
    import io
    from pathlib import Path

    import yaml as yaml_lib

    from datapipeline.cli.render import render_files

    source = Path(__file__).resolve().parents[2] / "examples" / "weblogs-daily-weekly.yaml"
    out, err = io.StringIO(), io.StringIO()
    at = datetime(2026, 11, 4, tzinfo=UTC)
    assert render_files(source, at, None, out, err, now=at) == 0, err.getvalue()
    rendered = yaml_lib.safe_load(out.getvalue())
    daily, weekly = rendered["activities"]
    assert rendered["run"] == "weblogs-20261104t0000z"
    assert "2026-11-04 GET" in daily["fields"]["command"]
    assert (weekly["schedule"], weekly["run"]) == ("weekly", "weblogs-weekly-20261109t0000z")
    assert weekly["outputs"][0]["fields"]["directoryPath"] == "s3://weblogs/reports/week-2026-11-09/"


def test_a_schedules_view_is_made_once_and_holds_only_its_activities() -> None:
    """Every pass of a run asks for its schedule's view: the same object each time, so its order is kept."""
    definition = weblogs()
    weekly = definition.for_schedule("weekly")
    assert definition.for_schedule("weekly") is weekly and weekly.run_schedule == "weekly"
    assert all(a.schedule == "weekly" for a in weekly.activities.values())
    assert weekly.topological_order() == [n for n in definition.topological_order() if n in weekly.activities]
    assert definition.for_schedule(DEFAULT_SCHEDULE) is not weekly
