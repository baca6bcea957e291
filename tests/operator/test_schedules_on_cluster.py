"""Mixed schedules on the real cluster (issue #11): the guide's daily-logs / weekly-report pipeline, backfilled
over two weeks against the S3 test server, and a cascade rerun that re-executes only what cascade-failed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.servers import S3Server
from kdp_harness import ROOT, Operator, pipeline_doc, shell

from datapipeline.core.schedule import format_time, parse_time, run_name

pytestmark = [pytest.mark.cluster, pytest.mark.servers]
EXAMPLE = ROOT / "examples" / "weblogs-daily-weekly.yaml"


def example_docs(minio: S3Server, bucket: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The example as written, pointed at the test server and at two weeks ending today."""
    docs = [d for d in yaml.safe_load_all(Path(EXAMPLE).read_text()) if d]
    secret, pipeline = docs
    secret["stringData"] = minio.env()
    spec = pipeline["spec"]
    spec["activated"] = True
    spec["aws"]["s3EndpointUrl"] = minio.pod_endpoint
    spec["parameters"][0]["default"] = bucket
    spec["defaults"]["retryDelay"] = "10 seconds"
    spec["successfulRunsHistoryLimit"] = 20  # keep every run to count them
    for schedule in (spec["schedule"], spec["schedules"]["weekly"]):
        schedule.update(startDateTime=format_time(start), endDateTime=format_time(end))
    return [secret, pipeline]


def activity(run: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(run["status"]["activities"][name])


def test_weekly_report_runs_only_after_the_seventh_day_of_its_week(operator: Operator, minio: S3Server) -> None:
    assert minio.pod_endpoint, "the cluster bridge is needed for pods to reach the S3 test server"
    bucket = f"weblogs-{operator.namespace}"[:63]
    minio.client().create_bucket(Bucket=bucket)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=14)
    for doc in example_docs(minio, bucket, start, end):
        operator.apply(doc)

    days = [start + timedelta(days=d) for d in range(14)]
    weeks = [start, start + timedelta(days=7)]
    names = [run_name("weblogs", d) for d in days] + [run_name("weblogs", w, "weekly") for w in weeks]
    waits: set[str] = set()

    def all_succeeded() -> bool:
        runs = {r["metadata"]["name"]: r for r in operator.runs("weblogs")}
        for week in weeks:  # seen while it waits: which days, in @waitingOn
            report = ((runs.get(run_name("weblogs", week, "weekly")) or {}).get("status") or {}).get(
                "activities", {}).get("weekly-traffic-report", {})
            if "archive-logs x" in str(report.get("waitingOn") or ""):
                waits.add(str(report["waitingOn"]))
        return sorted(runs) == sorted(names) and all(
            (r.get("status") or {}).get("phase") == "Succeeded" for r in runs.values())

    operator.wait(all_succeeded, timeout=540, every=2)
    assert waits, "no weekly run was ever seen waiting for its days"

    runs = {r["metadata"]["name"]: r for r in operator.runs("weblogs")}
    assert len(runs) == 16  # 14 daily runs and 2 weekly runs, each holding only its schedule's activities
    for index, week in enumerate(weeks):
        weekly = runs[run_name("weblogs", week, "weekly")]
        assert set(weekly["status"]["activities"]) == {"weekly-traffic-report"}
        mine = [runs[run_name("weblogs", d)] for d in days[7 * index: 7 * index + 7]]
        last_day_done = max(parse_time(activity(r, "archive-logs")["endTime"]) for r in mine)
        (job,) = operator.jobs(weekly["metadata"]["name"])
        created = parse_time(job["metadata"]["creationTimestamp"])
        assert created >= last_day_done - timedelta(seconds=1), (week, created, last_day_done)
        report = minio.client().get_object(Bucket=bucket, Key=f"reports/week-{week:%Y-%m-%d}/traffic.txt")
        lines = report["Body"].read().decode().split("\n")
        week_days = [f"{d:%Y-%m-%d} 3" for d in days[7 * index: 7 * index + 7]]
        assert [line for line in lines if line] == [*week_days, "total 21"]
    assert set(runs[names[0]]["status"]["activities"]) == {"archive-logs"}
    described = operator.cli("describe", run_name("weblogs", weeks[1], "weekly"))
    assert "schedule weekly" in described


def test_cascade_rerun_across_schedules_reexecutes_only_the_cascade_failed(operator: Operator) -> None:
    """A day fails; its coarse run's cascading activities are CASCADE_FAILED (no Job). Rerunning the day makes
    them wait again and run once each; no FINISHED activity runs again (Jobs counted)."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    start = end - timedelta(seconds=40)
    bad_start = format_time(start + timedelta(seconds=10))
    # Fails on its first attempt in the second fine interval only (AWS renders the time without a zone); the
    # rerun (attempt 2) passes.
    flaky = f'test "#{{@scheduledStartTime}}" != "{bad_start[:-1]}" || test "#{{@attemptCount}}" -gt 1'
    operator.apply(pipeline_doc("cascade", [
        shell("day", "exit 0", maximumRetries=0),
        shell("day-flaky", flaky, maximumRetries=0),
        shell("week", "exit 0", schedule="coarse", dependsOn=["day", "day-flaky"], failureAndRerunMode="cascade"),
        shell("after", "exit 0", schedule="coarse", dependsOn=["week"], failureAndRerunMode="cascade"),
    ], schedule={"period": "10 seconds", "startDateTime": format_time(start), "endDateTime": format_time(end)},
        schedules={"coarse": {"period": "40 seconds", "startDateTime": format_time(start),
                              "endDateTime": format_time(end)}}, maxActiveRuns=4))
    fine = [run_name("cascade", start + timedelta(seconds=10 * i)) for i in range(4)]
    coarse, bad = run_name("cascade", start, "coarse"), fine[1]
    operator.wait_phase(bad, ("Failed",), timeout=300)
    run = operator.wait_phase(coarse, ("Failed",), timeout=300)
    assert activity(run, "week")["status"] == "CASCADE_FAILED"
    assert activity(run, "week")["cascadeFailedOn"] == f"day-flaky@{bad_start}"
    assert activity(run, "after")["status"] == "CASCADE_FAILED"
    assert operator.jobs(coarse) == []
    for name in fine:
        if name != bad:
            operator.wait_phase(name, timeout=300)
    jobs_before = {name: len(operator.jobs(name)) for name in fine}
    assert jobs_before == dict.fromkeys(fine, 2)

    operator.cli("rerun", bad, "--failed-only")
    operator.wait(lambda: (operator.get("pipelinerun", bad).get("status") or {}).get("handledRerun"))
    operator.wait_phase(bad, timeout=300)
    run = operator.wait_phase(coarse, timeout=300)
    assert {n: a["status"] for n, a in run["status"]["activities"].items()} == {"week": "FINISHED",
                                                                                "after": "FINISHED"}
    assert any(e["reason"] == "CascadeRerun" for e in operator.events("PipelineRun", coarse))
    time.sleep(2)
    assert {name: len(operator.jobs(name)) for name in fine} == {**jobs_before, bad: 3}  # day-flaky once more
    assert len(operator.jobs(coarse)) == 2  # week and after, once each
