"""The console's view models and graph, from objects' dicts: no cluster, no browser."""

from __future__ import annotations

import shutil

import pytest
from console_objects import SPEC, pipeline, run

from datapipeline.console import views
from datapipeline.console.cache import Change
from datapipeline.console.graph import (
    FAILURE_COLOUR,
    NO_STATE_COLOUR,
    STATE_COLOURS,
    GraphEdge,
    pipeline_graph,
    render_svg,
    to_dot,
)
from datapipeline.core.definition import parse_pipeline


# ---------------------------------------------------------------------------------------------- pipelines
def test_a_pipeline_row_says_schedule_health_last_and_next_run() -> None:
    row = views.pipeline_row(pipeline(health="ERROR", schedule="every 1 day", lastRun={"name": "r1", "status": "Failed"},
                                      nextRunTime="2026-12-01T00:00:00Z", activeRuns=2))
    assert (row.name, row.namespace, row.schedule, row.health) == ("daily", "team-a", "every 1 day", "ERROR")
    assert (row.last_run, row.last_run_phase, row.next_run, row.active_runs) == ("r1", "Failed",
                                                                                 "2026-12-01T00:00:00Z", 2)
    assert row.activated and not row.paused and row.problem is None


def test_a_new_pipeline_has_its_schedule_in_words_before_the_operator_writes_it() -> None:
    assert views.pipeline_row(pipeline()).schedule == "every 1 day"
    assert views.pipeline_row(pipeline()).health == "UNKNOWN"
    assert views.schedule_in_words({"schedule": {"cron": "0 3 * * *", "timeZone": "Europe/Berlin"}}) == \
        "cron 0 3 * * * Europe/Berlin"
    assert views.schedule_in_words({"scheduleType": "ondemand"}) == "on demand"
    assert views.schedule_in_words({"schedule": {"period": "1 hour"}, "schedules": {"weekly": {}}}) == \
        "every 1 hour (+1 more)"


def test_an_invalid_pipeline_says_why() -> None:
    bad = pipeline(conditions=[{"type": "Valid", "status": "False", "message": "spec.activities[0]: no name"}])
    assert views.pipeline_row(bad).problem == "spec.activities[0]: no name"


def test_pipelines_are_filtered_by_namespace_and_health_and_sorted() -> None:
    items = [pipeline("b", "team-b", health="HEALTHY"), pipeline("a", "team-b", health="ERROR"),
             pipeline("z", "team-a")]
    assert [(r.namespace, r.name) for r in views.pipeline_rows(items)] == [("team-a", "z"), ("team-b", "a"),
                                                                           ("team-b", "b")]
    assert [r.name for r in views.pipeline_rows(items, namespace="team-b")] == ["a", "b"]
    assert [r.name for r in views.pipeline_rows(items, health="ERROR")] == ["a"]
    assert [r.name for r in views.pipeline_rows(items, health="UNKNOWN")] == ["z"]


# ---------------------------------------------------------------------------------------------- runs
def test_runs_are_paged_newest_first_and_filtered_by_status() -> None:
    runs = [run(f"r{i:02d}", "Failed" if i % 3 == 0 else "Succeeded", f"2026-11-{i:02d}T00:00:00Z")
            for i in range(1, 31)]
    first = views.runs_page(runs, per_page=10)
    assert (first.page, first.pages, first.total) == (1, 3, 30)
    assert [r.name for r in first.rows][:3] == ["r30", "r29", "r28"]
    last = views.runs_page(runs, page=99, per_page=10)
    assert last.page == 3 and last.rows[-1].name == "r01"
    failed = views.runs_page(runs, status="failed", per_page=10)
    assert failed.total == 10 and {r.phase for r in failed.rows} == {"Failed"}
    assert views.runs_page([], page=5).pages == 1
    assert not first.mixed
    weekly = run("w1")
    weekly["spec"]["schedule"] = "weekly"
    assert views.runs_page([*runs, weekly]).mixed  # the table gets a schedule column
    from datetime import UTC, datetime

    november = views.runs_page(runs, since=datetime(2026, 11, 10, tzinfo=UTC), until=datetime(2026, 11, 13, tzinfo=UTC))
    assert [r.name for r in november.rows] == ["r12", "r11", "r10"]


def test_the_newest_run_is_the_one_a_pipeline_page_shows() -> None:
    runs = [run("old", start="2026-11-01T00:00:00Z"), run("new", start="2026-11-02T00:00:00Z")]
    newest = views.newest_run(runs)
    assert newest is not None and newest["metadata"]["name"] == "new"
    assert views.newest_run([]) is None


def test_a_run_view_lists_activities_in_dependency_order_with_their_attempts() -> None:
    view = views.run_view(run("r1"), parse_pipeline(SPEC))
    assert [a.name for a in view.activities] == ["extract", "load", "report"]
    load = view.activities[1]
    assert load.failed and load.detail == "boom: warehouse locked" and load.exit_code == 1
    assert [(t.number, t.status, t.error) for t in load.attempts] == [(1, "FAILED", "first boom"),
                                                                      (2, "FAILED", "boom: warehouse locked")]
    assert load.attempts[0].start == "2026-11-30T01:01:00Z"
    extract = view.activities[0]
    assert [(t.number, t.status) for t in extract.attempts] == [(1, "FINISHED")]  # implied by the summary
    assert view.activities[2].detail == "cascade-failed on load"
    assert view.actions == ("rerun-failed", "rerun")


def test_the_actions_a_run_offers_follow_its_phase() -> None:
    assert views.run_actions("Running", ["RUNNING"]) == ("cancel",)
    assert views.run_actions("Running", ["FAILED", "RUNNING"]) == ("rerun-failed", "cancel")
    assert views.run_actions("Succeeded", ["FINISHED"]) == ("rerun",)
    assert views.run_actions("Cancelled", ["CANCELED"]) == ("rerun",)


def test_a_run_the_operator_has_not_touched_is_pending() -> None:
    fresh = run("r0", activities={})
    fresh["status"] = {}
    view = views.run_view(fresh)
    assert view.phase == "Pending" and view.activities == () and view.actions == ("cancel",)


# ---------------------------------------------------------------------------------------------- graph
def test_the_graph_holds_every_object_and_its_edges() -> None:
    graph = pipeline_graph(parse_pipeline(SPEC))
    assert [(n.kind, n.name) for n in graph.nodes] == [
        ("activity", "extract"), ("activity", "load"), ("activity", "report"), ("dataNode", "orders"),
        ("precondition", "orders-ready"), ("precondition", "quiet")]
    assert set(graph.edges) == {
        GraphEdge("activity-extract", "activity-load", "dependsOn"),
        GraphEdge("activity-load", "activity-report", "dependsOn"),
        GraphEdge("dataNode-orders", "activity-extract", "input"),
        GraphEdge("precondition-quiet", "activity-load", "precondition"),
        GraphEdge("precondition-orders-ready", "dataNode-orders", "precondition")}
    assert {n.colour for n in graph.nodes} == {NO_STATE_COLOUR}


def test_nodes_take_their_state_in_the_run() -> None:
    graph = pipeline_graph(parse_pipeline(SPEC), run("r1")["status"])
    states = {n.element_id: (n.state, n.colour) for n in graph.nodes}
    assert states["activity-load"] == ("FAILED", FAILURE_COLOUR)
    assert states["activity-extract"] == ("FINISHED", STATE_COLOURS["FINISHED"])
    assert states["activity-report"][0] == "CASCADE_FAILED"
    assert states["precondition-orders-ready"] == ("MET", STATE_COLOURS["MET"])
    assert states["dataNode-orders"] == (None, NO_STATE_COLOUR)  # nothing happened to it in the run's status


def test_a_precondition_shows_its_most_telling_check() -> None:
    status = {"activities": {"a": {"checks": {"quiet": {"status": "MET"}}},
                             "b": {"checks": {"orders/quiet": {"status": "FAILED"}}}}}
    states = {n.name: n.state for n in pipeline_graph(parse_pipeline(SPEC), status).nodes}
    assert states["quiet"] == "FAILED"


def test_dot_gives_each_node_its_id_colour_and_state_class() -> None:
    dot = to_dot(pipeline_graph(parse_pipeline(SPEC), run("r1")["status"]))
    assert dot.startswith("digraph pipeline {") and "rankdir=LR" in dot
    assert (f'"activity-load" [id="activity-load", class="activity state-FAILED", shape=box, '
            f'label="load\\nShellCommandActivity\\nFAILED", fillcolor="{FAILURE_COLOUR}"') in dot
    assert '"dataNode-orders" -> "activity-extract" [class="input", style="dashed"];' in dot


def test_dot_quotes_what_would_end_a_string() -> None:
    spec = {**SPEC, "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "x"}],
            "dataNodes": [], "preconditions": []}
    graph = pipeline_graph(parse_pipeline(spec))
    weird = graph.nodes[0].__class__("activity", 'say "hi"\\', "ShellCommandActivity", None)
    dot = to_dot(graph.__class__((weird,), ()))
    assert 'label="say \\"hi\\"\\\\\\nShellCommandActivity"' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (tests/setup-deps.sh installs it)")
def test_graphviz_lays_the_graph_out_as_svg_to_inline() -> None:
    svg = render_svg(to_dot(pipeline_graph(parse_pipeline(SPEC), run("r1")["status"])))
    assert svg.startswith("<svg") and "<?xml" not in svg and "DOCTYPE" not in svg
    assert 'id="activity&#45;load"' in svg and f'fill="{FAILURE_COLOUR}"' in svg


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (tests/setup-deps.sh installs it)")
def test_markup_in_a_name_stays_text_in_the_inlined_svg() -> None:
    """The parser refuses such names; the SVG is inlined in the page all the same, so Graphviz's escaping is
    the second wall."""
    from datapipeline.console.graph import Graph, GraphNode

    hostile = GraphNode("activity", '<img src=x onerror=alert(1)>"&', "Shell<b>", None)
    svg = render_svg(to_dot(Graph((hostile,), ())))
    assert "<img" not in svg and "<b>" not in svg and "&lt;img src=x onerror=alert(1)&gt;" in svg


# ---------------------------------------------------------------------------------------------- live feed
def test_a_change_reaches_only_the_pages_that_show_it() -> None:
    mine = Change("pipelineruns", "team-a", "r1", "daily")
    assert mine.concerns(None, None, None)
    assert mine.concerns("team-a", "daily", None) and not mine.concerns("team-a", "weekly", None)
    assert mine.concerns("team-a", "daily", "r1") and not mine.concerns("team-a", "daily", "r2")
    assert not mine.concerns("team-b", None, None)
    assert Change("pipelines", "team-a", "daily", "daily").concerns("team-a", "daily", "r1")  # the run's pipeline
    assert Change("pipelines", None, None, None).concerns("team-b", "x", "y")  # a new list: everything


# ---------------------------------------------------------------------------------------------- timeline
def test_the_timeline_shows_waiting_attempts_and_the_retry_delay_between_them() -> None:
    from datetime import UTC, datetime

    from datapipeline.console.timeline import chart, run_segments

    failed = run("r1")
    failed["status"]["startTime"] = "2026-11-30T01:00:00Z"
    rows = dict(run_segments(failed, ["extract", "load", "report"], datetime(2026, 11, 30, 2, tzinfo=UTC)))
    load = [(s.kind, s.start.strftime("%H:%M"), s.end.strftime("%H:%M"), s.attempt) for s in rows["load"]]
    assert load == [("waiting", "01:00", "01:01", None), ("failed", "01:01", "01:02", 1),
                    ("retry-delay", "01:02", "01:04", None), ("failed", "01:04", "01:05", 2)]
    assert [(s.kind, s.attempt) for s in rows["extract"]] == [("finished", 1)]
    assert rows["report"] == []  # cascade-failed: it never ran
    drawn = chart(list(rows.items()), width=450)
    assert drawn is not None and (drawn.start, drawn.end) == ("2026-11-30T01:00:00Z", "2026-11-30T01:05:00Z")
    assert drawn.height == 72 and [label for label, _ in drawn.labels] == ["extract", "load", "report"]
    last = drawn.bars[-1]
    assert (last.kind, last.x + last.width, last.y) == ("failed", 450.0, 28)
    assert last.title == "attempt 2 failed: 2026-11-30T01:04:00Z .. 2026-11-30T01:05:00Z (60s)"


def test_a_running_attempt_reaches_now_and_a_pending_retry_its_time() -> None:
    from datetime import UTC, datetime

    from datapipeline.console.timeline import activity_segments, chart

    now = datetime(2026, 11, 30, 1, 10, tzinfo=UTC)
    running = {"status": "RUNNING", "attempt": 1, "startTime": "2026-11-30T01:00:00Z"}
    assert [(s.kind, s.end) for s in activity_segments(running, None, now)] == [("running", now)]
    waiting = {"status": "WAITING_FOR_RUNNER", "attempt": 2, "retryAt": "2026-11-30T01:20:00Z",
               "attempts": [{"n": 1, "status": "FAILED", "start": "2026-11-30T01:00:00Z",
                             "end": "2026-11-30T01:01:00Z"}]}
    kinds = [(s.kind, s.end.strftime("%H:%M")) for s in activity_segments(waiting, None, now)]
    assert kinds == [("failed", "01:01"), ("retry-delay", "01:20")]
    assert chart([("a", [])]) is None


def test_the_gap_before_a_rerun_is_not_a_retry_delay() -> None:
    from datetime import UTC, datetime

    from datapipeline.console.timeline import activity_segments

    rerun = {"status": "FINISHED", "attempt": 3, "roundStart": 2,
             "attempts": [{"n": 1, "status": "FAILED", "start": "2026-11-30T01:00:00Z", "end": "2026-11-30T01:01:00Z"},
                          {"n": 2, "status": "FAILED", "start": "2026-11-30T01:02:00Z", "end": "2026-11-30T01:03:00Z"},
                          {"n": 3, "status": "FINISHED", "start": "2026-11-30T02:00:00Z",
                           "end": "2026-11-30T02:01:00Z"}]}
    kinds = [s.kind for s in activity_segments(rerun, None, datetime(2026, 11, 30, 3, tzinfo=UTC))]
    assert kinds == ["failed", "retry-delay", "failed", "until-rerun", "finished"]


def test_the_cache_applies_watch_events_and_tells_its_subscribers() -> None:
    import asyncio

    from datapipeline.console.cache import WatchCache

    async def scenario() -> list[Change]:
        cache = WatchCache("team-a", custom_api=lambda: None)
        queue = cache.subscribe()
        cache.replace_all("pipelineruns", [run("r1"), run("w1", pipeline_name="weekly")])
        cache.apply("pipelineruns", "MODIFIED", run("r1", "Succeeded"))
        cache.apply("pipelineruns", "DELETED", run("w1", pipeline_name="weekly"))
        assert [r["metadata"]["name"] for r in cache.runs("team-a", "daily")] == ["r1"]
        assert (cache.run("team-a", "r1") or {})["status"]["phase"] == "Succeeded"
        assert cache.run("team-a", "w1") is None and cache.runs("team-b") == []
        await asyncio.sleep(0)  # the changes arrive through the loop, as from the watch threads
        seen = [queue.get_nowait() for _ in range(queue.qsize())]
        cache.unsubscribe(queue)
        cache.apply("pipelines", "ADDED", pipeline())
        await asyncio.sleep(0)
        assert queue.empty() and [p["metadata"]["name"] for p in cache.pipelines()] == ["daily"]
        return seen

    assert asyncio.run(scenario()) == [Change("pipelineruns", None, None, None),
                                       Change("pipelineruns", "team-a", "r1", "daily"),
                                       Change("pipelineruns", "team-a", "w1", "weekly")]


def test_a_cache_of_several_namespaces_watches_each_and_relists_one_without_losing_the_others() -> None:
    from datapipeline.console.cache import WatchCache

    cache = WatchCache(("team-a", "team-b", "team-a"), custom_api=lambda: None)
    assert cache.sources == (("pipelines", "team-a"), ("pipelines", "team-b"),
                             ("pipelineruns", "team-a"), ("pipelineruns", "team-b"))
    other = run("b1")
    other["metadata"]["namespace"] = "team-b"
    cache.replace_all("pipelineruns", [run("r1"), run("r2")], "team-a")
    cache.replace_all("pipelineruns", [other], "team-b")
    cache.replace_all("pipelineruns", [run("r3")], "team-a")  # a new list after a 410: team-a's runs only
    assert sorted(r["metadata"]["name"] for r in cache.runs()) == ["b1", "r3"]
    assert WatchCache(None, custom_api=lambda: None).sources == (("pipelines", None), ("pipelineruns", None))
    assert WatchCache((), custom_api=lambda: None).watched is None  # no --namespace: all of them


def test_console_open_opens_the_browser_once_the_server_serves(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import threading
    import time
    import webbrowser

    from datapipeline.cli.console import _open_when_serving

    opened: list[str] = []
    done = threading.Event()
    monkeypatch.setattr(webbrowser, "open", lambda url: bool(opened.append(url) or done.set()))
    server = type("Server", (), {"started": False})()
    _open_when_serving(server, "http://127.0.0.1:8089/")
    assert not done.wait(0.3) and opened == []  # not before uvicorn serves
    server.started = True
    assert done.wait(5) and opened == ["http://127.0.0.1:8089/"]

    monkeypatch.setattr(webbrowser, "open", lambda url: False)  # a machine with no browser
    _open_when_serving(server, "http://127.0.0.1:8089/")
    said = ""
    deadline = time.monotonic() + 5
    while "yourself" not in said and time.monotonic() < deadline:
        time.sleep(0.05)
        said += capsys.readouterr().err
    assert "no web browser found here: open http://127.0.0.1:8089/ yourself" in said
