"""The day-2 operations the CLI and the console share (datapipeline.day2), against a stand-in for the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from console_objects import pipeline, run
from test_console_app import FakeKube

from datapipeline import day2
from datapipeline.cli.main import build_parser
from datapipeline.console.actions import ActionRequest, perform
from datapipeline.console.auth import Caller


def fake() -> FakeKube:
    return FakeKube({("pipelineruns", "daily-1"): run("daily-1"), ("pipelines", "daily"): pipeline()})


@pytest.mark.parametrize(("argv", "action"), [
    (["rerun", "daily-1", "--failed-only"], {"action": "rerun-failed", "run": "daily-1"}),
    (["rerun", "daily-1"], {"action": "rerun", "run": "daily-1"}),
    (["rerun", "daily-1", "--activity", "load", "--downstream"],
     {"action": "rerun-downstream", "run": "daily-1", "activity": "load"}),
    (["cancel", "daily-1"], {"action": "cancel", "run": "daily-1"}),
    (["mark-finished", "daily-1", "load"], {"action": "mark-finished", "run": "daily-1", "activity": "load"}),
    (["pause", "daily"], {"action": "pause", "pipeline": "daily"}),
    (["deactivate", "daily"], {"action": "deactivate", "pipeline": "daily"}),
])
def test_the_cli_verb_and_the_console_action_make_the_same_request(
        argv: list[str], action: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from datapipeline.cli import ops

    by_cli, by_console = fake(), fake()
    monkeypatch.setattr(ops, "_kube", lambda: by_cli)
    args = build_parser().parse_args([*argv, "-n", "team-a"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out.strip()
    said = perform(by_console, Caller(), ActionRequest.from_json({**action, "namespace": "team-a"}))
    assert _without_ids(by_cli.patches) == _without_ids(by_console.patches) and len(by_cli.patches) == 1
    assert printed.split(" rerun ")[0] == said.split(" rerun ")[0]


def _without_ids(patches: list[Any]) -> list[Any]:
    """A rerun's id is new each time."""
    return [(ns, plural, name, {**patch, "spec": {k: ({**v, "id": "-"} if k == "rerun" else v)
                                                  for k, v in patch["spec"].items()}})
            for ns, plural, name, patch in patches]


def test_an_unknown_run_or_pipeline_is_not_found() -> None:
    kube = fake()
    with pytest.raises(day2.NotFound, match=r"^no PipelineRun nope in team-a$"):
        day2.cancel_run(kube, "team-a", "nope")
    with pytest.raises(day2.NotFound, match=r"^no PipelineRun nope in team-a$"):
        day2.mark_finished(kube, "team-a", "nope", ["load"])
    with pytest.raises(day2.NotFound, match=r"^no Pipeline nope in team-a$"):
        day2.start_run(kube, "team-a", "nope")
    with pytest.raises(day2.NotFound, match=r"^no Pipeline nope in team-a$"):
        day2.change_lifecycle(kube, "team-a", "nope", "pause")


def test_mark_finished_adds_to_what_was_marked_and_knows_the_activities() -> None:
    kube = fake()
    kube.objects[("pipelineruns", "daily-1")]["spec"]["markFinished"] = ["extract"]
    assert day2.mark_finished(kube, "team-a", "daily-1", ["load"]) == "pipelinerun/daily-1 mark-finished requested"
    assert kube.patches[0][3] == {"spec": {"markFinished": ["extract", "load"]}}
    with pytest.raises(day2.Day2Error, match='has no activity named "lod"'):
        day2.mark_finished(kube, "team-a", "daily-1", ["lod"])


def test_start_run_names_the_run_as_the_operator_would() -> None:
    kube = fake()
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert day2.start_run(kube, "team-a", "daily", at=at) == "daily-manual-20261130t1200z"
    assert kube.created[0]["spec"]["scheduledStartTime"] == "2026-11-30T12:00:00Z"
    with pytest.raises(day2.Day2Error, match='no schedule named "weekly"'):
        day2.start_run(kube, "team-a", "daily", schedule="weekly")


def test_bad_values_are_one_sentence() -> None:
    with pytest.raises(day2.Day2Error, match=r'^--at: "soon" is not a date-time'):
        day2.parse_time_option("soon", "--at")
    with pytest.raises(day2.Day2Error, match=r"^--param 'x': write it as NAME=VALUE$"):
        day2.parse_params(["x"])
    with pytest.raises(day2.Day2Error, match=r'^"explode" is not one of activate'):
        day2.lifecycle_patch("explode")


def test_a_log_comes_from_the_pod_then_pipeline_log_uri_then_a_pollers_task_attempt() -> None:
    from types import SimpleNamespace

    from datapipeline.core import taskattempt

    class Core:
        def __init__(self, pods: list[Any]) -> None:
            self.pods = pods

        def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
            assert label_selector == "job-name=daily-1-load-2"
            return SimpleNamespace(items=self.pods)

        def read_namespaced_pod_log(self, name: str, namespace: str, **options: Any) -> str:
            return f"log of {name} {options}"

    kube = fake()
    kube.core = lambda: Core([SimpleNamespace(metadata=SimpleNamespace(name="pod-1"))])  # type: ignore[method-assign]
    [live] = day2.attempt_logs(kube, "team-a", "daily-1", "load", tail_lines=10)
    assert (live.source, live.text, live.job) == ("pod", "log of pod-1 {'tail_lines': 10}", "daily-1-load-2")
    kube.core = lambda: Core([])  # type: ignore[method-assign]
    assert day2.attempt_logs(kube, "team-a", "daily-1", "load")[0].source == "none"
    kube.objects[(taskattempt.PLURAL, "daily-1-load-2")] = {"status": {"logTail": "rows=3", "claimedBy": "p1"}}
    [polled] = day2.attempt_logs(kube, "team-a", "daily-1", "load")
    assert polled.source == "TaskAttempt" and polled.text.endswith("\nrows=3") and "poller p1" in polled.text
    with pytest.raises(day2.Day2Error, match='has no activity named "lod"'):
        day2.attempt_logs(kube, "team-a", "daily-1", "lod")
