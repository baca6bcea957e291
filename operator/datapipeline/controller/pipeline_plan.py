"""Decide, for one Pipeline: a pure function from what was observed to what to do.

:func:`plan_pipeline` takes the parsed definition (or why it is invalid), the Pipeline's status, its runs
and the time, and returns the status fields to change, the runs to create and to delete, the Events to
post and when to look again. No Kubernetes call and no kopf here: ``controller/pipelines.py`` observes and
acts, this module decides, and the unit tests drive it like the run state machine's ``step``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from datapipeline.controller.lifecycle import is_rerun
from datapipeline.core.model import DEFAULT_SCHEDULE, PipelineDefinition
from datapipeline.core.runstate import FINAL_PHASES, PHASE_FAILED, SUCCEEDED, WAITING_EXTERNAL_KEY
from datapipeline.core.schedule import Interval, SchedulePlan, effective_start, format_time, parse_time, plan
from datapipeline.core.schedule import describe as describe_schedule

TRIGGER_SCHEDULED, TRIGGER_ON_DEMAND = "Scheduled", "OnDemand"


@dataclass(frozen=True)
class NewRun:
    start: datetime
    end: datetime | None
    trigger: str
    lag: float = 0.0  # seconds from its due time to now (a metric)
    schedule: str = DEFAULT_SCHEDULE  # which of the pipeline's schedules it is an interval of


@dataclass(frozen=True)
class Notice:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class PipelinePlan:
    status: dict[str, Any] = field(default_factory=dict)  # a JSON merge patch of the status (None removes)
    create: list[NewRun] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # runs past the history limits
    notices: list[Notice] = field(default_factory=list)
    wake_at: datetime | None = None
    active: int = 0  # runs not finished (a metric)
    queued: int = 0  # intervals due but held back by maxActiveRuns (a metric)
    kept_runs: list[Mapping[str, Any]] = field(default_factory=list)  # runs that stay (history applied)


@dataclass(frozen=True)
class PlanSettings:
    max_intervals: int
    missed_grace: timedelta


def plan_pipeline(definition: PipelineDefinition | None, problem: str, status: Mapping[str, Any],
                  runs: Iterable[Mapping[str, Any]], now: datetime, generation: Any,
                  settings: PlanSettings) -> PipelinePlan:
    """What one scheduling pass does (see the module docstring)."""
    out = PipelinePlan()
    if definition is None:
        _invalid(out, status, problem, generation, now)
        return out
    if status.get("observedGeneration") != generation:
        out.notices.extend(Notice("Warning", "DefinitionWarning", text) for text in definition.warnings)
    _set(out, status, "conditions", valid_conditions(status, True, "the definition is valid", generation, now))
    _set(out, status, "observedGeneration", generation)
    _set(out, status, "schedule", describe_schedule(definition.schedule, definition.schedule_type))
    kept = _history(definition, list(runs), out)
    out.active = sum(1 for r in kept if _phase(r) not in FINAL_PHASES)
    _set(out, status, "activeRuns", out.active)
    _last_run(out, status, kept)
    deactivated = deactivation_time(definition.activated, status, now)
    _set(out, status, "lastDeactivatedTime", deactivated)
    if not definition.activated:
        _set(out, status, "nextRunTime", None)
        _set(out, status, "activationTime", None)
        _set(out, status, "state", pipeline_state(True, False, bool(status.get("activatedAt")), False, False))
    elif not status.get("activatedAt") or not status.get("activationTime"):
        # Persist the activation first: run names derive from it, so they must survive a restart.
        _set(out, status, "activatedAt", status.get("activatedAt") or format_time(now))
        _set(out, status, "activationTime", status.get("activationTime") or format_time(now))
        out.wake_at = now  # schedule right after the activation is saved
    elif definition.lifecycle.paused:  # nothing new until resumed; missed intervals follow missedRunPolicy then
        _set(out, status, "state", pipeline_state(True, True, True, True, False))
    elif definition.schedule_type == "ondemand" or definition.schedule is None:
        _on_demand(out, status, now)
    else:
        _scheduled(out, definition, status, kept, now, settings)
    return out


def _invalid(out: PipelinePlan, status: Mapping[str, Any], problem: str, generation: Any, now: datetime) -> None:
    _set(out, status, "conditions", valid_conditions(status, False, problem, generation, now))
    _set(out, status, "observedGeneration", generation)
    _set(out, status, "health", "ERROR")
    _set(out, status, "nextRunTime", None)
    _set(out, status, "state", pipeline_state(False, False, False, False, False))


def _on_demand(out: PipelinePlan, status: Mapping[str, Any], now: datetime) -> None:
    """One run per activation (the activation time names it)."""
    activation = parse_time(str(status["activationTime"]))
    if status.get("lastScheduledTime") != format_time(activation):
        out.create.append(NewRun(activation, None, TRIGGER_ON_DEMAND))
        _set(out, status, "lastScheduledTime", format_time(activation))
    _set(out, status, "nextRunTime", None)
    _set(out, status, "state", pipeline_state(True, True, True, False, False))


def _scheduled(out: PipelinePlan, definition: PipelineDefinition, status: Mapping[str, Any],
               runs: list[Mapping[str, Any]], now: datetime, settings: PlanSettings) -> None:
    """Each schedule that holds activities plans its own runs, with its own cursor and maxActiveRuns."""
    finished, wakes, next_runs, queued = True, [], [], 0
    for name in definition.schedule_names:
        decision = _plan_schedule(out, definition, name, status, runs_of_schedule(runs, name), now, settings)
        finished &= decision.finished
        next_runs += [decision.next_run_time] if decision.next_run_time else []
        wakes += [decision.next_run_time] if decision.next_run_time and not decision.waiting else []
        queued += decision.waiting
    _set(out, status, "state", pipeline_state(True, True, True, False, finished and not out.active))
    _set(out, status, "nextRunTime", format_time(min(next_runs)) if next_runs else None)
    out.queued = queued
    # The next interval's due time; held-back runs wait for a run to finish, which wakes the worker.
    out.wake_at = min(wakes) if wakes else None


def _plan_schedule(out: PipelinePlan, definition: PipelineDefinition, name: str, status: Mapping[str, Any],
                   runs: list[Mapping[str, Any]], now: datetime, settings: PlanSettings) -> SchedulePlan:
    """The intervals of one schedule that are due, bounded by maxActiveRuns and missedRunPolicy."""
    schedule = definition.schedules[name]
    start = effective_start(schedule, parse_time(str(status["activatedAt"])))
    assert start is not None
    saved = schedule_status(status, name)
    observed = cursor_of(saved, runs)
    cursor = skip_cursor(observed, definition.lifecycle.activate_from)
    _skipped(out, status, definition.lifecycle.activate_from, cursor, observed)
    decision = plan(schedule, definition.schedule_type, start=start, cursor=cursor, now=now,
                    max_intervals=settings.max_intervals, missed_run_policy=definition.missed_run_policy,
                    active_runs=len(counted_active(runs)), max_active_runs=definition.max_active_runs,
                    grace=settings.missed_grace)
    out.create.extend(_new_run(interval, definition, now, name) for interval in decision.create)
    if decision.skipped:
        out.notices.append(Notice("Warning", "RunsSkipped", f"{len(decision.skipped)} missed interval(s) "
                                  f"{_of_schedule(name)}skipped by missedRunPolicy {definition.missed_run_policy}, "
                                  f"from {format_time(decision.skipped[0].start)} to "
                                  f"{format_time(decision.skipped[-1].start)}"))
    moved = decision.cursor is not None and decision.cursor != cursor
    fields = {"lastScheduledTime": format_time(decision.cursor) if moved and decision.cursor else
              saved.get("lastScheduledTime"),
              "nextRunTime": format_time(decision.next_run_time) if decision.next_run_time else None,
              "queueDepth": decision.waiting}
    if name == DEFAULT_SCHEDULE:  # the default schedule's fields stay where they always were
        _set(out, status, "lastScheduledTime", fields["lastScheduledTime"])
        _set(out, status, "queueDepth", decision.waiting)
    else:
        merged = {**(status.get("schedules") or {}), **out.status.get("schedules", {}), name: fields}
        _set(out, status, "schedules", merged)
    return decision


def schedule_status(status: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A schedule's own status fields (the default schedule's are the Pipeline status's top-level ones)."""
    if name == DEFAULT_SCHEDULE:
        return status
    return dict((status.get("schedules") or {}).get(name) or {})


def run_schedule(run: Mapping[str, Any]) -> str:
    return str((run.get("spec") or {}).get("schedule") or DEFAULT_SCHEDULE)


def runs_of_schedule(runs: Iterable[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [r for r in runs if run_schedule(r) == name]


def _of_schedule(name: str) -> str:
    return "" if name == DEFAULT_SCHEDULE else f"of schedule {name} "


def _new_run(interval: Interval, definition: PipelineDefinition, now: datetime, schedule: str) -> NewRun:
    due = interval.run_time(definition.schedule_type)
    return NewRun(interval.start, interval.end, TRIGGER_SCHEDULED, max(0.0, (now - due).total_seconds()), schedule)


def _skipped(out: PipelinePlan, status: Mapping[str, Any], activate_from: datetime | None,
             floor: datetime | None, cursor: datetime | None) -> None:
    """Record (once) that activateFrom skipped the intervals before it."""
    if activate_from is None or floor == cursor:
        return
    until = format_time(activate_from)
    if status.get("skippedUntil") != until:
        out.notices.append(Notice("Normal", "IntervalsSkipped", f"intervals starting before {until} are SKIPPED: "
                                  "the pipeline is activated from then (activateFrom)"))
    _set(out, status, "skippedUntil", until)


def _history(definition: PipelineDefinition, runs: list[Mapping[str, Any]], out: PipelinePlan) -> list[Mapping[str, Any]]:
    """Per schedule, keep the newest N succeeded and N failed/cancelled runs; the older finished ones are
    deleted, except those an unfinished run of another schedule may still wait for (its interval overlaps)."""
    doomed: list[Mapping[str, Any]] = []
    for name in {run_schedule(r) for r in runs}:
        mine = runs_of_schedule(runs, name)
        succeeded = sorted((r for r in mine if _phase(r) == SUCCEEDED), key=run_time)
        failed = sorted((r for r in mine if _phase(r) in ("Failed", "Cancelled")), key=run_time)
        doomed += succeeded[: max(0, len(succeeded) - definition.successful_runs_history_limit)]
        doomed += failed[: max(0, len(failed) - definition.failed_runs_history_limit)]
    names = {str(r["metadata"]["name"]) for r in doomed if not still_needed(r, runs)}
    out.delete.extend(sorted(names))
    out.kept_runs = [r for r in runs if str(r["metadata"]["name"]) not in names]
    return out.kept_runs


def still_needed(run: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> bool:
    """An unfinished run of another schedule whose interval overlaps this run's may depend on it."""
    start, end = run_time(run), run_end(run)
    return any(run_schedule(other) != run_schedule(run) and _phase(other) not in FINAL_PHASES
               and run_time(other) < end and start < run_end(other) for other in runs)


def run_end(run: Mapping[str, Any]) -> datetime:
    end = (run.get("spec") or {}).get("scheduledEndTime")
    return parse_time(str(end)) if end else run_time(run)


def _last_run(out: PipelinePlan, status: Mapping[str, Any], runs: list[Mapping[str, Any]]) -> None:
    if not runs:
        return
    newest = max(runs, key=lambda r: (run_time(r), r["metadata"].get("creationTimestamp") or ""))
    _set(out, status, "lastRun", {"name": newest["metadata"]["name"], "status": _phase(newest) or "Pending"})
    finished = [r for r in runs if _phase(r) in FINAL_PHASES]
    if finished:
        latest = max(finished, key=run_time)
        _set(out, status, "health", "ERROR" if _phase(latest) == PHASE_FAILED else "HEALTHY")
    elif not status.get("health"):
        _set(out, status, "health", "HEALTHY")


# ---------------------------------------------------------------------------- small pure pieces
def valid_conditions(old: Mapping[str, Any], ok: bool, message: str, generation: Any,
                     now: datetime) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in old.get("conditions") or ()}
    out = []
    for kind, value, reason in (("Valid", "True" if ok else "False", "Valid" if ok else "InvalidDefinition"),
                                ("Ready", "True" if ok else "False", "Ready" if ok else "InvalidDefinition")):
        before = previous.get(kind) or {}
        out.append({"type": kind, "status": value, "reason": reason, "message": message[:2000],
                    "observedGeneration": generation,
                    "lastTransitionTime": before.get("lastTransitionTime") if before.get("status") == value
                    and before.get("lastTransitionTime") else format_time(now)})
    return out


def pipeline_state(valid: bool, activated: bool, was_activated: bool, paused: bool, finished: bool) -> str:
    """The pipeline's status in AWS terms ("Interpreting Pipeline Status Codes"), plus PAUSED."""
    if not valid:
        return "PENDING"
    if not activated:
        return "INACTIVE" if was_activated else "PENDING"
    if paused:
        return "PAUSED"
    return "FINISHED" if finished else "SCHEDULED"


def deactivation_time(activated: bool, status: Mapping[str, Any], now: datetime) -> str | None:
    """status.lastDeactivatedTime after this pass: now when an active pipeline was just deactivated."""
    if not activated and status.get("activationTime"):
        return format_time(now)
    value = status.get("lastDeactivatedTime")
    return str(value) if value else None


def skip_cursor(cursor: datetime | None, activate_from: datetime | None) -> datetime | None:
    """The cursor planning starts from: intervals starting before activateFrom count as done (SKIPPED)."""
    if activate_from is None:
        return cursor
    floor = activate_from - timedelta(microseconds=1)
    return floor if cursor is None or cursor < floor else cursor


def counted_active(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Runs that count against maxActiveRuns: not finished, not a rerun, and not merely waiting for another
    schedule's runs (a weekly run waiting for its days must not hold the slot its days need)."""
    return [r for r in runs if _phase(r) not in FINAL_PHASES and not is_rerun(r)
            and not (r.get("status") or {}).get(WAITING_EXTERNAL_KEY)]


def cursor_of(status: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The newest scheduled interval: the saved cursor, or a newer scheduled run (the cursor was lost)."""
    cursor = parse_time(str(status["lastScheduledTime"])) if status.get("lastScheduledTime") else None
    for run in runs:
        if (run.get("spec") or {}).get("trigger") == TRIGGER_SCHEDULED:
            when = run_time(run)
            if cursor is None or when > cursor:
                cursor = when
    return cursor


def run_time(run: Mapping[str, Any]) -> datetime:
    spec = run.get("spec") or {}
    return parse_time(str(spec.get("scheduledStartTime") or run["metadata"].get("creationTimestamp")))


def _phase(run: Mapping[str, Any]) -> str | None:
    phase = (run.get("status") or {}).get("phase")
    return str(phase) if phase else None


def _set(out: PipelinePlan, status: Mapping[str, Any], key: str, value: Any) -> None:
    if status.get(key) != value:
        out.status[key] = value
