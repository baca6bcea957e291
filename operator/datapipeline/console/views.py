"""What the console's pages show, as plain data made from the objects' dicts (pure: no I/O).

Each page's template reads one of these; the same functions decide filters, paging and which actions a
run offers, so they are tested without a browser or a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datapipeline.core.model import DEFAULT_SCHEDULE, PipelineDefinition
from datapipeline.core.runstate import (
    FAILED,
    FINAL_PHASES,
    PENDING,
    PHASE_FAILED,
    UNSUCCESSFUL,
    ActivityState,
)
from datapipeline.core.schedule import format_time, parse_time

RUNS_PER_PAGE = 25
HEALTH_FILTERS = ("HEALTHY", "ERROR", "UNKNOWN")
RUN_PHASES = ("Pending", "Running", "Paused", "Succeeded", "Failed", "Cancelled")


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


# ---------------------------------------------------------------------------- pipelines
@dataclass(frozen=True)
class PipelineRow:
    namespace: str
    name: str
    schedule: str  # in words
    health: str  # HEALTHY | ERROR | UNKNOWN (no finished run yet)
    last_run: str | None
    last_run_phase: str | None
    next_run: str | None
    activated: bool
    paused: bool
    active_runs: int
    problem: str | None  # why the Pipeline is not Valid


def schedule_in_words(spec: Mapping[str, Any]) -> str:
    """The schedule as the Pipeline's printer column says it, from the spec (before the operator wrote any)."""
    if spec.get("scheduleType") == "ondemand":
        return "on demand"
    schedule = spec.get("schedule") or {}
    if not isinstance(schedule, Mapping) or not (schedule.get("cron") or schedule.get("period")):
        return "on demand"
    what = f"cron {schedule['cron']}" if schedule.get("cron") else f"every {schedule['period']}"
    zone = schedule.get("timeZone")
    extra = len(spec.get("schedules") or {})
    return what + (f" {zone}" if zone and zone != "UTC" else "") + (f" (+{extra} more)" if extra else "")


def pipeline_row(pipeline: Mapping[str, Any]) -> PipelineRow:
    spec, status, meta = _spec(pipeline), _status(pipeline), pipeline.get("metadata") or {}
    last = status.get("lastRun") or {}
    valid = next((c for c in status.get("conditions") or () if c.get("type") == "Valid"), None)
    problem = str(valid.get("message") or "invalid") if valid and valid.get("status") == "False" else None
    return PipelineRow(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                       schedule=str(status.get("schedule") or schedule_in_words(spec)),
                       health=str(status.get("health") or "UNKNOWN"), last_run=last.get("name"),
                       last_run_phase=last.get("status"), next_run=status.get("nextRunTime"),
                       activated=bool(spec.get("activated")), paused=bool(spec.get("paused")),
                       active_runs=int(status.get("activeRuns") or 0), problem=problem)


def pipeline_rows(pipelines: Iterable[Mapping[str, Any]], namespace: str | None = None,
                  health: str | None = None) -> list[PipelineRow]:
    """The pipelines page's rows, filtered by namespace and health, by namespace then name."""
    rows = [pipeline_row(p) for p in pipelines]
    rows = [r for r in rows if (not namespace or r.namespace == namespace) and (not health or r.health == health)]
    return sorted(rows, key=lambda r: (r.namespace, r.name))


# ---------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunRow:
    namespace: str
    name: str
    pipeline: str
    scheduled_start: str
    phase: str
    progress: str
    started: str | None
    ended: str | None
    trigger: str
    schedule: str


def run_row(run: Mapping[str, Any]) -> RunRow:
    spec, status, meta = _spec(run), _status(run), run.get("metadata") or {}
    return RunRow(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                  pipeline=str((spec.get("pipelineRef") or {}).get("name") or ""),
                  scheduled_start=str(spec.get("scheduledStartTime") or meta.get("creationTimestamp") or ""),
                  phase=str(status.get("phase") or PENDING), progress=str(status.get("progress") or "-"),
                  started=status.get("startTime"), ended=status.get("completionTime"),
                  trigger=str(spec.get("trigger") or "-"), schedule=str(spec.get("schedule") or DEFAULT_SCHEDULE))


@dataclass(frozen=True)
class RunsPage:
    rows: tuple[RunRow, ...]
    page: int  # from 1
    pages: int
    total: int  # runs that pass the filter
    status: str | None
    mixed: bool = False  # the runs belong to several schedules: the table says each run's


def runs_page(runs: Iterable[Mapping[str, Any]], status: str | None = None, page: int = 1,
              per_page: int = RUNS_PER_PAGE, since: datetime | None = None,
              until: datetime | None = None) -> RunsPage:
    """One page of a pipeline's runs, newest scheduled start first, only those in ``status`` and with a scheduled
    start in [since, until) when given."""
    rows = [run_row(r) for r in runs]
    if status:
        rows = [r for r in rows if r.phase.lower() == status.lower()]
    if since is not None or until is not None:
        rows = [r for r in rows if _within(r.scheduled_start, since, until)]
    rows.sort(key=lambda r: (r.scheduled_start, r.name), reverse=True)
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(1, page), pages)
    chosen = rows[(page - 1) * per_page: page * per_page]
    return RunsPage(tuple(chosen), page, pages, len(rows), status or None,
                    mixed=any(r.schedule != DEFAULT_SCHEDULE for r in rows))


def _within(stamp: str, since: datetime | None, until: datetime | None) -> bool:
    try:
        moment = parse_time(stamp)
    except ValueError:
        return False
    return (since is None or moment >= since) and (until is None or moment < until)


def newest_run(runs: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The run a pipeline page shows on its graph unless one is chosen: the newest scheduled start."""
    return max(runs, key=lambda r: (run_row(r).scheduled_start, run_row(r).name), default=None)


# ---------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class AttemptView:
    number: int
    status: str
    start: str | None
    end: str | None
    exit_code: int | None
    error: str | None


@dataclass(frozen=True)
class ActivityView:
    name: str
    status: str
    attempt: int
    start: str | None
    end: str | None
    exit_code: int | None
    detail: str | None  # the error, what it waits on, or why it was cancelled
    attempts: tuple[AttemptView, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status in UNSUCCESSFUL


@dataclass(frozen=True)
class RunView:
    namespace: str
    name: str
    pipeline: str
    phase: str
    progress: str
    scheduled_start: str | None
    scheduled_end: str | None
    started: str | None
    completed: str | None
    trigger: str
    activities: tuple[ActivityView, ...]
    actions: tuple[str, ...] = field(default=())  # what the run offers: rerun-failed, rerun, cancel


def run_view(run: Mapping[str, Any], definition: PipelineDefinition | None = None) -> RunView:
    """A run with each activity's attempts, activities in dependency order when the definition is known."""
    spec, status, meta = _spec(run), _status(run), run.get("metadata") or {}
    entries: Mapping[str, Any] = status.get("activities") or {}
    order = [n for n in (definition.topological_order() if definition else []) if n in entries]
    order += [n for n in entries if n not in order]
    phase = str(status.get("phase") or PENDING)
    return RunView(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                   pipeline=str((spec.get("pipelineRef") or {}).get("name") or ""), phase=phase,
                   progress=str(status.get("progress") or "-"), scheduled_start=spec.get("scheduledStartTime"),
                   scheduled_end=spec.get("scheduledEndTime"), started=status.get("startTime"),
                   completed=status.get("completionTime"), trigger=str(spec.get("trigger") or "-"),
                   activities=tuple(activity_view(n, entries[n] or {}) for n in order),
                   actions=run_actions(phase, [str((entries[n] or {}).get("status")) for n in order]))


def activity_view(name: str, entry: Mapping[str, Any]) -> ActivityView:
    state = ActivityState.from_dict(entry)  # the operator's own reading, with the attempt a summary implies
    detail = state.error_message or (f"waiting on {state.waiting_on}" if state.waiting_on else None) or (
        state.cancellation_reason) or (f"cascade-failed on {state.cascade_failed_on}" if state.cascade_failed_on else None)
    attempts = tuple(AttemptView(a.n, a.status, _stamp(a.start), _stamp(a.end), a.exit_code, a.error)
                     for a in state.attempts)
    return ActivityView(name, state.status, state.attempt, entry.get("startTime"), entry.get("endTime"),
                        state.exit_code, detail, attempts)


def _stamp(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def run_actions(phase: str, activity_states: Sequence[str]) -> tuple[str, ...]:
    """The day-2 actions that make sense for a run in this phase (the operator would accept others too)."""
    actions: list[str] = []
    if phase == PHASE_FAILED or FAILED in activity_states:
        actions.append("rerun-failed")
    if phase in FINAL_PHASES:
        actions.append("rerun")
    else:
        actions.append("cancel")
    return tuple(actions)
