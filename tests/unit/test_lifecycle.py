"""A pipeline's lifecycle (activate from a time, deactivate, pause, on-demand concurrency), as pure functions.

Each docstring quotes the Developer Guide sentence the rule follows (doc_source/ of
awsdocs/aws-data-pipeline-developer-guide).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from datapipeline.cli.main import build_parser
from datapipeline.cli.ops import lifecycle_patch
from datapipeline.controller.lifecycle import (
    PipelineView,
    needs_wake,
    queue_reason,
    run_lifecycle,
    view_of,
)
from datapipeline.controller.pipeline_plan import (
    counted_active,
    deactivation_time,
    pipeline_state,
    skip_cursor,
)
from datapipeline.core.definition import parse_pipeline
from datapipeline.core.problems import DefinitionError
from datapipeline.core.schedule import plan
from datapipeline.day2 import Day2Error

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
ACTIVITY = {"name": "a", "type": "ShellCommandActivity", "command": "true"}
DAILY = {"period": "1 day", "startDateTime": "2026-11-01T00:00:00Z"}


def run(name: str, created: str, phase: str | None = None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": created},
            "status": {**({"phase": phase} if phase else {}), **status}}


# ---------------------------------------------------------------------------- the spec fields
def test_lifecycle_fields_parse_with_their_defaults() -> None:
    """"By default, these activities are canceled immediately\\. Alternatively, you can have AWS Data Pipeline
    wait until the activities finish before deactivating the pipeline\\." (Deactivating Your Pipeline)"""
    d = parse_pipeline({"schedule": DAILY, "activities": [ACTIVITY]})
    assert (d.lifecycle.paused, d.lifecycle.activate_from, d.lifecycle.cancel_active_on_deactivate) == (
        False, None, True)
    d = parse_pipeline({"schedule": DAILY, "activities": [ACTIVITY], "paused": True,
                        "activateFrom": "2026-11-10T00:00:00Z", "cancelActiveOnDeactivate": False})
    assert d.lifecycle.paused and not d.lifecycle.cancel_active_on_deactivate
    assert d.lifecycle.activate_from == datetime(2026, 11, 10, tzinfo=UTC)


@pytest.mark.parametrize(("extra", "message"), [
    ({"activateFrom": "soon"}, 'spec.activateFrom: "soon" is not an ISO 8601 date-time'),
    ({"paused": "yes"}, 'spec.paused: must be true or false, not "yes"'),
    ({"cancelActiveOnDeactivate": 1}, "spec.cancelActiveOnDeactivate: must be true or false, not 1"),
])
def test_lifecycle_field_messages(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as error:
        parse_pipeline({"schedule": DAILY, "activities": [ACTIVITY], **extra})
    assert message in [str(p) for p in error.value.problems]


def test_activate_from_is_refused_on_ondemand_pipelines() -> None:
    """"If you use an `ondemand` schedule, specify it in the default object as the only `scheduleType` for
    objects in the pipeline\\." -- an on-demand pipeline has no intervals to skip."""
    with pytest.raises(DefinitionError) as error:
        parse_pipeline({"scheduleType": "ondemand", "activities": [ACTIVITY], "activateFrom": "2026-11-10T00:00:00Z"})
    assert [str(p) for p in error.value.problems] == [
        "spec.activateFrom: an ondemand pipeline has no intervals to skip; remove activateFrom"]


# ---------------------------------------------------------------------------- activation from a time
def test_activation_from_a_start_time_skips_the_intervals_before_it() -> None:
    """"`SKIPPED` The component skipped intervals of execution after the pipeline was activated using a time
    stamp that is later than the current schedule\\." (Interpreting Pipeline Status Codes)"""
    d = parse_pipeline({"schedule": DAILY, "activities": [ACTIVITY], "activateFrom": "2026-11-19T00:00:00Z"})
    start = datetime(2026, 11, 1, tzinfo=UTC)
    cursor = skip_cursor(None, d.lifecycle.activate_from)
    decision = plan(d.schedule, "cron", start=start, cursor=cursor, now=NOW, max_active_runs=10)  # type: ignore[arg-type]
    assert [i.start.day for i in decision.create] == [19, 20, 21]
    # Already past it: nothing changes; without it: the cursor as it was.
    later = datetime(2026, 11, 20, tzinfo=UTC)
    assert skip_cursor(later, d.lifecycle.activate_from) == later and skip_cursor(later, None) == later


# ---------------------------------------------------------------------------- deactivation
def test_deactivation_is_recorded_once() -> None:
    """"@lastDeactivatedTime | The time at which this object was last deactivated\\." (ShellCommandActivity)"""
    active = {"activationTime": "2026-11-01T00:00:00Z"}
    assert deactivation_time(False, active, NOW) == "2026-11-21T12:00:00Z"
    assert deactivation_time(False, {"lastDeactivatedTime": "2026-11-21T12:00:00Z"}, NOW + timedelta(hours=1)) == \
        "2026-11-21T12:00:00Z"
    assert deactivation_time(True, active, NOW) is None


def test_deactivation_cancels_active_runs_by_default() -> None:
    """"When you deactivate a pipeline, you can specify what happens to running activities\\. By default, these
    activities are canceled immediately\\." (Deactivating Your Pipeline)"""
    view = view_of({"activated": False}, {"lastDeactivatedTime": "2026-11-21T12:00:00Z"})
    before = run("p-1", "2026-11-21T11:00:00Z", "Running")
    after = run("p-manual", "2026-11-21T12:30:00Z", "Running")  # started by hand once inactive: left alone
    assert run_lifecycle(view, before).cancel_reason == "the pipeline was deactivated at 2026-11-21T12:00:00Z"
    assert run_lifecycle(view, after).cancel_reason is None
    assert needs_wake(view, before) and not needs_wake(view, run("p-0", "2026-11-20T11:00:00Z", "Succeeded"))
    rerun = run("p-2", "2026-11-21T11:00:00Z", "Running", handledRerun="r1")
    assert run_lifecycle(view, rerun).cancel_reason is None


def test_deactivation_can_let_active_runs_finish() -> None:
    """"To deactivate the pipeline only after all running activities finish, add the `--no-cancel-active`
    option" (Deactivating Your Pipeline)"""
    view = view_of({"activated": False, "cancelActiveOnDeactivate": False},
                   {"lastDeactivatedTime": "2026-11-21T12:00:00Z"})
    assert run_lifecycle(view, run("p-1", "2026-11-21T11:00:00Z", "Running")).cancel_reason is None


# ---------------------------------------------------------------------------- pause
def test_pause_reaches_the_active_runs() -> None:
    """"`PAUSED` The component was paused and is not currently performing its work\\." (Interpreting Pipeline
    Status Codes)"""
    view = view_of({"activated": True, "paused": True}, {})
    running = run("p-1", "2026-11-21T11:00:00Z", "Running")
    assert run_lifecycle(view, running).paused and needs_wake(view, running)
    assert not needs_wake(view, run("p-1", "2026-11-21T11:00:00Z", "Paused"))
    resumed = view_of({"activated": True}, {})
    assert needs_wake(resumed, run("p-1", "2026-11-21T11:00:00Z", "Paused"))


@pytest.mark.parametrize(("args", "state"), [
    ((False, False, False, False, False), "PENDING"),
    ((True, False, False, False, False), "PENDING"),
    ((True, False, True, False, False), "INACTIVE"),
    ((True, True, True, True, False), "PAUSED"),
    ((True, True, True, False, False), "SCHEDULED"),
    ((True, True, True, False, True), "FINISHED"),
])
def test_pipeline_state(args: tuple[bool, bool, bool, bool, bool], state: str) -> None:
    """"A pipeline has a `SCHEDULED` status if it is ready ...\\. A pipeline has a `PENDING` status if it is not
    activated or not able to perform work" (Interpreting Pipeline Status Codes)"""
    assert pipeline_state(*args) == state


# ---------------------------------------------------------------------------- concurrency
def test_ondemand_runs_queue_behind_max_active_instances_of_default() -> None:
    """"The maximum number of concurrent executions of an on\\-demand pipeline can be configured using the slot
    maxActiveInstances in the Default object\\. The default value for this slot is 1 for on\\-demand pipelines"
    (Schedules)"""
    view = view_of({"scheduleType": "ondemand", "activated": True}, {})
    assert view == PipelineView(activated=True, ondemand=True, max_active=1)
    first = run("p-a", "2026-11-21T11:00:00Z", "Running")
    second = run("p-b", "2026-11-21T11:01:00Z")
    runs = [first, second]
    assert queue_reason(view, second, runs) == ("maxActiveInstances: 1 earlier run(s) of this on-demand pipeline "
                                                "are active (at most 1 at once)")
    assert queue_reason(view, first, runs) is None
    two = view_of({"scheduleType": "ondemand", "defaults": {"maxActiveInstances": 2}}, {})
    assert queue_reason(two, second, runs) is None
    assert queue_reason(view, second, [run("p-a", "2026-11-21T11:00:00Z", "Succeeded"), second]) is None


def test_reruns_do_not_count_as_active_runs() -> None:
    """"Re\\-runs do not count toward the number of active instances\\." (maxActiveInstances)"""
    view = view_of({"scheduleType": "ondemand"}, {})
    rerun = run("p-a", "2026-11-21T11:00:00Z", "Running", handledRerun="r1")
    fresh = run("p-b", "2026-11-21T11:01:00Z")
    assert queue_reason(view, fresh, [rerun, fresh]) is None
    assert counted_active([rerun, fresh, run("p-c", "2026-11-21T10:00:00Z", "Failed")]) == [fresh]


# ---------------------------------------------------------------------------- the CLI verbs
def test_cli_verbs_patch_the_same_spec_fields_as_gitops() -> None:
    """"aws datapipeline deactivate-pipeline --pipeline-id df-00627471SOVYZEXAMPLE --no-cancel-active" and
    "aws datapipeline activate-pipeline ... --start-timestamp YYYY-MM-DDTHH:MM:SSZ" (Deactivating Your Pipeline)"""
    assert lifecycle_patch("activate") == {"spec": {"activated": True}}
    assert lifecycle_patch("activate", "2026-11-10T00:00:00+00:00") == {
        "spec": {"activated": True, "activateFrom": "2026-11-10T00:00:00Z"}}
    assert lifecycle_patch("deactivate") == {"spec": {"activated": False, "cancelActiveOnDeactivate": True}}
    assert lifecycle_patch("deactivate", cancel_active=False)["spec"]["cancelActiveOnDeactivate"] is False
    assert lifecycle_patch("pause") == {"spec": {"paused": True}}
    assert lifecycle_patch("resume") == {"spec": {"paused": False}}
    with pytest.raises(Day2Error, match=r'^--start-timestamp: "tomorrow" is not a date-time'):
        lifecycle_patch("activate", "tomorrow")
    parser = build_parser()
    assert parser.parse_args(["deactivate", "p", "--no-cancel-active"]).cancel_active is False
    assert parser.parse_args(["deactivate", "p"]).cancel_active is True
    assert parser.parse_args(["activate", "p", "--start-timestamp", "2026-11-10T00:00:00Z"]).start_timestamp
    assert parser.parse_args(["pause", "p"]).func.__name__ == "cmd_pause"
    assert parser.parse_args(["resume", "p"]).func.__name__ == "cmd_resume"


class _FakeKube:
    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    def patch_spec(self, namespace: str, plural: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append((plural, name, patch))


@pytest.mark.parametrize(("argv", "printed"), [
    (["activate", "p"], "pipeline/p activated"),
    (["activate", "p", "--start-timestamp", "2026-11-10T00:00:00Z"],
     "pipeline/p activated from 2026-11-10T00:00:00Z (earlier intervals are SKIPPED)"),
    (["deactivate", "p"], "pipeline/p deactivated; its active runs are cancelled"),
    (["deactivate", "p", "--no-cancel-active"], "pipeline/p deactivated; its active runs may finish"),
    (["pause", "p"], "pipeline/p paused"),
    (["resume", "p"], "pipeline/p resumed"),
])
def test_cli_verb_messages(argv: list[str], printed: str, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Every user-visible message is tested: what the lifecycle verbs print."""
    from datapipeline.cli import ops

    fake = _FakeKube()
    monkeypatch.setattr(ops, "_kube", lambda: fake)
    args = build_parser().parse_args([*argv, "-n", "ns"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == printed
    assert fake.patches[0][:2] == ("pipelines", "p")


def test_skipped_intervals_are_reported_once() -> None:
    """Every user-visible message is tested: the IntervalsSkipped Event of activateFrom."""
    from datapipeline.controller.pipeline_plan import PipelinePlan, _skipped

    start = datetime(2026, 11, 19, tzinfo=UTC)
    first = PipelinePlan()
    _skipped(first, {}, start, skip_cursor(None, start), None)
    assert [(n.reason, n.message) for n in first.notices] == [
        ("IntervalsSkipped", "intervals starting before 2026-11-19T00:00:00Z are SKIPPED: the pipeline is "
                             "activated from then (activateFrom)")]
    assert first.status == {"skippedUntil": "2026-11-19T00:00:00Z"}
    again = PipelinePlan()
    _skipped(again, first.status, start, skip_cursor(None, start), None)
    assert again.notices == []
