"""Dependencies across schedules: which instances of a producer an activity instance waits for.

A pipeline with several schedules makes one PipelineRun per (schedule, interval); an activity's ``dependsOn``
may name an activity of another schedule, whose instances live in other runs. Pure functions here decide
which producer instances a consumer interval needs (:func:`needed_intervals`), and what their observed states
mean for the consumer (:func:`external_state`). See docs/mixed-schedules.md.

The rule, for a consumer interval ``[s, e)`` and a producer schedule:

* the producer instance *covering* ``s`` (its interval contains ``s``) when it is at least as long as
  ``[s, e)``: a coarser (or equal) producer, e.g. a daily consumer of a weekly report;
* otherwise every producer instance whose interval *starts* inside ``[s, e)``: a finer producer, e.g. the
  seven daily uploads of a weekly job's week, the final day's included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from datapipeline.core.model import PipelineDefinition, Schedule
from datapipeline.core.problems import Problem
from datapipeline.core.schedule import Interval, intervals
from datapipeline.core.schedule import format_time as utc_stamp

DEFAULT_MAX_INSTANCES = 1_000  # producer instances one consumer instance may wait for
# Consumer intervals sampled to find a definition's largest wait (cron schedules vary: months, DST).
_SAMPLES = 3
_PROBE = datetime(2001, 1, 1, tzinfo=UTC)  # a Monday, before any real start: a fixed, cheap sample point

DONE, WAITING, FAILED = "done", "waiting", "failed"
# Activity statuses as runs report them (core.runstate owns them; repeated here as plain text to keep this
# module free of the state machine).
_SUCCESSFUL = frozenset({"FINISHED", "SKIPPED"})
_UNSUCCESSFUL = frozenset({"FAILED", "CASCADE_FAILED", "CANCELED", "TIMEDOUT"})
_FINAL_PHASES = frozenset({"Succeeded", "Failed", "Cancelled"})


class TooManyInstances(ValueError):
    """The producer has more instances inside one consumer interval than the limit allows."""


def needed_intervals(consumer: Interval, producer: Schedule, producer_start: datetime,
                     limit: int = DEFAULT_MAX_INSTANCES) -> list[Interval]:
    """The producer intervals a consumer instance waits for (see the module docstring)."""
    covering = _covering(producer, producer_start, consumer.start)
    if covering is not None and covering.end - covering.start >= consumer.end - consumer.start:
        return [covering]
    found: list[Interval] = []
    for interval in intervals(producer, producer_start, after=consumer.start, until=consumer.end):
        found.append(interval)
        if len(found) > limit:
            raise TooManyInstances(f"more than {limit:,} instances")
    return found


def node_intervals(definition: PipelineDefinition, run_schedule: str, moment: datetime,
                   starts: Mapping[str, datetime | None]) -> dict[str, tuple[datetime, datetime]]:
    """For each other schedule a data node is on: its interval containing ``moment`` (a run's start).
    ``starts`` gives each schedule's effective start (its startDateTime, or the first activation)."""
    wanted = {definition.node_schedule(n) for n in definition.objects.get("dataNodes", {})} - {run_schedule}
    found: dict[str, tuple[datetime, datetime]] = {}
    for name in sorted(wanted):
        schedule, start = definition.schedules.get(name), starts.get(name)
        covering = _covering(schedule, start, moment) if schedule is not None and start is not None else None
        if covering is not None:
            found[name] = (covering.start, covering.end)
    return found


def _covering(schedule: Schedule, start: datetime, moment: datetime) -> Interval | None:
    """The interval of ``schedule`` that contains ``moment``, if any."""
    if moment < start:
        return None
    # The covering interval starts at most one interval before ``moment``: look from a bounded distance back.
    back = moment - _longest(schedule)
    for interval in intervals(schedule, start, after=max(start, back), until=moment + timedelta(microseconds=1)):
        if interval.start <= moment < interval.end:
            return interval
    return None


def _longest(schedule: Schedule) -> timedelta:
    """An upper bound on one interval's length (a cron schedule's gaps are at most a year and a day)."""
    if schedule.period is not None and not schedule.cron:
        unit = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 90_000, "weeks": 7 * 90_000,
                "months": 32 * 86_400, "years": 367 * 86_400}[schedule.period.unit]
        return timedelta(seconds=unit * schedule.period.count)
    return timedelta(days=367)


# ---------------------------------------------------------------------------- what the runs say
@dataclass(frozen=True)
class InstanceState:
    """One producer instance as observed: its run's phase and the producer activity's status in it."""

    run: str
    phase: str
    status: str | None  # None: the run does not hold the activity (yet)


@dataclass(frozen=True)
class ExternalState:
    """What a dependency on another schedule's activity means for the consumer instance now."""

    state: str  # done | waiting | failed
    waiting_on: str = ""  # "archive-logs x3 (2026-11-19, ...): 2 RUNNING, 1 not created yet; 4 of 7 FINISHED"
    root: str | None = None  # failed: "archive-logs@2026-11-20T00:00:00Z" (the consumer's @cascadeFailedOn)
    runs: tuple[str, ...] = field(default=())  # the producer runs involved (woken consumers, describe)
    # Some instance counted as done only because no run of it was observed (skipped or deleted): an observer
    # whose view may be incomplete (just restarted) should confirm before acting on it.
    assumed: bool = False


def external_state(activity: str, needed: list[Interval], observed: Mapping[datetime, InstanceState],
                   created_until: datetime | None, skipped_before: datetime | None) -> ExternalState:
    """Fold the producer instances' states into one dependency state.

    ``observed`` maps an interval start to its run's state; an instance without a run counts as done when it
    starts before ``skipped_before`` (activateFrom: SKIPPED) or at or before ``created_until`` (the producer
    schedule's cursor: its run was skipped by missedRunPolicy or deleted), and as "not created yet" otherwise.
    """
    counts: dict[str, int] = {}
    pending: list[Interval] = []
    runs: list[str] = []
    assumed = False
    for interval in needed:
        seen = observed.get(interval.start)
        status = _status(seen, interval, created_until, skipped_before)
        if seen is not None:
            runs.append(seen.run)
        else:
            assumed |= status == "SKIPPED"
        if status in _SUCCESSFUL:
            counts["FINISHED"] = counts.get("FINISHED", 0) + 1
            continue
        if status in _UNSUCCESSFUL:
            why = f"{status} in run {seen.run}" if seen else status
            return ExternalState(FAILED, f"{activity}@{utc_stamp(interval.start)} {why}",
                                 root=f"{activity}@{utc_stamp(interval.start)}", runs=tuple(runs))
        pending.append(interval)
        counts[status] = counts.get(status, 0) + 1
    if not pending:
        return ExternalState(DONE, runs=tuple(runs), assumed=assumed)
    return ExternalState(WAITING, _waiting_text(activity, pending, counts, len(needed)), runs=tuple(runs))


def _status(seen: InstanceState | None, interval: Interval, created_until: datetime | None,
            skipped_before: datetime | None) -> str:
    if seen is None:
        if skipped_before is not None and interval.start < skipped_before:
            return "SKIPPED"
        if created_until is not None and interval.start <= created_until:
            return "SKIPPED"  # its run was skipped (missedRunPolicy) or deleted after it ended
        return "not created yet"
    if seen.status is None:
        return "CANCELED" if seen.phase in _FINAL_PHASES else "not started"
    if seen.phase == "Cancelled" and seen.status not in _SUCCESSFUL:
        return "CANCELED"
    return seen.status


def _waiting_text(activity: str, pending: list[Interval], counts: Mapping[str, int], total: int) -> str:
    """At most three instances named, then counts: small for a 672-instance wait."""
    named = ", ".join(utc_stamp(i.start) for i in pending[:3]) + (", ..." if len(pending) > 3 else "")
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "FINISHED")
    return (f"{activity} x{len(pending)} ({named}): {states}; {counts.get('FINISHED', 0)} of {total} FINISHED")


# ---------------------------------------------------------------------------- validation
def wait_problems(definition: PipelineDefinition, limit: int = DEFAULT_MAX_INSTANCES) -> list[Problem]:
    """A dependency across schedules must not need more producer instances than ``limit`` per consumer
    instance (a 1-minute producer under a monthly consumer would be ~44,000)."""
    problems: list[Problem] = []
    schedules = definition.schedules
    for activity in definition.activities.values():
        for index, dep in enumerate(activity.depends_on):
            producer = definition.activities.get(dep)
            if producer is None or producer.schedule == activity.schedule:
                continue
            mine, theirs = schedules.get(activity.schedule), schedules.get(producer.schedule)
            if mine is None or theirs is None:
                continue
            if _largest_wait(mine, theirs, limit) > limit:
                problems.append(Problem(f"{activity.path}.dependsOn[{index}]",
                                        f'"{dep}" runs on schedule {producer.schedule}, which has more than '
                                        f"{limit:,} instances in one interval of schedule {activity.schedule}; "
                                        "use a coarser schedule for it or a finer one for this activity"))
    return problems


def _largest_wait(consumer: Schedule, producer: Schedule, limit: int) -> int:
    start = consumer.start or _PROBE
    producer_start = producer.start or start
    largest = 0
    for seen, interval in enumerate(intervals(consumer, start)):
        if seen >= _SAMPLES:
            break
        try:
            largest = max(largest, len(needed_intervals(interval, producer, producer_start, limit)))
        except TooManyInstances:
            return limit + 1
    return largest
