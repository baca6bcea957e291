"""Day-2 commands of the ``datapipeline`` CLI: list, runs, describe, run, backfill, cancel, rerun,
mark-finished, logs, activate, deactivate, pause, resume. ``add_subparsers`` registers them on argparse.

They only touch the API like kubectl would: runs are created with the same deterministic names the
operator uses, and requests (cancel, rerun, markFinished, activated, paused...) are patches of a spec.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from datapipeline.controller.frozen import FROZEN_SPEC
from datapipeline.core.model import DEFAULT_SCHEDULE, Schedule
from datapipeline.core.schedule import (
    ScheduleError,
    backfill_intervals,
    effective_start,
    format_time,
    interval_at,
    parse_time,
    run_name,
)

LOG_KEY = "{uri}/{pipeline}/{run}/{activity}/attempt-{attempt}.log"  # where attempt logs are kept in S3


def _kube() -> Any:
    from datapipeline.k8s import api as kube

    return kube


def _ns(args: argparse.Namespace) -> str:
    """-n, else the kube context's namespace (as kubectl does), else default."""
    return str(getattr(args, "namespace", None) or _kube().context_namespace())


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def _age(stamp: str | None) -> str:
    if not stamp:
        return "-"
    seconds = int((datetime.now(UTC) - parse_time(stamp)).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _time_option(value: str, option: str) -> datetime:
    """An RFC 3339 option value (--at, --from, --to); a clear message naming the option otherwise."""
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise SystemExit(f'error: {option}: "{value[:60]}" is not a date-time; write it like '
                         "2026-01-31T00:00:00Z") from None


def _parse_params(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --param {item!r}: write it as NAME=VALUE")
        out[key] = value
    return out


def _checked_params(pipeline: Mapping[str, Any], items: list[str] | None) -> dict[str, str | list[str]]:
    """--param values, checked as the operator will check them (type, allowedValues, pattern, overridable)."""
    from datapipeline.core.definition import parse_pipeline
    from datapipeline.core.problems import DefinitionError
    from datapipeline.core.values import run_values

    raw = _parse_params(items)
    if not raw:
        return {}
    from datapipeline.cli.validate import cli_limits

    try:
        definition = parse_pipeline(pipeline.get("spec") or {}, limits=cli_limits())
    except DefinitionError as error:
        raise SystemExit(f"Pipeline {pipeline['metadata']['name']} is invalid: {error.problems[0]}") from None
    values, problems = run_values(definition, raw, path="--param")
    if problems:
        raise SystemExit("\n".join(str(p).replace("--param.", "--param ", 1) for p in problems))
    return values


def _watch(args: argparse.Namespace, render: Callable[[], str], done: Callable[[], bool]) -> int:
    if not getattr(args, "watch", False):
        print(render())
        return 0
    try:
        while True:
            text = render()
            sys.stdout.write("\x1b[2J\x1b[H" + text + "\n")
            sys.stdout.flush()
            if done():
                return 0
            time.sleep(2)
    except KeyboardInterrupt:
        return 130


# ---------------------------------------------------------------------------- commands
def cmd_list(args: argparse.Namespace) -> int:
    items = _kube().custom().list_namespaced_custom_object("datapipeline.io", "v1alpha1", _ns(args),
                                                           "pipelines").get("items") or []
    rows = []
    for p in items:
        st = p.get("status") or {}
        valid = next((c.get("status") for c in st.get("conditions") or () if c.get("type") == "Valid"), "-")
        last = st.get("lastRun") or {}
        rows.append([p["metadata"]["name"], str(bool((p.get("spec") or {}).get("activated"))), str(valid),
                     st.get("health", "-"), f"{last.get('name', '-')} ({last.get('status', '-')})",
                     st.get("nextRunTime") or "-", str(st.get("activeRuns", 0))])
    print(_table(rows, ["NAME", "ACTIVATED", "VALID", "HEALTH", "LAST RUN", "NEXT RUN", "ACTIVE"]))
    return 0


def _runs_table(namespace: str, pipeline: str, status: str | None) -> str:
    runs = _kube().list_runs(namespace, pipeline)
    runs.sort(key=lambda r: (r.get("spec") or {}).get("scheduledStartTime") or "")
    rows = []
    mixed = any((r.get("spec") or {}).get("schedule") not in (None, DEFAULT_SCHEDULE) for r in runs)
    for r in runs:
        st = r.get("status") or {}
        phase = st.get("phase") or "Pending"
        if status and phase.lower() != status.lower():
            continue
        row = [r["metadata"]["name"], (r.get("spec") or {}).get("scheduledStartTime", "-"), phase,
               st.get("progress", "-"), st.get("startTime", "-"), st.get("completionTime") or "-",
               (r.get("spec") or {}).get("trigger", "-")]
        rows.append(row + ([(r.get("spec") or {}).get("schedule") or DEFAULT_SCHEDULE] if mixed else []))
    return _table(rows, ["NAME", "SCHEDULED START", "STATUS", "PROGRESS", "STARTED", "ENDED", "TRIGGER",
                         *(["SCHEDULE"] if mixed else [])])


def cmd_runs(args: argparse.Namespace) -> int:
    return _watch(args, lambda: _runs_table(_ns(args), args.pipeline, args.status), lambda: False)


def describe_run(namespace: str, name: str) -> tuple[str, bool]:
    run = _kube().get_object(namespace, "pipelineruns", name)
    if run is None:
        raise SystemExit(f"error: no PipelineRun {name} in {namespace}")
    spec, st = run.get("spec") or {}, run.get("status") or {}
    lines = [f"Run:        {name}", f"Pipeline:   {(spec.get('pipelineRef') or {}).get('name')}",
             f"Scheduled:  {spec.get('scheduledStartTime', '-')} .. {spec.get('scheduledEndTime', '-')}"
             + (f"   schedule {spec['schedule']}" if spec.get("schedule") not in (None, DEFAULT_SCHEDULE) else ""),
             f"Phase:      {st.get('phase', 'Pending')}   progress {st.get('progress', '-')}",
             f"Started:    {st.get('startTime', '-')}   completed {st.get('completionTime') or '-'}", ""]
    rows = []
    for activity, a in (st.get("activities") or {}).items():
        result = a.get("result") or {}
        detail = a.get("errorMessage") or a.get("waitingOn") or (f"rows={result.get('rows')}" if result else "")
        rows.append([activity, a.get("status", "-"), str(a.get("attempt", 0)), a.get("startTime", "-"),
                     a.get("endTime", "-"), str(a.get("exitCode", "-")), str(detail)[:80]])
    lines.append(_table(rows, ["ACTIVITY", "STATUS", "ATTEMPT", "STARTED", "ENDED", "EXIT", "DETAIL"]))
    for activity, a in (st.get("activities") or {}).items():  # a wait for other runs is worth reading whole
        if len(str(a.get("waitingOn") or "")) > 80 and not a.get("errorMessage"):
            lines.append(f"{activity} is waiting on: {a['waitingOn']}")
    return "\n".join(lines), st.get("phase") in ("Succeeded", "Failed", "Cancelled")


def cmd_describe(args: argparse.Namespace) -> int:
    if args.output == "json":
        run = _kube().get_object(_ns(args), "pipelineruns", args.run)
        if run is None:
            raise SystemExit(f"error: no PipelineRun {args.run} in {_ns(args)}")
        print(json.dumps(run, indent=2))
        return 0
    return _watch(args, lambda: describe_run(_ns(args), args.run)[0], lambda: describe_run(_ns(args), args.run)[1])


def _pipeline(namespace: str, name: str) -> dict[str, Any]:
    pipeline = _kube().get_object(namespace, "pipelines", name)
    if pipeline is None:
        raise SystemExit(f"error: no Pipeline {name} in {namespace}")
    return dict(pipeline)


def cmd_run(args: argparse.Namespace) -> int:
    from datapipeline.controller.pipelines import run_manifest

    at = _time_option(args.at, "--at") if args.at else datetime.now(UTC).replace(microsecond=0)
    _parse_params(args.param)  # NAME=VALUE, before any cluster call
    namespace = _ns(args)
    pipeline = _pipeline(namespace, args.pipeline)
    values = _checked_params(pipeline, args.param)
    schedule = str(args.schedule)
    known = list((pipeline.get("spec") or {}).get("schedules") or {})
    if schedule != DEFAULT_SCHEDULE and schedule not in known:
        raise SystemExit(f'error: --schedule: the Pipeline has no schedule named "{schedule}" '
                         f"(its schedules: {', '.join([DEFAULT_SCHEDULE, *known])})")
    kind = "manual" if schedule == DEFAULT_SCHEDULE else f"{schedule}-manual"
    name = args.name or run_name(args.pipeline, at, kind)
    body = run_manifest(args.pipeline, namespace, at, None, "Manual", name=name, values=values, owner=pipeline,
                        schedule=schedule)
    if not _kube().create_object(namespace, "pipelineruns", body):
        raise SystemExit(f"error: PipelineRun {name} already exists")
    print(f"pipelinerun/{name} created")
    if args.watch:
        return _watch(args, lambda: describe_run(namespace, name)[0], lambda: describe_run(namespace, name)[1])
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from datapipeline.cli.validate import cli_limits
    from datapipeline.core.definition import parse_pipeline

    range_from, range_to = _time_option(args.from_, "--from"), _time_option(args.to, "--to")
    _parse_params(args.param)  # NAME=VALUE, before any cluster call
    namespace = _ns(args)
    pipeline = _pipeline(namespace, args.pipeline)
    definition = parse_pipeline(pipeline.get("spec") or {}, limits=cli_limits())
    if definition.schedule is None:
        raise SystemExit("error: an ondemand pipeline has no intervals to backfill; use `datapipeline run`")
    names = definition.schedule_names
    if args.schedule is not None:
        if args.schedule not in names:
            raise SystemExit(f'error: --schedule: no activity runs on a schedule named "{args.schedule}" '
                             f"(schedules with activities: {', '.join(names)})")
        names = [args.schedule]
    activated = (pipeline.get("status") or {}).get("activatedAt")
    values = _checked_params(pipeline, args.param)
    for name in names:  # fine schedules first: a coarse run waits for the fine runs created beside it
        _backfill_schedule(args, namespace, pipeline, definition.schedules[name], name, activated, values,
                           range_from, range_to)
    return 0


def _backfill_schedule(args: argparse.Namespace, namespace: str, pipeline: Mapping[str, Any], schedule: Schedule,
                       name: str, activated: str | None, values: Mapping[str, Any], range_from: datetime,
                       range_to: datetime) -> None:
    from datapipeline.controller.pipelines import run_manifest

    start = effective_start(schedule, parse_time(activated) if activated else range_from)
    assert start is not None
    try:
        intervals = backfill_intervals(schedule, start, range_from, range_to)
    except ScheduleError as error:
        where = "" if name == DEFAULT_SCHEDULE else f"schedule {name}: "
        raise SystemExit(f"error: {where}{error}") from error
    for interval in intervals:
        body = run_manifest(args.pipeline, namespace, interval.start, interval.end, "Backfill",
                            values=values, owner=pipeline, schedule=name)
        if args.dry_run:
            print(f"would create {body['metadata']['name']} for {format_time(interval.start)}")
            continue
        created = _kube().create_object(namespace, "pipelineruns", body)
        print(f"pipelinerun/{body['metadata']['name']} {'created' if created else 'exists'}")


def _patch_run(args: argparse.Namespace, patch: Mapping[str, Any], done: str) -> int:
    _kube().patch_spec(_ns(args), "pipelineruns", args.run, patch)
    print(f"pipelinerun/{args.run} {done}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    return _patch_run(args, {"spec": {"cancel": True}}, "cancel requested")


def cmd_rerun(args: argparse.Namespace) -> int:
    rerun: dict[str, Any] = {"id": uuid.uuid4().hex[:8], "failedOnly": bool(args.failed_only),
                             "downstream": bool(args.downstream), "activities": list(args.activity or [])}
    return _patch_run(args, {"spec": {"cancel": False, "rerun": rerun}}, f"rerun {rerun['id']} requested")


def cmd_mark_finished(args: argparse.Namespace) -> int:
    run = _kube().get_object(_ns(args), "pipelineruns", args.run) or {}
    names = list(dict.fromkeys([*((run.get("spec") or {}).get("markFinished") or []), *args.activity]))
    return _patch_run(args, {"spec": {"markFinished": names}}, "mark-finished requested")


def lifecycle_patch(verb: str, start_timestamp: str | None = None, cancel_active: bool = True) -> dict[str, Any]:
    """The Pipeline spec patch of activate, deactivate, pause and resume (the same fields GitOps writes)."""
    if verb == "activate":
        spec: dict[str, Any] = {"activated": True}
        if start_timestamp:
            spec["activateFrom"] = format_time(_time_option(start_timestamp, "--start-timestamp"))
        return {"spec": spec}
    if verb == "deactivate":
        return {"spec": {"activated": False, "cancelActiveOnDeactivate": cancel_active}}
    if verb in ("pause", "resume"):
        return {"spec": {"paused": verb == "pause"}}
    raise ValueError(verb)


LIFECYCLE_DONE = {"activate": "activated", "deactivate": "deactivated", "pause": "paused", "resume": "resumed"}


def _lifecycle(args: argparse.Namespace, verb: str) -> int:
    patch = lifecycle_patch(verb, getattr(args, "start_timestamp", None), getattr(args, "cancel_active", True))
    _kube().patch_spec(_ns(args), "pipelines", args.pipeline, patch)
    done = LIFECYCLE_DONE[verb]
    if verb == "deactivate":
        done += "; its active runs are cancelled" if args.cancel_active else "; its active runs may finish"
    if patch["spec"].get("activateFrom"):
        done += f" from {patch['spec']['activateFrom']} (earlier intervals are SKIPPED)"
    print(f"pipeline/{args.pipeline} {done}")
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    return _lifecycle(args, "activate")


def cmd_deactivate(args: argparse.Namespace) -> int:
    return _lifecycle(args, "deactivate")


def cmd_pause(args: argparse.Namespace) -> int:
    return _lifecycle(args, "pause")


def cmd_resume(args: argparse.Namespace) -> int:
    return _lifecycle(args, "resume")


def cmd_logs(args: argparse.Namespace) -> int:
    kube = _kube()
    namespace = _ns(args)
    run = kube.get_object(namespace, "pipelineruns", args.run)
    if run is None:
        raise SystemExit(f"error: no PipelineRun {args.run}")
    activities = (run.get("status") or {}).get("activities") or {}
    names = [args.activity] if args.activity else list(activities)
    for activity in names:
        attempt = args.attempt or (activities.get(activity) or {}).get("attempt") or 1
        from datapipeline.core.runstate import attempt_job_name

        job = attempt_job_name(args.run, activity, int(attempt))
        print(f"==> {activity} attempt {attempt} ({job})")
        pods = kube.core().list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        if pods:
            print(kube.core().read_namespaced_pod_log(pods[-1].metadata.name, namespace))
            continue
        text = _s3_log(namespace, run, activity, int(attempt))
        if text is None:
            text = _attempt_log_tail(kube, namespace, job)
        print(text if text is not None else "(no pod and no stored log)")
    return 0


def _attempt_log_tail(kube: Any, namespace: str, name: str) -> str | None:
    """An attempt a poller ran (worker group in mode poll): the end of its output, kept in the TaskAttempt."""
    from datapipeline.core import taskattempt

    found = kube.get_object(namespace, taskattempt.PLURAL, name)
    status = (found or {}).get("status") or {}
    if found is None or not status.get("logTail"):
        return None
    return (f"(run by poller {status.get('claimedBy')}; the last {taskattempt.LOG_TAIL_BYTES} bytes of its "
            f"output; set pipelineLogUri to keep whole logs)\n{status['logTail']}")


def log_key(uri: str, pipeline: str, run: str, activity: str, attempt: int) -> str:
    return LOG_KEY.format(uri=uri.rstrip("/"), pipeline=pipeline, run=run, activity=activity, attempt=attempt)


def _s3_log(namespace: str, run: Mapping[str, Any], activity: str, attempt: int) -> str | None:
    spec = (run.get("status") or {}).get(FROZEN_SPEC) or {}
    uri = spec.get("pipelineLogUri")
    if not uri:
        return None
    import boto3

    aws = spec.get("aws") or {}
    url = log_key(uri, (run.get("spec") or {}).get("pipelineRef", {}).get("name", ""), run["metadata"]["name"],
                  activity, attempt)
    bucket, _, key = url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=aws.get("s3EndpointUrl"), region_name=aws.get("region", "us-east-1"))
    try:
        return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(errors="replace"))
    except Exception as error:  # the log may never have been uploaded
        return f"(no stored log at {url}: {error})"


# ---------------------------------------------------------------------------- registration
def add_subparsers(subparsers: Any) -> None:
    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("-n", "--namespace", default=None,
                            help="namespace (default: the kube context's, else default)")
        parser.set_defaults(func=func)
        return parser

    add("list", cmd_list, "list pipelines with health, last and next run")
    p = add("runs", cmd_runs, "list the runs of a pipeline, like aws datapipeline list-runs")
    p.add_argument("pipeline")
    p.add_argument("--status", help="only runs in this phase (Pending, Running, Paused, Succeeded, Failed, Cancelled)")
    p.add_argument("-w", "--watch", action="store_true")
    p = add("describe", cmd_describe, "show a run with every activity's state")
    p.add_argument("run")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("-w", "--watch", action="store_true")
    p = add("run", cmd_run, "start a run of a pipeline now (or for --at TIME)")
    p.add_argument("pipeline")
    p.add_argument("--param", action="append", help="NAME=VALUE parameter override (repeatable)")
    p.add_argument("--at", help="scheduled start time, RFC 3339 (default: now)")
    p.add_argument("--name", help="run name (default: <pipeline>-manual-<time>)")
    p.add_argument("--schedule", default=DEFAULT_SCHEDULE,
                   help="run the activities of this schedule (a name from spec.schedules; default: spec.schedule's)")
    p.add_argument("-w", "--watch", action="store_true")
    p = add("backfill", cmd_backfill, "create runs for every interval between --from and --to")
    p.add_argument("pipeline")
    p.add_argument("--from", dest="from_", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--schedule", help="only this schedule's runs (default: every schedule that has activities)")
    p.add_argument("--param", action="append")
    p.add_argument("--dry-run", action="store_true")
    p = add("cancel", cmd_cancel, "cancel a run: stop its Jobs, mark the rest CANCELED")
    p.add_argument("run")
    p = add("rerun", cmd_rerun, "rerun a run, only its failed activities, or named ones")
    p.add_argument("run")
    p.add_argument("--failed-only", action="store_true")
    p.add_argument("--activity", action="append")
    p.add_argument("--downstream", action="store_true", help="also rerun what depends on --activity")
    p = add("mark-finished", cmd_mark_finished, "mark activities FINISHED (AWS MARK_FINISHED)")
    p.add_argument("run")
    p.add_argument("activity", nargs="+")
    p = add("logs", cmd_logs, "show attempt logs: from the pod while it exists, then from pipelineLogUri")
    p.add_argument("run")
    p.add_argument("--activity")
    p.add_argument("--attempt", type=int)
    p = add("activate", cmd_activate, "activate a pipeline (sets spec.activated)")
    p.add_argument("pipeline")
    p.add_argument("--start-timestamp", help="run intervals from this time on, RFC 3339; earlier ones are "
                   "SKIPPED (sets spec.activateFrom)")
    p = add("deactivate", cmd_deactivate, "deactivate a pipeline: no new runs; its active runs are cancelled")
    p.add_argument("pipeline")
    p.add_argument("--cancel-active", action=argparse.BooleanOptionalAction, default=True,
                   help="cancel its active runs (default), or with --no-cancel-active let them finish")
    p = add("pause", cmd_pause, "pause a pipeline: no new runs, and its active runs start nothing new")
    p.add_argument("pipeline")
    p = add("resume", cmd_resume, "resume a paused pipeline")
    p.add_argument("pipeline")


__all__ = ["add_subparsers", "cmd_activate", "cmd_backfill", "cmd_cancel", "cmd_deactivate", "cmd_describe",
           "cmd_list", "cmd_logs", "cmd_mark_finished", "cmd_pause", "cmd_rerun", "cmd_resume", "cmd_run", "cmd_runs",
           "interval_at", "lifecycle_patch", "log_key"]
