"""Scheduling as pure functions: intervals, DST, month ends, due runs, missed-run policies, names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

import pytest

from datapipeline.core.durations import parse_period
from datapipeline.core.model import Schedule
from datapipeline.core.schedule import (
    Interval,
    ScheduleError,
    add_months,
    backfill_intervals,
    cron_fire_times,
    format_stamp,
    format_time,
    interval_at,
    intervals,
    parse_stamp,
    parse_time,
    plan,
    run_name,
    shorten,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def starts(schedule: Schedule, start: datetime, n: int) -> list[datetime]:
    return [i.start for i in islice(intervals(schedule, start), n)]


# ---------------------------------------------------------------------------- cron
def test_cron_daily_utc() -> None:
    s = Schedule(cron="0 3 * * *")
    got = list(islice(intervals(s, utc(2026, 11, 20, 12)), 2))
    assert got == [Interval(utc(2026, 11, 21, 3), utc(2026, 11, 22, 3)),
                   Interval(utc(2026, 11, 22, 3), utc(2026, 11, 23, 3))]


def test_cron_start_on_a_fire_time_is_included() -> None:
    s = Schedule(cron="0 3 * * *")
    assert starts(s, utc(2026, 11, 21, 3), 1) == [utc(2026, 11, 21, 3)]


def test_cron_with_seconds() -> None:
    s = Schedule(cron="*/10 * * * * *")
    assert starts(s, utc(2026, 1, 1, 0, 0, 5), 3) == [utc(2026, 1, 1, 0, 0, 10), utc(2026, 1, 1, 0, 0, 20),
                                                      utc(2026, 1, 1, 0, 0, 30)]


def test_cron_in_time_zone_follows_local_clock_across_dst() -> None:
    # 09:00 in Berlin: 08:00 UTC in winter, 07:00 UTC in summer (DST starts 2026-03-29).
    s = Schedule(cron="0 9 * * *", time_zone="Europe/Berlin")
    got = starts(s, utc(2026, 3, 27), 4)
    assert got == [utc(2026, 3, 27, 8), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]


def test_cron_spring_forward_gap_time_runs_once_shifted() -> None:
    # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
    s = Schedule(cron="30 2 * * *", time_zone="America/New_York")
    got = starts(s, utc(2026, 3, 7), 3)
    assert got == [utc(2026, 3, 7, 7, 30),  # 02:30 EST
                   utc(2026, 3, 8, 7, 30),  # "02:30" -> 03:30 EDT = 07:30 UTC
                   utc(2026, 3, 9, 6, 30)]  # 02:30 EDT


def test_cron_fall_back_fixed_hour_runs_once() -> None:
    # New York, 2026-11-01: 01:00-02:00 happens twice. A fixed-hour job runs once (first pass).
    s = Schedule(cron="30 1 * * *", time_zone="America/New_York")
    got = starts(s, utc(2026, 10, 31), 3)
    assert got == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_cron_fall_back_wildcard_hour_fires_in_both_passes() -> None:
    s = Schedule(cron="0,30 * * * *", time_zone="America/New_York")
    got = starts(s, utc(2026, 11, 1, 4, 30), 6)  # 00:30 EDT
    assert got == [utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30),
                   utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 7, 0)]
    assert got == sorted(set(got))


def test_cron_spring_forward_wildcard_has_no_duplicates() -> None:
    s = Schedule(cron="*/30 * * * *", time_zone="America/New_York")
    got = [i.start for i in intervals(s, utc(2026, 3, 8, 5), until=utc(2026, 3, 8, 9))]
    # 00:00 EST (05:00) .. 01:30 EST, then 03:00 EDT (07:00 UTC): the hour 02:xx does not exist.
    assert got == [utc(2026, 3, 8, 5), utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 6), utc(2026, 3, 8, 6, 30),
                   utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8), utc(2026, 3, 8, 8, 30)]


def test_cron_interval_ends_at_next_fire() -> None:
    s = Schedule(cron="0 9 * * 1-5")
    friday = next(iter(intervals(s, utc(2026, 11, 20))))
    assert friday == Interval(utc(2026, 11, 20, 9), utc(2026, 11, 23, 9))  # to Monday


def test_cron_that_never_fires_yields_nothing() -> None:
    assert list(cron_fire_times("0 0 30 2 *", "UTC", utc(2026, 1, 1))) == []
    assert list(intervals(Schedule(cron="0 0 30 2 *"), utc(2026, 1, 1))) == []


def test_cron_fire_times_exclusive() -> None:
    got = list(islice(cron_fire_times("0 * * * *", "UTC", utc(2026, 1, 1, 1), inclusive=False), 1))
    assert got == [utc(2026, 1, 1, 2)]


# ---------------------------------------------------------------------------- periods
def test_period_minutes() -> None:
    s = Schedule(period=parse_period("15 minutes"))
    assert starts(s, utc(2026, 1, 1, 0, 7), 3) == [utc(2026, 1, 1, 0, 7), utc(2026, 1, 1, 0, 22),
                                                   utc(2026, 1, 1, 0, 37)]


def test_period_month_end_clamps_without_drift() -> None:
    s = Schedule(period=parse_period("1 month"))
    assert starts(s, utc(2026, 1, 31, 6), 5) == [utc(2026, 1, 31, 6), utc(2026, 2, 28, 6), utc(2026, 3, 31, 6),
                                                 utc(2026, 4, 30, 6), utc(2026, 5, 31, 6)]


def test_period_month_end_leap_year() -> None:
    s = Schedule(period=parse_period("1 month"))
    assert starts(s, utc(2028, 1, 30), 3) == [utc(2028, 1, 30), utc(2028, 2, 29), utc(2028, 3, 30)]


def test_period_years_feb_29() -> None:
    s = Schedule(period=parse_period("1 year"))
    assert starts(s, utc(2028, 2, 29), 3) == [utc(2028, 2, 29), utc(2029, 2, 28), utc(2030, 2, 28)]


def test_period_quarter() -> None:
    s = Schedule(period=parse_period("3 months"))
    assert starts(s, utc(2026, 11, 30), 3) == [utc(2026, 11, 30), utc(2027, 2, 28), utc(2027, 5, 30)]


def test_add_months() -> None:
    assert add_months(datetime(2026, 1, 31), 1) == datetime(2026, 2, 28)
    assert add_months(datetime(2026, 12, 15), 1) == datetime(2027, 1, 15)
    assert add_months(datetime(2026, 2, 28), 1, day=31) == datetime(2026, 3, 31)


def test_period_days_keep_local_time_across_dst() -> None:
    s = Schedule(period=parse_period("1 day"), time_zone="Europe/Berlin")
    got = starts(s, utc(2026, 3, 28, 2), 3)  # 03:00 CET
    assert got == [utc(2026, 3, 28, 2), utc(2026, 3, 29, 1), utc(2026, 3, 30, 1)]  # 03:00 CEST


def test_period_hours_are_absolute_across_dst() -> None:
    s = Schedule(period=parse_period("1 hour"), time_zone="Europe/Berlin")
    got = starts(s, utc(2026, 3, 29, 0), 3)
    assert got == [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)]


def test_period_jump_to_a_far_index() -> None:
    s = Schedule(period=parse_period("1 month"))
    got = next(iter(intervals(s, utc(2020, 1, 31), after=utc(2026, 3, 1))))
    assert got == Interval(utc(2026, 3, 31), utc(2026, 4, 30))
    s2 = Schedule(period=parse_period("2 days"))
    got2 = next(iter(intervals(s2, utc(2020, 1, 1), after=utc(2026, 3, 1, 12))))
    assert got2.start >= utc(2026, 3, 1, 12) and got2.start - timedelta(days=2) < utc(2026, 3, 1, 12)


# ---------------------------------------------------------------------------- end and occurrences
def test_end_date_time_excludes_intervals_starting_at_or_after_it() -> None:
    s = Schedule(period=parse_period("1 day"), end=utc(2026, 1, 4))
    got = list(intervals(s, utc(2026, 1, 1)))
    assert [i.start for i in got] == [utc(2026, 1, 1), utc(2026, 1, 2), utc(2026, 1, 3)]
    assert got[-1].end == utc(2026, 1, 4)


def test_occurrences() -> None:
    s = Schedule(cron="0 * * * *", occurrences=3)
    got = list(intervals(s, utc(2026, 1, 1, 0, 30)))
    assert [i.start for i in got] == [utc(2026, 1, 1, 1), utc(2026, 1, 1, 2), utc(2026, 1, 1, 3)]
    later = list(intervals(s, utc(2026, 1, 1, 0, 30), after=utc(2026, 1, 1, 2, 30)))
    assert [i.start for i in later] == [utc(2026, 1, 1, 3)]


def test_interval_at() -> None:
    s = Schedule(cron="0 3 * * *")
    assert interval_at(s, utc(2026, 1, 1), utc(2026, 1, 5, 3)) == Interval(utc(2026, 1, 5, 3), utc(2026, 1, 6, 3))
    assert interval_at(s, utc(2026, 1, 1), utc(2026, 1, 5, 4)) is None


# ---------------------------------------------------------------------------- plan
HOURLY = Schedule(cron="0 * * * *")


def test_plan_first_activation_backfills_oldest_first_bounded_by_max_active_runs() -> None:
    p = plan(HOURLY, "cron", start=utc(2026, 1, 1, 0), cursor=None, now=utc(2026, 1, 1, 4, 30),
             max_active_runs=2, missed_run_policy="Skip")
    assert [i.start for i in p.create] == [utc(2026, 1, 1, 0), utc(2026, 1, 1, 1)]
    assert p.waiting == 3
    assert p.cursor == utc(2026, 1, 1, 1)
    assert p.next_run_time == utc(2026, 1, 1, 2)
    # Two runs still active: nothing more.
    q = plan(HOURLY, "cron", start=utc(2026, 1, 1, 0), cursor=p.cursor, now=utc(2026, 1, 1, 4, 31),
             max_active_runs=2, active_runs=2)
    assert q.create == () and q.waiting == 3 and q.cursor == p.cursor
    # One finished: the next one, in order.
    r = plan(HOURLY, "cron", start=utc(2026, 1, 1, 0), cursor=p.cursor, now=utc(2026, 1, 1, 4, 32),
             max_active_runs=2, active_runs=1)
    assert [i.start for i in r.create] == [utc(2026, 1, 1, 2)]


def test_plan_not_yet_due() -> None:
    p = plan(HOURLY, "cron", start=utc(2026, 1, 1, 0), cursor=utc(2026, 1, 1, 4), now=utc(2026, 1, 1, 4, 59))
    assert p.create == () and p.next_run_time == utc(2026, 1, 1, 5) and not p.finished


def test_plan_timeseries_runs_at_interval_end() -> None:
    p = plan(HOURLY, "timeseries", start=utc(2026, 1, 1, 0), cursor=None, now=utc(2026, 1, 1, 0, 30))
    assert p.create == () and p.next_run_time == utc(2026, 1, 1, 1)
    q = plan(HOURLY, "timeseries", start=utc(2026, 1, 1, 0), cursor=None, now=utc(2026, 1, 1, 1))
    assert [i.start for i in q.create] == [utc(2026, 1, 1, 0)]


def test_plan_missed_run_all() -> None:
    p = plan(HOURLY, "cron", start=utc(2026, 1, 1), cursor=utc(2026, 1, 1, 1), now=utc(2026, 1, 1, 5, 10),
             missed_run_policy="RunAll", max_active_runs=10)
    assert [i.start.hour for i in p.create] == [2, 3, 4, 5] and p.skipped == ()


def test_plan_missed_run_latest() -> None:
    p = plan(HOURLY, "cron", start=utc(2026, 1, 1), cursor=utc(2026, 1, 1, 1), now=utc(2026, 1, 1, 5, 10),
             missed_run_policy="RunLatest", max_active_runs=10)
    assert [i.start.hour for i in p.create] == [5]
    assert [i.start.hour for i in p.skipped] == [2, 3, 4]
    assert p.cursor == utc(2026, 1, 1, 5)


def test_plan_missed_skip_keeps_only_the_one_due_now() -> None:
    p = plan(HOURLY, "cron", start=utc(2026, 1, 1), cursor=utc(2026, 1, 1, 1), now=utc(2026, 1, 1, 5, 0, 20),
             missed_run_policy="Skip", max_active_runs=10)
    assert [i.start.hour for i in p.create] == [5]
    assert [i.start.hour for i in p.skipped] == [2, 3, 4]
    q = plan(HOURLY, "cron", start=utc(2026, 1, 1), cursor=utc(2026, 1, 1, 1), now=utc(2026, 1, 1, 5, 10),
             missed_run_policy="Skip", max_active_runs=10)
    assert q.create == () and q.cursor == utc(2026, 1, 1, 5)


def test_plan_finished_after_end() -> None:
    s = Schedule(cron="0 * * * *", occurrences=2)
    p = plan(s, "cron", start=utc(2026, 1, 1), cursor=utc(2026, 1, 1, 1), now=utc(2026, 1, 2))
    assert p.create == () and p.finished and p.next_run_time is None


def test_plan_batches_huge_catch_up() -> None:
    s = Schedule(cron="* * * * * *")
    p = plan(s, "cron", start=utc(2026, 1, 1), cursor=None, now=utc(2026, 1, 1, 1), max_active_runs=1000, batch=50)
    assert len(p.create) == 50 and p.cursor == utc(2026, 1, 1, 0, 0, 49)


def test_plan_second_level_cron_exact_count() -> None:
    s = Schedule(cron="*/5 * * * * *")
    p = plan(s, "cron", start=utc(2026, 1, 1, 0, 0, 1), cursor=None, now=utc(2026, 1, 1, 0, 0, 30),
             max_active_runs=100)
    assert [i.start.second for i in p.create] == [5, 10, 15, 20, 25, 30]


def test_backfill_intervals() -> None:
    got = backfill_intervals(HOURLY, utc(2025, 1, 1), utc(2026, 1, 1, 2), utc(2026, 1, 1, 5))
    assert [i.start.hour for i in got] == [2, 3, 4]
    with pytest.raises(ScheduleError):
        backfill_intervals(HOURLY, utc(2025, 1, 1), utc(2026, 1, 1, 5), utc(2026, 1, 1, 2))
    with pytest.raises(ScheduleError):
        backfill_intervals(Schedule(cron="* * * * * *"), utc(2025, 1, 1), utc(2026, 1, 1), utc(2026, 1, 2), limit=10)


# ---------------------------------------------------------------------------- names
def test_run_names_are_deterministic_and_short() -> None:
    assert run_name("daily", utc(2026, 11, 21, 3)) == "daily-20261121t0300z"
    assert run_name("fast", utc(2026, 11, 21, 3, 0, 5)) == "fast-20261121t030005z"
    assert run_name("daily", utc(2026, 11, 21, 3), "manual") == "daily-manual-20261121t0300z"
    long = "p" * 53
    name = run_name(long, utc(2026, 11, 21, 3, 0, 5))
    assert len(name) <= 63 and name.endswith("-20261121t030005z")
    assert name == run_name(long, utc(2026, 11, 21, 3, 0, 5))
    assert name != run_name("p" * 52 + "q", utc(2026, 11, 21, 3, 0, 5))


def test_shorten() -> None:
    assert shorten("abc") == "abc"
    s = shorten("a" * 100)
    assert len(s) == 63 and s == shorten("a" * 100)


def test_stamps_and_times_round_trip() -> None:
    for moment in (utc(2026, 11, 21, 3), utc(2026, 11, 21, 3, 0, 5)):
        assert parse_stamp(format_stamp(moment)) == moment
        assert parse_time(format_time(moment)) == moment
    assert format_time(utc(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"
    assert parse_time("2026-01-02T04:04:05+01:00") == utc(2026, 1, 2, 3, 4, 5)
