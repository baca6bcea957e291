"""Day-2 commands of the ``datapipeline`` CLI: list, runs, describe, run, backfill, cancel, rerun,
mark-finished, logs, activate, deactivate, pause, resume. ``add_subparsers`` registers them on argparse.

The reading verbs are here; the verbs that change something call :mod:`datapipeline.day2`, the one
implementation the web console calls too, and print the line it returns.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from datapipeline import day2
from datapipeline.core.model import DEFAULT_SCHEDULE
from datapipeline.core.schedule import interval_at, parse_time
from datapipeline.day2 import LOG_KEY, lifecycle_patch, log_key


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


def cmd_run(args: argparse.Namespace) -> int:
    at = day2.parse_time_option(args.at, "--at") if args.at else None
    params = day2.parse_params(args.param)  # NAME=VALUE, before any cluster call
    namespace = _ns(args)
    name = day2.start_run(_kube(), namespace, args.pipeline, at=at, params=params, name=args.name,
                          schedule=str(args.schedule))
    print(f"pipelinerun/{name} created")
    if args.watch:
        return _watch(args, lambda: describe_run(namespace, name)[0], lambda: describe_run(namespace, name)[1])
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    range_from = day2.parse_time_option(args.from_, "--from")
    range_to = day2.parse_time_option(args.to, "--to")
    params = day2.parse_params(args.param)  # NAME=VALUE, before any cluster call
    day2.backfill(_kube(), _ns(args), args.pipeline, range_from, range_to, schedule=args.schedule, params=params,
                  dry_run=args.dry_run, report=print)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    print(day2.cancel_run(_kube(), _ns(args), args.run))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    print(day2.rerun_run(_kube(), _ns(args), args.run, failed_only=args.failed_only, activities=args.activity or (),
                         downstream=args.downstream))
    return 0


def cmd_mark_finished(args: argparse.Namespace) -> int:
    print(day2.mark_finished(_kube(), _ns(args), args.run, args.activity))
    return 0


def _lifecycle(args: argparse.Namespace, verb: str) -> int:
    print(day2.change_lifecycle(_kube(), _ns(args), args.pipeline, verb,
                                start_timestamp=getattr(args, "start_timestamp", None),
                                cancel_active=getattr(args, "cancel_active", True)))
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
    for log in day2.attempt_logs(_kube(), _ns(args), args.run, args.activity, args.attempt):
        print(f"==> {log.activity} attempt {log.attempt} ({log.job})")
        print(log.text)
    return 0


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


__all__ = [
    "LOG_KEY",
    "add_subparsers",
    "cmd_activate",
    "cmd_backfill",
    "cmd_cancel",
    "cmd_deactivate",
    "cmd_describe",
    "cmd_list",
    "cmd_logs",
    "cmd_mark_finished",
    "cmd_pause",
    "cmd_rerun",
    "cmd_resume",
    "cmd_run",
    "cmd_runs",
    "interval_at",
    "lifecycle_patch",
    "log_key",
]
