"""A run's timeline (Gantt): each activity's waiting, attempts and retry delays as bars (pure).

Waiting is from the run's start to the activity's first attempt (dependencies, preconditions, a free
runner); each attempt is a bar coloured by how it ended; a retry delay is the gap between two attempts, or
from the last failed attempt to ``retryAt`` when the next is still to come; the gap before the first attempt
of a rerun (``roundStart``) is the time until someone asked for the rerun.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datapipeline.core.runstate import CANCELED, FAILED, FINISHED, TIMEDOUT, WAITING_FOR_RUNNER, ActivityState
from datapipeline.core.schedule import format_time, parse_time

WAITING, RUNNING_BAR, RETRY_DELAY, UNTIL_RERUN, FAILED_BAR, FINISHED_BAR, CANCELLED_BAR = (
    "waiting", "running", "retry-delay", "until-rerun", "failed", "finished", "cancelled")
BAR_KINDS = (WAITING, RUNNING_BAR, RETRY_DELAY, UNTIL_RERUN, FAILED_BAR, FINISHED_BAR, CANCELLED_BAR)
# An attempt's bar by its status; one whose Job waits for a node or an image is still waiting.
_ATTEMPT_BARS = {FAILED: FAILED_BAR, TIMEDOUT: FAILED_BAR, FINISHED: FINISHED_BAR, CANCELED: CANCELLED_BAR,
                 WAITING_FOR_RUNNER: WAITING}
ROW_HEIGHT, LABEL_WIDTH, MIN_BAR = 24, 150, 2.0


@dataclass(frozen=True)
class Segment:
    kind: str  # one of BAR_KINDS
    start: datetime
    end: datetime
    attempt: int | None = None

    @property
    def title(self) -> str:
        what = f"attempt {self.attempt} {self.kind}" if self.attempt else self.kind
        seconds = int((self.end - self.start).total_seconds())
        return f"{what}: {format_time(self.start)} .. {format_time(self.end)} ({seconds}s)"


@dataclass(frozen=True)
class Bar:
    """A segment placed on the chart, in pixels."""

    x: float
    y: float
    width: float
    kind: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    labels: tuple[tuple[str, float], ...]  # (activity, y of its row's text)
    bars: tuple[Bar, ...]
    start: str
    end: str


def activity_segments(entry: Mapping[str, Any], origin: datetime | None, now: datetime) -> list[Segment]:
    """One activity's bars, from its status entry."""
    state = ActivityState.from_dict(entry)
    attempts = sorted((a for a in state.attempts if a.start is not None), key=lambda a: a.n)
    segments: list[Segment] = []
    if attempts and origin is not None and attempts[0].start is not None and attempts[0].start > origin:
        segments.append(Segment(WAITING, origin, attempts[0].start))
    previous_end: datetime | None = None
    for attempt in attempts:
        assert attempt.start is not None
        if previous_end is not None and attempt.start > previous_end:
            gap = UNTIL_RERUN if attempt.n == state.round_start + 1 else RETRY_DELAY
            segments.append(Segment(gap, previous_end, attempt.start))
        end = attempt.end or now
        segments.append(Segment(_ATTEMPT_BARS.get(attempt.status, RUNNING_BAR), attempt.start, max(end, attempt.start),
                                attempt.n))
        previous_end = attempt.end
    if state.retry_at is not None and previous_end is not None and state.retry_at > previous_end:
        segments.append(Segment(RETRY_DELAY, previous_end, state.retry_at))
    return segments


def run_segments(run: Mapping[str, Any], order: Sequence[str], now: datetime) -> list[tuple[str, list[Segment]]]:
    status = run.get("status") or {}
    activities = status.get("activities") or {}
    origin = _instant(status.get("startTime"))
    return [(name, activity_segments(activities.get(name) or {}, origin, now)) for name in order]


def chart(rows: Sequence[tuple[str, Sequence[Segment]]], width: float = 900.0) -> Chart | None:
    """The bars laid out over ``width`` pixels from the earliest start to the latest end; None with no bar."""
    every = [s for _, segments in rows for s in segments]
    if not every:
        return None
    start = min(s.start for s in every)
    end = max(s.end for s in every)
    span = max((end - start).total_seconds(), 1.0)
    scale = (width - LABEL_WIDTH) / span
    bars, labels = [], []
    for index, (name, segments) in enumerate(rows):
        y = index * ROW_HEIGHT
        labels.append((name, y + ROW_HEIGHT * 0.65))
        for s in segments:
            x = LABEL_WIDTH + (s.start - start).total_seconds() * scale
            bars.append(Bar(round(x, 1), y + 4, round(max((s.end - s.start).total_seconds() * scale, MIN_BAR), 1), s.kind,
                            s.title))
    return Chart(width, len(rows) * ROW_HEIGHT, tuple(labels), tuple(bars), format_time(start), format_time(end))


def _instant(value: Any) -> datetime | None:
    try:
        return parse_time(str(value)) if value else None
    except ValueError:
        return None
