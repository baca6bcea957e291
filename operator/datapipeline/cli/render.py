"""`datapipeline render FILE [--at TIME] [--activity NAME]`: what each activity will run, resolved offline.

Every field of each activity, and of the data nodes, preconditions and actions it uses, resolved for one
scheduled interval with the operator's own resolution code (:class:`datapipeline.core.resolve.Resolver`),
as ``airflow tasks render`` does. Values only known at run time (an action's ``node.errorMessage``) are shown
as placeholders. Exit 0 when everything resolves; otherwise each failure with its path, exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from datapipeline.cli.validate import cli_limits, named_path, read_text
from datapipeline.core.crossrun import node_intervals
from datapipeline.core.definition import parse_instant, parse_manifest
from datapipeline.core.expressions import ExpressionError
from datapipeline.core.loader import load_yaml_documents
from datapipeline.core.model import DEFAULT_SCHEDULE, Activity, PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import ResolveError, Resolver, RunContext
from datapipeline.core.schedule import Interval, effective_start, intervals, run_name
from datapipeline.core.task import NODE_TEXT_KEYS, utc_text

# What an action or precondition sees as node.* for a value only the run knows.
AT_RUN_TIME = "<set at run time>"
EVENT_STATUS = {"onSuccess": "FINISHED", "onFail": "FAILED", "onLateAction": "RUNNING"}


def interval_for(definition: PipelineDefinition, at: datetime | None, now: datetime,
                 schedule_name: str = DEFAULT_SCHEDULE) -> Interval:
    """The first interval of the schedule at or after ``at`` (default: the schedule's first one)."""
    schedule = definition.schedules.get(schedule_name)
    if schedule is None:  # ondemand: a run starts when it is asked for
        moment = at or now
        return Interval(moment, moment)
    start = effective_start(schedule, at or now)
    if start is None:
        raise ValueError("the schedule has no start")
    for interval in intervals(schedule, start, after=at):
        return interval
    raise ValueError("the schedule has no interval " + (f"at or after {utc_text(at)}" if at else "at all"))


def node_fields(name: str, interval: Interval, event: str) -> dict[str, Any]:
    """node.* as the state machine passes it (runstate.node_fields), with run-time values as placeholders."""
    stamp = utc_text(interval.start)
    return {"@id": name, "name": name, "@status": EVENT_STATUS.get(event, "RUNNING"), "@attemptCount": 1,
            "@scheduledStartTime": stamp, "@scheduledEndTime": utc_text(interval.end),
            "@actualStartTime": stamp, "@actualEndTime": stamp, **dict.fromkeys(NODE_TEXT_KEYS, AT_RUN_TIME)}


def render_activity(definition: PipelineDefinition, resolver: Resolver, activity: Activity,
                    interval: Interval) -> dict[str, Any]:
    """One activity and what it uses, resolved; raises ResolveError naming the field that failed."""
    task = resolver.activity(activity.name, 1, interval.run_time(definition.schedule_type)).task
    out: dict[str, Any] = {"activity": activity.name, "type": activity.type, "fields": task.fields}
    for key in ("inputs", "outputs"):
        nodes = getattr(task, key)
        if nodes:
            out[key] = [_plain(asdict(node)) for node in nodes]
    if task.database is not None:
        out["database"] = _plain(asdict(task.database))
    checks = list(_preconditions(definition, activity))
    if checks:
        node = node_fields(activity.name, interval, "precondition")
        out["preconditions"] = [{"name": name, "guards": guarded or activity.name,
                                 "fields": resolver.precondition(name, activity.name, 1, guarded, node).task.fields}
                                for name, guarded in checks]
    actions = [(event, name) for event in EVENT_STATUS for name in getattr(activity, _field(event))]
    if actions:
        out["actions"] = [{"name": name, "on": event, "fields": resolver.action(
            name, activity.name, 1, node_fields(activity.name, interval, event)).task.fields}
            for event, name in actions]
    return out


def _field(event: str) -> str:
    return {"onSuccess": "on_success", "onFail": "on_fail", "onLateAction": "on_late_action"}[event]


def _preconditions(definition: PipelineDefinition, activity: Activity) -> Iterator[tuple[str, str | None]]:
    for name in activity.preconditions:
        yield name, None
    for node_name in activity.inputs:
        node = definition.objects["dataNodes"].get(node_name)
        for name in node.refs("precondition") if node is not None else ():
            yield name, node_name


def _plain(value: Any) -> Any:
    """Dataclass dicts as YAML can print them (no None noise)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v not in (None, {}, [], ())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def render_pipeline(doc: Mapping[str, Any], at: datetime | None, only: str | None, now: datetime,
                    out: TextIO, err: TextIO, label: str) -> bool:
    try:
        definition = parse_manifest(doc)
    except DefinitionError as error:
        for problem in error.problems:
            print(f"{label}: {named_path(doc, str(problem))}", file=err)
        return False
    if only is not None and only not in definition.activities:
        print(f'{label}: --activity: no activity named "{only}"', file=err)
        return False
    pipeline = str(doc["metadata"]["name"])
    contexts: dict[str, tuple[Interval, RunContext]] = {}
    starts = {n: effective_start(s, at or now) for n, s in definition.schedules.items()}
    for schedule in definition.schedule_names or [DEFAULT_SCHEDULE]:  # each activity in its own schedule's run
        try:
            interval = interval_for(definition, at, now, schedule)
        except ValueError as error:
            where = "spec.schedule" if schedule == DEFAULT_SCHEDULE else f"spec.schedules.{schedule}"
            print(f"{label}: {where}: {error}", file=err)
            return False
        kind = "" if schedule == DEFAULT_SCHEDULE else schedule
        contexts[schedule] = (interval, RunContext(
            pipeline=pipeline, run=run_name(pipeline, interval.start, kind), scheduled_start=interval.start,
            scheduled_end=interval.end, trigger_time=interval.run_time(definition.schedule_type),
            intervals=node_intervals(definition, schedule, interval.start, starts)))
    rendered, ok = [], True
    for name, activity in definition.activities.items():
        if only is not None and name != only:
            continue
        interval, context = contexts[activity.schedule]
        try:
            entry = render_activity(definition, Resolver(definition, context), activity, interval)
        except (ResolveError, ExpressionError, KeyError) as error:
            print(f"{label}: {named_path(doc, _message(error, activity))}", file=err)
            ok = False
            continue
        if activity.schedule != DEFAULT_SCHEDULE:
            entry = {"activity": name, "schedule": activity.schedule, "run": context.run,
                     "scheduledStartTime": _stamp(interval.start), "scheduledEndTime": _stamp(interval.end),
                     **{k: v for k, v in entry.items() if k != "activity"}}
        rendered.append(entry)
    interval, context = contexts.get(DEFAULT_SCHEDULE) or next(iter(contexts.values()))
    header = {"pipeline": pipeline, "run": context.run, "scheduledStartTime": _stamp(interval.start),
              "scheduledEndTime": _stamp(interval.end)}
    out.write(yaml.safe_dump({**header, "activities": rendered}, sort_keys=False, width=120, allow_unicode=True))
    return ok


def _message(error: Exception, activity: Activity) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return text if text.startswith("spec.") else f"{activity.path}: {text}"


def _stamp(moment: datetime) -> str:
    return utc_text(moment)


def render_files(path: Path, at: datetime | None, only: str | None, out: TextIO, err: TextIO,
                 now: datetime | None = None) -> int:
    try:
        documents = [d for d in load_yaml_documents(read_text(path), cli_limits()) if isinstance(d, Mapping)]
    except ValueError as error:
        print(f"{path}: {error}", file=err)
        return 1
    pipelines = [d for d in documents if d.get("kind") == "Pipeline"]
    if not pipelines:
        print(f"{path}: no Pipeline in this file", file=err)
        return 1
    moment = now or datetime.now(UTC).replace(microsecond=0)
    results = [render_pipeline(doc, at, only, moment, out, err, f"{path} Pipeline/"
                               f"{(doc.get('metadata') or {}).get('name', '?')}") for doc in pipelines]
    return 0 if all(results) else 1


def run(args: argparse.Namespace) -> int:
    at = None
    if args.at:
        try:
            at = parse_instant(args.at)
        except ValueError:
            print(f'--at: "{args.at}" is not a date-time; write it like "2026-01-31T00:00:00Z"', file=sys.stderr)
            return 1
    try:
        return render_files(args.file, at, args.activity, sys.stdout, sys.stderr)
    except Exception as error:  # a bug must not become a traceback
        print(f"internal error while rendering ({type(error).__name__}: {error}); please report it",
              file=sys.stderr)
        return 1


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render", help="show each activity's fields resolved for one scheduled interval (offline)",
        description="Resolves every field of each activity (and the data nodes, preconditions and actions it "
                    "uses) for the interval scheduled at --at (default: the first), with the operator's "
                    "resolution code. Exits 1 and names each field that does not resolve.")
    parser.add_argument("file", type=Path, help="a Pipeline manifest (YAML; - for standard input)")
    parser.add_argument("--at", help="a date-time: render the first interval scheduled at or after it")
    parser.add_argument("--activity", help="render only this activity")
    parser.set_defaults(func=run)
