"""A Pipeline's lifecycle as its runs see it: paused, deactivated (cancel or let finish), on-demand queue.

The operator never writes a run's spec: a run worker derives what the lifecycle asks of its run from a
:class:`PipelineView` of its Pipeline. The pipeline worker stores the view after each pass (and wakes the
runs whose status does not show what it asks yet); the Pipeline watch refreshes it too; a run worker reads
the Pipeline itself only when no view is known (after a restart). Every decision here is a pure function of
the objects' dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datapipeline.core.model import DEFAULT_ONDEMAND_MAX_ACTIVE, DEFAULT_SCHEDULE
from datapipeline.core.runstate import FINAL_PHASES, PENDING, PHASE_PAUSED
from datapipeline.core.schedule import format_time, parse_time


@dataclass(frozen=True)
class PipelineView:
    """What a run needs to know of its Pipeline."""

    activated: bool = False
    paused: bool = False
    cancel_active: bool = True  # spec.cancelActiveOnDeactivate
    deactivated_at: datetime | None = None  # status.lastDeactivatedTime
    ondemand: bool = False
    max_active: int = DEFAULT_ONDEMAND_MAX_ACTIVE  # on-demand: runs active at once (defaults.maxActiveInstances)
    # For dependencies across schedules: when the schedules started, and how far each has made runs.
    activated_at: datetime | None = None  # status.activatedAt (FIRST_ACTIVATION_DATE_TIME schedules start here)
    activate_from: datetime | None = None  # spec.activateFrom: earlier intervals are SKIPPED
    cursors: tuple[tuple[str, datetime], ...] = ()  # (schedule, lastScheduledTime)

    def cursor(self, schedule: str) -> datetime | None:
        return dict(self.cursors).get(schedule)


@dataclass(frozen=True)
class RunLifecycle:
    paused: bool = False
    cancel_reason: str | None = None  # cancel the run: why


VIEWS: dict[tuple[str, str], PipelineView] = {}  # (namespace, pipeline) -> its newest view


def view_of(spec: Mapping[str, Any], status: Mapping[str, Any]) -> PipelineView:
    """The view from a Pipeline's spec and status as written (the parser and the CRD checked their types)."""
    defaults = spec.get("defaults") or {}
    deactivated = status.get("lastDeactivatedTime")
    return PipelineView(activated=bool(spec.get("activated")), paused=bool(spec.get("paused")),
                        cancel_active=spec.get("cancelActiveOnDeactivate") is not False,
                        deactivated_at=_instant(deactivated),
                        ondemand=spec.get("scheduleType") == "ondemand",
                        max_active=int(defaults.get("maxActiveInstances") or DEFAULT_ONDEMAND_MAX_ACTIVE),
                        activated_at=_instant(status.get("activatedAt")),
                        activate_from=_instant(spec.get("activateFrom")),
                        cursors=_cursors(status))


def _instant(value: Any) -> datetime | None:
    try:
        return parse_time(str(value)) if value else None
    except ValueError:
        return None  # the parser reports it on the Pipeline; here it only means "not known"


def _cursors(status: Mapping[str, Any]) -> tuple[tuple[str, datetime], ...]:
    found = [(DEFAULT_SCHEDULE, _instant(status.get("lastScheduledTime")))]
    found += [(str(name), _instant((fields or {}).get("lastScheduledTime")))
              for name, fields in (status.get("schedules") or {}).items()]
    return tuple((name, moment) for name, moment in found if moment is not None)


def _created(run: Mapping[str, Any]) -> str:
    return str(run["metadata"].get("creationTimestamp") or "")


def _status(run: Mapping[str, Any]) -> Mapping[str, Any]:
    return run.get("status") or {}


def is_rerun(run: Mapping[str, Any]) -> bool:
    """The run runs again at a user's request (a rerun): it counts against no limit and deactivation spares it."""
    status = _status(run)
    return bool(status.get("handledRerun")) and status.get("phase") not in FINAL_PHASES


def run_lifecycle(view: PipelineView, run: Mapping[str, Any]) -> RunLifecycle:
    """Paused with its pipeline; cancelled when the pipeline was deactivated after the run was created (unless
    cancelActiveOnDeactivate is false, or the run is a rerun requested by hand)."""
    reason = None
    created = _created(run)
    if (not view.activated and view.cancel_active and view.deactivated_at is not None and created
            and parse_time(created) <= view.deactivated_at and not _status(run).get("handledRerun")):
        reason = f"the pipeline was deactivated at {format_time(view.deactivated_at)}"
    return RunLifecycle(paused=view.paused, cancel_reason=reason)


def needs_wake(view: PipelineView, run: Mapping[str, Any]) -> bool:
    """The run's status does not show yet what the lifecycle asks of it."""
    phase = _status(run).get("phase")
    if phase in FINAL_PHASES:
        return False
    wanted = run_lifecycle(view, run)
    return wanted.cancel_reason is not None or wanted.paused != (phase == PHASE_PAUSED)


def queue_reason(view: PipelineView, run: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> str | None:
    """Why an on-demand run may not start yet: as many earlier runs are active as maxActiveInstances allows.

    First come, first served (creation time, then name); a run that started keeps going; reruns count for
    nothing ("Re-runs do not count toward the number of active instances")."""
    if not view.ondemand or _status(run).get("phase") not in (None, "", PENDING) or _status(run).get("handledRerun"):
        return None
    me = (_created(run), run["metadata"]["name"])
    ahead = [r for r in runs if (_created(r), r["metadata"]["name"]) < me
             and _status(r).get("phase") not in FINAL_PHASES and not _status(r).get("handledRerun")]
    if len(ahead) < view.max_active:
        return None
    return (f"maxActiveInstances: {len(ahead)} earlier run(s) of this on-demand pipeline are active "
            f"(at most {view.max_active} at once)")
