"""Durations as users write them: AWS's "10 minutes" or Kubernetes-style "1h30m"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_UNITS = {
    "second": "seconds", "seconds": "seconds", "s": "seconds", "sec": "seconds", "secs": "seconds",
    "minute": "minutes", "minutes": "minutes", "m": "minutes", "min": "minutes", "mins": "minutes",
    "hour": "hours", "hours": "hours", "h": "hours",
    "day": "days", "days": "days", "d": "days",
    "week": "weeks", "weeks": "weeks", "w": "weeks",
    "month": "months", "months": "months",
    "year": "years", "years": "years",
}
_AWS_FORM = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_SHORT_FORM = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# Longest period or duration accepted; anything larger is a typo (and would overflow timedelta).
MAX_DAYS = 100 * 366


class DurationError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    """A schedule period. Months and years are calendar units, so they are not a timedelta."""

    count: int
    unit: str  # seconds | minutes | hours | days | weeks | months | years

    def __str__(self) -> str:
        unit = self.unit if self.count != 1 else self.unit[:-1]
        return f"{self.count} {unit}"

    @property
    def is_calendar(self) -> bool:
        return self.unit in ("months", "years")

    def as_timedelta(self) -> timedelta:
        if self.is_calendar:
            raise DurationError(f"{self} is a calendar period, not a fixed duration")
        return timedelta(**{self.unit: self.count})


def parse_period(text: str) -> Period:
    """Parse "15 minutes", "1 day", "2 weeks", "1 month" (and "90s", "1h")."""
    if not isinstance(text, str):
        raise DurationError(f'{text!r} is not a duration; write it like "15 minutes", "2 hours" or "1h30m"')
    match = _AWS_FORM.match(text)
    if match:
        count, unit_word = _count(match.group(1)), match.group(2).lower()
        unit = _UNITS.get(unit_word)
        if unit is None:
            raise DurationError(
                f'unknown unit "{match.group(2)}" in {_shown(text)}; use seconds, minutes, hours, days, weeks, months '
                "or years"
            )
        if count <= 0:
            raise DurationError(f'{_shown(text)} must be greater than zero')
        period = Period(count, unit)
        if _days(period) > MAX_DAYS:
            raise DurationError(f'{_shown(text)} is too long; at most {MAX_DAYS // 366} years')
        return period
    delta = _parse_short(text)
    if delta is None:
        raise DurationError(f'{_shown(text)} is not a duration; write it like "15 minutes", "2 hours" or "1h30m"')
    return Period(int(delta.total_seconds()), "seconds")


def _shown(text: str) -> str:
    """The text quoted for a message, shortened when long."""
    return f'"{text}"' if len(text) <= 60 else f'"{text[:57]}..." ({len(text)} characters)'


def _count(digits: str) -> int:
    """The number written; any number past 18 digits is far beyond MAX_DAYS in every unit, so it counts as
    10**18 (Python refuses to convert more than 4300 digits, and nothing needs them)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 18 else 10**18


def _days(period: Period) -> float:
    per_unit = {"seconds": 1 / 86400, "minutes": 1 / 1440, "hours": 1 / 24, "days": 1, "weeks": 7, "months": 30.5,
                "years": 365.25}
    return period.count * per_unit[period.unit]


def parse_duration(text: str | int | float) -> timedelta:
    """Parse a fixed duration ("10 minutes", "2 hours", "1h30m", "45s"); a bare number is seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not (0 < text <= MAX_DAYS * 86400):  # also false for NaN
            raise DurationError(f"{text} seconds is not a duration: it must be greater than zero and at most "
                                f"{MAX_DAYS // 366} years")
        return timedelta(seconds=text)
    if not isinstance(text, str):
        raise DurationError(f'{text!r} is not a duration; write it like "10 minutes", "2 hours" or "1h30m"')
    short = _parse_short(text)
    if short is not None:
        return short
    period = parse_period(text)
    if period.is_calendar:
        raise DurationError(f'{_shown(text)} is a calendar period; use days or weeks for a duration')
    return period.as_timedelta()


def _parse_short(text: str) -> timedelta | None:
    match = _SHORT_FORM.match(text.strip())
    if not match or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (_count(g) if g else 0 for g in match.groups())
    if days + (hours / 24) + (minutes / 1440) + (seconds / 86400) > MAX_DAYS:
        raise DurationError(f'{_shown(text)} is too long; at most {MAX_DAYS // 366} years')
    delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if delta <= timedelta(0):
        raise DurationError(f'{_shown(text)} must be greater than zero')
    return delta


def format_duration(delta: timedelta) -> str:
    """The short form: 1h30m, 45s, 2d."""
    total = int(delta.total_seconds())
    parts = []
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if total >= size:
            parts.append(f"{total // size}{suffix}")
            total %= size
    return "".join(parts) or "0s"
