"""What every PipelineRun last said, by pipeline: fed by the run watch, read by runs that wait for other runs.

A run whose activities depend on activities of another schedule (docs/mixed-schedules.md) needs the states
of the producer's instances in other runs. They come from this index, which the PipelineRun watch keeps
(a few bytes per run), so a waiting run's pass reads nothing from the API server; after a restart the
watch's initial listing fills it again. Runs marked ``status.external`` are the index's *watchers*: any event
of a run of the same pipeline wakes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datapipeline.controller.lifecycle import PipelineView
from datapipeline.core.crossrun import (
    ExternalState,
    InstanceState,
    TooManyInstances,
    external_state,
    needed_intervals,
)
from datapipeline.core.model import DEFAULT_SCHEDULE, PipelineDefinition
from datapipeline.core.runstate import WAITING_EXTERNAL_KEY
from datapipeline.core.schedule import Interval, effective_start, parse_time

MANUAL = "Manual"


@dataclass(frozen=True)
class RunSummary:
    name: str
    schedule: str
    start: datetime
    trigger: str
    phase: str
    activities: Mapping[str, str]  # activity -> status
    external: str | None  # status.external


# (namespace, pipeline) -> run name -> summary
INDEX: dict[tuple[str, str], dict[str, RunSummary]] = {}


def observe(namespace: str, spec: Mapping[str, Any], status: Mapping[str, Any], name: str,
            deleted: bool) -> tuple[tuple[str, str], bool]:
    """Record (or forget) one run from a watch event; returns its (namespace, pipeline) key and whether what
    other runs may depend on (its phase, its activities' states) changed."""
    key = (namespace, str((spec.get("pipelineRef") or {}).get("name") or ""))
    runs = INDEX.setdefault(key, {})
    before = runs.get(name)
    start = spec.get("scheduledStartTime")
    if deleted or not start:
        runs.pop(name, None)
        if not runs:
            INDEX.pop(key, None)
        return key, before is not None
    try:
        when = parse_time(str(start))
    except ValueError:
        return key, False
    activities = {str(n): str((a or {}).get("status") or "") for n, a in (status.get("activities") or {}).items()}
    summary = RunSummary(name=name, schedule=str(spec.get("schedule") or DEFAULT_SCHEDULE), start=when,
                         trigger=str(spec.get("trigger") or MANUAL), phase=str(status.get("phase") or ""),
                         activities=activities, external=status.get(WAITING_EXTERNAL_KEY))
    runs[name] = summary
    changed = before is None or (before.phase, before.activities) != (summary.phase, summary.activities)
    return key, changed


def observe_listed(namespace: str, runs: Iterable[Mapping[str, Any]]) -> None:
    """Record runs read with a LIST (to confirm what the watch may not have delivered yet)."""
    for run in runs:
        observe(namespace, run.get("spec") or {}, run.get("status") or {}, str(run["metadata"]["name"]), False)


def watchers(key: tuple[str, str]) -> list[str]:
    """Runs of the pipeline that wait for (or failed because of) other runs."""
    return [s.name for s in INDEX.get(key, {}).values() if s.external]


def instances(key: tuple[str, str], schedule: str, activity: str) -> dict[datetime, InstanceState]:
    """The activity's instances in the schedule's runs, by interval start (a scheduled run wins over a
    manual run of the same interval)."""
    found: dict[datetime, tuple[bool, InstanceState]] = {}
    for summary in INDEX.get(key, {}).values():
        if summary.schedule != schedule:
            continue
        manual = summary.trigger == MANUAL
        if summary.start in found and (manual or not found[summary.start][0]):
            continue
        found[summary.start] = (manual, InstanceState(summary.name, summary.phase,
                                                      summary.activities.get(activity) or None))
    return {start: state for start, (_, state) in found.items()}


def external_states(definition: PipelineDefinition, run_schedule: str, interval: Interval, view: PipelineView,
                    key: tuple[str, str], limit: int) -> dict[str, ExternalState]:
    """For each activity of another schedule that this run's activities depend on: its instances' state."""
    mine = definition.for_schedule(run_schedule)
    out: dict[str, ExternalState] = {}
    for name in mine.activities:
        for dep in mine.external_dependencies(name):
            if dep not in out:
                out[dep] = _external(definition, dep, interval, view, key, limit)
    return out


def _external(definition: PipelineDefinition, dep: str, interval: Interval, view: PipelineView,
              key: tuple[str, str], limit: int) -> ExternalState:
    producer = definition.activities[dep].schedule
    schedule = definition.schedules[producer]
    start = effective_start(schedule, view.activated_at)
    if start is None:
        return ExternalState("waiting", f"{dep}: schedule {producer} has not started (the pipeline is not "
                                        "activated)")
    try:
        needed = needed_intervals(interval, schedule, start, limit)
    except TooManyInstances as error:
        return ExternalState("failed", f"{dep}: schedule {producer} has {error} in this interval", root=dep)
    return external_state(dep, needed, instances(key, producer, dep), view.cursor(producer), view.activate_from)
