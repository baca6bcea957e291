"""When a pipeline runs: the intervals of a schedule, which of them are due, and run names.

Pure functions of a :class:`~datapipeline.core.model.Schedule` and instants; no clock, no I/O.

Semantics
---------
* An *interval* is ``[start, end)`` in UTC. For a cron schedule it runs from one fire time to the next;
  for a period schedule interval ``k`` starts at ``start + k * period``.
* Cron expressions and calendar units (days, weeks, months, years) are read in the schedule's
  ``timeZone``; seconds, minutes and hours are absolute durations.
* Daylight saving: a local time that does not exist (spring forward) is moved forward by the gap
  (02:30 becomes 03:30); a local time that happens twice (fall back) runs once, at its first
  occurrence, except for cron expressions whose hour field is a wildcard (``*`` or ``*/n``), which
  fire in both passes of the repeated hour (like Vixie cron). Two fire times never share an instant.
* Months are added to the *first* interval's day and clamped: Jan 31, Feb 28, Mar 31, Apr 30, ...
* ``scheduleType: cron`` makes an interval due at its start; ``timeseries`` at its end.
* ``endDateTime``: no interval starts at or after it. ``occurrences``: that many intervals in all.
* Missed runs: on first activation every interval since the start is backfilled, oldest first (AWS).
  Later, intervals that became due while the operator was down (or while ``maxActiveRuns`` held
  them back) follow ``missedRunPolicy``: ``RunAll`` queues them all, ``RunLatest`` keeps only the
  newest, ``Skip`` drops those due longer ago than a grace period.
"""

from __future__ import annotations

import calendar
import hashlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterBadDateError

from datapipeline.core.durations import Period
from datapipeline.core.limits import DEFAULT_LIMITS
from datapipeline.core.model import Schedule
from datapipeline.core.task import TIME_FORMAT

MAX_NAME = 63
# Local clocks move by at most this much around a DST transition (the largest real shift is 2h).
_DST_SLACK = timedelta(hours=3)
# A run is "missed" (for missedRunPolicy Skip) when it became due longer ago than this.
DEFAULT_MISSED_GRACE = timedelta(minutes=1)
# At most this many runs are created in one scheduling pass.
DEFAULT_BATCH = 100


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime

    def run_time(self, schedule_type: str) -> datetime:
        """When a run of this interval becomes due: its start (cron) or its end (timeseries)."""
        return self.end if schedule_type == "timeseries" else self.start


class ScheduleError(ValueError):
    pass


# What datetime arithmetic raises past the year 9999 (or before year 1): the end of every schedule.
_END_OF_TIME = (OverflowError, ValueError)


# ---------------------------------------------------------------------------- time zone helpers
def to_utc_local(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone`` as a UTC instant: gaps move forward, repeated times take the first."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _both_folds(naive: datetime, zone: ZoneInfo) -> list[datetime]:
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # fold=1 is later than fold=0 only for a repeated (ambiguous) wall time.
    return [first, second] if second > first else [first]


def _slack(naive: datetime, zone: ZoneInfo) -> timedelta:
    """How far local and UTC order may disagree near ``naive``: the DST shift within a few hours, else 0."""
    before = (naive - _DST_SLACK).replace(tzinfo=zone).utcoffset() or timedelta(0)
    after = (naive + _DST_SLACK).replace(tzinfo=zone).utcoffset() or timedelta(0)
    return abs(after - before) + (timedelta(hours=1) if after != before else timedelta(0))


def _local_naive(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# ---------------------------------------------------------------------------- cron
def cron_fields(expression: str) -> list[str]:
    return expression.split()


def _hour_is_wildcard(expression: str) -> bool:
    fields = cron_fields(expression)
    hour = fields[2] if len(fields) == 6 else fields[1] if len(fields) > 1 else ""
    return hour.startswith("*")


def cron_fire_times(expression: str, zone_name: str, after: datetime, inclusive: bool = True) -> Iterator[datetime]:
    """Fire times of a cron expression (5 fields, or 6 with seconds first) at or after ``after``, in UTC."""
    zone = ZoneInfo(zone_name)
    after = _utc(after)
    six = len(cron_fields(expression)) == 6
    both = _hour_is_wildcard(expression)
    try:
        origin = _local_naive(after, zone)
        origin -= _slack(origin, zone)
        it = croniter(expression, origin - timedelta(microseconds=1), second_at_beginning=six)
    except (OverflowError, CroniterBadDateError):
        return  # at the end of representable time (year 9999) no schedule fires
    except (ValueError, KeyError) as error:
        raise ScheduleError(f"bad cron expression {expression!r}: {error}") from error
    heap: list[datetime] = []
    last: datetime | None = None
    while True:
        try:
            naive = it.get_next(datetime)
            candidates = _both_folds(naive, zone) if both else [to_utc_local(naive, zone)]
            # Anything later from croniter is at least this late in UTC.
            floor = to_utc_local(naive, zone) - _slack(naive, zone)
        except (CroniterBadDateError, OverflowError, ValueError):
            break
        for candidate in candidates:
            heapq.heappush(heap, candidate)
        while heap and heap[0] < floor:
            moment = heapq.heappop(heap)
            if (moment < after if inclusive else moment <= after) or (last is not None and moment <= last):
                continue
            last = moment
            yield moment
    while heap:
        moment = heapq.heappop(heap)
        if (moment < after if inclusive else moment <= after) or (last is not None and moment <= last):
            continue
        last = moment
        yield moment


# ---------------------------------------------------------------------------- periods
def add_months(moment: datetime, months: int, day: int | None = None) -> datetime:
    """``moment`` plus whole months, clamped to the month's last day (``day`` is the day wanted)."""
    wanted = day or moment.day
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(wanted, last))


def period_start(schedule_start: datetime, period: Period, index: int, zone_name: str) -> datetime:
    """Start of interval ``index`` (0-based) of a period schedule beginning at ``schedule_start``."""
    start = _utc(schedule_start)
    if period.unit in ("seconds", "minutes", "hours"):
        return start + period.as_timedelta() * index
    zone = ZoneInfo(zone_name)
    local = _local_naive(start, zone)
    if period.unit in ("days", "weeks"):
        return to_utc_local(local + period.as_timedelta() * index, zone)
    months = period.count * index * (12 if period.unit == "years" else 1)
    return to_utc_local(add_months(local, months, local.day), zone)


def _period_index_at_or_after(schedule_start: datetime, period: Period, moment: datetime, zone_name: str) -> int:
    """The smallest index whose interval starts at or after ``moment``."""
    if moment <= schedule_start:
        return 0
    if period.unit in ("seconds", "minutes", "hours"):
        size = period.as_timedelta()
        index = int((moment - schedule_start) // size)
    else:
        approx = {"days": 86400, "weeks": 7 * 86400, "months": 28 * 86400, "years": 365 * 86400}[period.unit]
        index = max(0, int((moment - schedule_start).total_seconds() // (approx * period.count)) - 2)
        if period.unit == "months":
            index = max(0, int((moment - schedule_start).total_seconds() // (31 * 86400 * period.count)) - 1)
    while index > 0 and period_start(schedule_start, period, index - 1, zone_name) >= moment:
        index -= 1
    while period_start(schedule_start, period, index, zone_name) < moment:
        index += 1
    return index


# ---------------------------------------------------------------------------- intervals
def effective_start(schedule: Schedule, activated_at: datetime | None) -> datetime | None:
    """The schedule's start: startDateTime, or the first activation (startAt FIRST_ACTIVATION_DATE_TIME)."""
    if schedule.start is not None:
        return _utc(schedule.start)
    return _utc(activated_at) if activated_at is not None else None


def _boundaries(schedule: Schedule, start: datetime, after: datetime) -> Iterator[datetime]:
    """Interval starts (UTC, increasing) at or after ``max(start, after)``, ignoring end/occurrences."""
    lower = max(start, after)
    if schedule.cron:
        yield from cron_fire_times(schedule.cron, schedule.time_zone, lower)
        return
    if schedule.period is None:
        raise ScheduleError("a schedule needs cron or period")
    try:
        index = _period_index_at_or_after(start, schedule.period, lower, schedule.time_zone)
    except _END_OF_TIME:
        return  # ``lower`` is past the last interval a datetime can hold
    previous: datetime | None = None
    while True:
        try:
            moment = period_start(start, schedule.period, index, schedule.time_zone)
        except _END_OF_TIME:
            return  # every schedule ends with the year 9999
        if previous is None or moment > previous:
            yield moment
            previous = moment
        index += 1


def _limit(schedule: Schedule, start: datetime) -> datetime | None:
    """The instant no interval may start at or after (from endDateTime or occurrences)."""
    if schedule.end is not None:
        return _utc(schedule.end)
    if schedule.occurrences is None:
        return None
    if schedule.period is not None and not schedule.cron:
        try:  # period starts strictly increase with their index: the first one too many is direct
            return period_start(start, schedule.period, schedule.occurrences, schedule.time_zone)
        except _END_OF_TIME:
            return None
    return _nth_boundary(schedule, start, schedule.occurrences)


@lru_cache(maxsize=256)
def _nth_boundary(schedule: Schedule, start: datetime, count: int) -> datetime | None:
    """The boundary after ``count`` intervals (cron schedules must count; the parser bounds ``count``)."""
    for seen, moment in enumerate(_boundaries(schedule, start, start), start=1):
        if seen > count:
            return moment
    return None  # the schedule stops firing (or time ends) first


def intervals(schedule: Schedule, start: datetime, after: datetime | None = None,
              until: datetime | None = None) -> Iterator[Interval]:
    """Intervals whose start lies in ``[after, until)`` (``after`` defaults to the schedule start).

    The last interval before ``endDateTime`` ends at the next boundary (its full length), like AWS.
    """
    start = _utc(start)
    lower = start if after is None else max(start, _utc(after))
    limit = _limit(schedule, start)
    stream = _boundaries(schedule, start, lower)
    try:
        current = next(stream)
    except StopIteration:
        return
    for following in stream:
        if limit is not None and current >= limit:
            return
        if until is not None and current >= _utc(until):
            return
        yield Interval(current, following)
        current = following


def interval_at(schedule: Schedule, start: datetime, scheduled_start: datetime) -> Interval | None:
    """The interval that starts exactly at ``scheduled_start``, if the schedule has one."""
    for interval in intervals(schedule, start, after=scheduled_start):
        return interval if interval.start == _utc(scheduled_start) else None
    return None


# ---------------------------------------------------------------------------- what is due
@dataclass(frozen=True)
class SchedulePlan:
    create: tuple[Interval, ...]  # runs to create now, oldest first
    skipped: tuple[Interval, ...]  # missed intervals dropped by missedRunPolicy
    cursor: datetime | None  # the new lastScheduledTime (start of the newest interval created or skipped)
    next_run_time: datetime | None  # when the next not-yet-created interval becomes due
    waiting: int  # due intervals held back by maxActiveRuns (queue depth)
    finished: bool  # the schedule has no interval left


def plan(schedule: Schedule, schedule_type: str, *, start: datetime, cursor: datetime | None, now: datetime,
         missed_run_policy: str = "RunAll", active_runs: int = 0, max_active_runs: int = 1,
         grace: timedelta = DEFAULT_MISSED_GRACE, batch: int = DEFAULT_BATCH,
         max_intervals: int = DEFAULT_LIMITS.max_intervals_per_pass) -> SchedulePlan:
    """Decide which intervals to turn into runs now.

    ``cursor`` is the scheduled start of the newest interval already created or skipped (None on first
    activation: then every due interval since ``start`` is backfilled whatever the policy).

    One pass looks at ``max_intervals`` due intervals at most. A longer backlog (a one-second schedule
    after a month down) is worked through over several passes: the cursor moves past what this pass
    skipped, and ``next_run_time`` is the next due interval, so the next pass comes at once. Under
    ``RunLatest`` no interval of a backlog is the latest, so all of them are skipped.
    """
    now = _utc(now)
    lower = start if cursor is None else _utc(cursor) + timedelta(microseconds=1)
    due: list[Interval] = []
    upcoming: Interval | None = None
    backlog: Interval | None = None  # the first due interval this pass does not look at
    dropped: list[Interval] = []  # missed intervals beyond what is kept in memory (RunLatest/Skip)
    for seen, interval in enumerate(intervals(schedule, start, after=lower)):
        if interval.run_time(schedule_type) > now:
            upcoming = interval
            break
        if seen >= max_intervals:
            backlog = interval
            break
        due.append(interval)
        if missed_run_policy == "RunAll" or cursor is None:
            if len(due) > batch:  # enough for this pass; the rest come in the next ones
                break
        elif len(due) > 4 * batch:
            dropped.extend(due[:-batch])
            del due[:-batch]
    skipped: list[Interval] = []
    if cursor is not None and due:
        if missed_run_policy == "RunLatest" and backlog is not None:
            skipped, due = [*dropped, *due], []
        elif missed_run_policy == "RunLatest" and len(due) > 1:
            skipped, due = [*dropped, *due[:-1]], due[-1:]
        elif missed_run_policy == "Skip":
            kept = [i for i in due if now - i.run_time(schedule_type) <= grace]
            skipped = [*dropped, *(i for i in due if now - i.run_time(schedule_type) > grace)]
            due = kept
    room = max(0, min(batch, max_active_runs - active_runs))
    create = due[:room]
    waiting = len(due) - len(create)
    newest = [i.start for i in (*skipped, *create)]
    # The cursor passes skipped intervals only up to the first interval still held back.
    if waiting and skipped:
        held = due[len(create)].start
        newest = [m for m in newest if m < held]
    new_cursor: datetime | None = max(newest) if newest else cursor
    next_run: datetime | None
    following = backlog or upcoming
    if waiting:
        next_run = due[len(create)].run_time(schedule_type)
    else:
        next_run = following.run_time(schedule_type) if following else None
    return SchedulePlan(create=tuple(create), skipped=tuple(skipped), cursor=new_cursor,
                        next_run_time=next_run, waiting=waiting, finished=following is None and not waiting)


def backfill_intervals(schedule: Schedule, start: datetime, range_from: datetime, range_to: datetime,
                       limit: int = 10_000) -> list[Interval]:
    """Intervals whose start lies in ``[range_from, range_to)``, oldest first (``datapipeline backfill``)."""
    if _utc(range_to) <= _utc(range_from):
        raise ScheduleError("the backfill range is empty: --to must be after --from")
    found: list[Interval] = []
    for interval in intervals(schedule, start, after=range_from, until=range_to):
        found.append(interval)
        if len(found) > limit:
            raise ScheduleError(f"the backfill range holds more than {limit} intervals")
    return found


# ---------------------------------------------------------------------------- names
def format_stamp(moment: datetime) -> str:
    """``20261121t0300z`` (seconds added only when not zero: ``20261121t030005z``)."""
    moment = _utc(moment)
    text = moment.strftime("%Y%m%dt%H%M")
    if moment.second or moment.microsecond:
        text += moment.strftime("%S")
    return text + "z"


def parse_stamp(text: str) -> datetime:
    body = text.rstrip("z")
    fmt = "%Y%m%dt%H%M%S" if len(body) == 15 else "%Y%m%dt%H%M"
    return datetime.strptime(body, fmt).replace(tzinfo=UTC)


def shorten(name: str, limit: int = MAX_NAME) -> str:
    """``name`` if it fits, else its head plus a stable hash; always a valid DNS label of <= limit chars."""
    name = name.lower()
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = name[: limit - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}"


def run_name(pipeline: str, scheduled_start: datetime, kind: str = "") -> str:
    """Deterministic PipelineRun name: ``daily-20261121t0300z`` (``daily-manual-...`` for a kind)."""
    suffix = f"{kind}-{format_stamp(scheduled_start)}" if kind else format_stamp(scheduled_start)
    room = MAX_NAME - len(suffix) - 1
    head = pipeline if len(pipeline) <= room else shorten(pipeline, room)
    return f"{head}-{suffix}"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, second precision (microseconds when present)."""
    moment = _utc(moment)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


def describe(schedule: Schedule | None, schedule_type: str) -> str:
    """The schedule in a few words, for the Pipeline's printer column."""
    if schedule is None or schedule_type == "ondemand":
        return "on demand"
    what = f"cron {schedule.cron}" if schedule.cron else f"every {schedule.period}"
    if schedule.time_zone != "UTC":
        what += f" {schedule.time_zone}"
    return what + (" (timeseries)" if schedule_type == "timeseries" else "")
