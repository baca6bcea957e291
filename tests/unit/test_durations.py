"""Durations and periods as users write them: AWS words ("15 minutes") and the short form ("1h30m")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datapipeline.core.durations import (
    MAX_DAYS,
    DurationError,
    Period,
    format_duration,
    parse_duration,
    parse_period,
)


@pytest.mark.parametrize(("text", "period"), [
    ("15 minutes", Period(15, "minutes")),
    ("15 Minutes", Period(15, "minutes")),
    ("1 minute", Period(1, "minutes")),
    ("2 hours", Period(2, "hours")),
    ("1 Hour", Period(1, "hours")),
    ("1 hours", Period(1, "hours")),  # AWS's own samples write this
    ("1 day", Period(1, "days")),
    ("3 Days", Period(3, "days")),
    ("1 week", Period(1, "weeks")),
    ("1 month", Period(1, "months")),
    ("3 months", Period(3, "months")),
    ("1 year", Period(1, "years")),
    ("30 seconds", Period(30, "seconds")),
    ("  15   min ", Period(15, "minutes")),
    ("15min", Period(15, "minutes")),
    ("10 mins", Period(10, "minutes")),
    ("45 secs", Period(45, "seconds")),
    ("2 h", Period(2, "hours")),
    ("1 d", Period(1, "days")),
    ("1 w", Period(1, "weeks")),
    ("90s", Period(90, "seconds")),
    ("1h30m", Period(5400, "seconds")),
    ("1d", Period(1, "days")),
])
def test_parse_period(text: str, period: Period) -> None:
    assert parse_period(text) == period


@pytest.mark.parametrize(("text", "message"), [
    ("1 fortnight", 'unknown unit "fortnight" in "1 fortnight"; use seconds, minutes, hours, days, weeks, months '
                    "or years"),
    ("0 days", '"0 days" must be greater than zero'),
    ("0s", '"0s" must be greater than zero'),
    ("daily", '"daily" is not a duration; write it like "15 minutes", "2 hours" or "1h30m"'),
    ("", '"" is not a duration'),
    ("-1 day", '"-1 day" is not a duration'),
    ("1.5 hours", '"1.5 hours" is not a duration'),
    ("1 day 2 hours", '"1 day 2 hours" is not a duration'),
    ("101 years", '"101 years" is too long; at most 100 years'),
    ("99999999999999 seconds", "is too long"),
    ("9999999999d", "is too long"),
])
def test_bad_periods(text: str, message: str) -> None:
    with pytest.raises(DurationError) as error:
        parse_period(text)
    assert message in str(error.value)


def test_a_period_that_is_not_text() -> None:
    with pytest.raises(DurationError, match="is not a duration"):
        parse_period(15)  # type: ignore[arg-type]


def test_period_words_and_units() -> None:
    assert str(Period(1, "days")) == "1 day"
    assert str(Period(15, "minutes")) == "15 minutes"
    assert Period(1, "months").is_calendar and Period(2, "years").is_calendar
    assert not Period(1, "weeks").is_calendar
    assert Period(2, "weeks").as_timedelta() == timedelta(days=14)
    with pytest.raises(DurationError, match="calendar period"):
        Period(1, "months").as_timedelta()


@pytest.mark.parametrize(("value", "delta"), [
    ("10 minutes", timedelta(minutes=10)),
    ("2 Hours", timedelta(hours=2)),
    ("1 week", timedelta(weeks=1)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("45s", timedelta(seconds=45)),
    ("2d12h", timedelta(days=2, hours=12)),
    (600, timedelta(minutes=10)),
    (1.5, timedelta(seconds=1.5)),
])
def test_parse_duration(value: str | int | float, delta: timedelta) -> None:
    assert parse_duration(value) == delta


@pytest.mark.parametrize(("value", "message"), [
    ("1 month", '"1 month" is a calendar period; use days or weeks for a duration'),
    ("2 years", "calendar period"),
    ("soon", '"soon" is not a duration'),
    (0, "0 seconds is not a duration: it must be greater than zero"),
    (-5, "must be greater than zero"),
    (float("nan"), "is not a duration"),
    (float("inf"), "is not a duration"),
    (10**12, "at most 100 years"),
    (True, "True is not a duration"),
    (None, "None is not a duration"),
    (["10 minutes"], "is not a duration"),
])
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(DurationError) as error:
        parse_duration(value)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_format_duration() -> None:
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(seconds=45)) == "45s"
    assert format_duration(timedelta(days=2)) == "2d"
    assert format_duration(timedelta(0)) == "0s"


@given(st.integers(min_value=1, max_value=MAX_DAYS * 86400))
def test_format_and_parse_round_trip(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


@given(st.integers(min_value=1, max_value=5_000), st.sampled_from(["seconds", "minutes", "hours", "days", "weeks"]))
def test_aws_words_agree_with_timedelta(count: int, unit: str) -> None:
    assert parse_duration(f"{count} {unit}") == timedelta(**{unit: count})
    assert parse_period(f"{count} {unit}").as_timedelta() == timedelta(**{unit: count})
