"""Joda-Time pattern formatting and parsing (datapipeline.core.jodatime)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datapipeline.core.jodatime import (
    Field,
    Literal,
    PatternError,
    compile_pattern,
    format_datetime,
    parse_datetime,
)

# The guide's example instant: May 24, 2011 @ 5:10 pm GMT (a Tuesday, day 144).
MAY24 = datetime(2011, 5, 24, 17, 10, 0, 123456, tzinfo=UTC)

FAST = settings(max_examples=60, deadline=None)
utc_datetimes = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59),
                             timezones=st.just(UTC))


# ------------------------------------------------------------ compile_pattern


def test_compile_splits_runs_of_letters_and_literals() -> None:
    assert compile_pattern("yyyy-MM-dd'T'HH") == (
        Field("y", 4, 0), Literal("-"), Field("M", 2, 5), Literal("-"), Field("d", 2, 8),
        Literal("T"), Field("H", 2, 13),
    )


def test_compile_merges_adjacent_literal_text() -> None:
    assert compile_pattern("HH' h ', ") == (Field("H", 2, 0), Literal(" h , "))


@pytest.mark.parametrize("letter", list("bcfgijlnoqrtuvABFIJLNOPQRTUVWX"))
def test_letters_joda_does_not_know_are_errors(letter: str) -> None:
    with pytest.raises(PatternError, match=rf'illegal pattern letter "{letter}" at position 6'):
        compile_pattern(f"yyyy-{letter}")


def test_pattern_error_is_a_value_error_and_names_the_pattern() -> None:
    with pytest.raises(ValueError, match=r'of pattern "YYYY-MM-dd hh o\'clock"'):
        compile_pattern("YYYY-MM-dd hh o'clock")


# ------------------------------------------------------------ format: the guide's examples


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # 'hh' is the clock hour 1-12 in Joda: the guide's own example prints 17:10 as 05:10.
        ("YYYY-MM-dd hh:mm:ss", "2011-05-24 05:10:00"),
        ("YYYY-MM-dd HH:mm:ss z", "2011-05-24 17:10:00 UTC"),
        ("YYYY-MM-dd-HH-mm-ss", "2011-05-24-17-10-00"),
        ("YYYY-MM-dd_HHmmss", "2011-05-24_171000"),
        ("YYYY-MM-dd", "2011-05-24"),
        ("YYYY-MM-dd-hh:mm", "2011-05-24-05:10"),
    ],
)
def test_guide_patterns(pattern: str, expected: str) -> None:
    assert format_datetime(MAY24, pattern) == expected


# ------------------------------------------------------------ format: each letter


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("G", "AD"),
        ("GGGG", "AD"),
        ("C", "20"),
        ("CCC", "020"),
        ("y", "2011"),
        ("yy", "11"),
        ("yyy", "2011"),
        ("yyyy", "2011"),
        ("yyyyyy", "002011"),
        ("Y", "2011"),
        ("YY", "11"),
        ("YYYY", "2011"),
        ("x", "2011"),
        ("xx", "11"),
        ("w", "21"),
        ("ww", "21"),
        ("e", "2"),
        ("ee", "02"),
        ("E", "Tue"),
        ("EEE", "Tue"),
        ("EEEE", "Tuesday"),
        ("EEEEEE", "Tuesday"),
        ("D", "144"),
        ("DDDD", "0144"),
        ("M", "5"),
        ("MM", "05"),
        ("MMM", "May"),
        ("MMMM", "May"),
        ("d", "24"),
        ("ddd", "024"),
        ("a", "PM"),
        ("aa", "PM"),
        ("K", "5"),
        ("h", "5"),
        ("hh", "05"),
        ("H", "17"),
        ("k", "17"),
        ("m", "10"),
        ("mm", "10"),
        ("s", "0"),
        ("ss", "00"),
        ("S", "1"),
        ("SS", "12"),
        ("SSS", "123"),
        ("SSSSSS", "123000"),  # Joda keeps milliseconds only
        ("z", "UTC"),
        ("zzz", "UTC"),
        ("zzzz", "Coordinated Universal Time"),
        ("Z", "+0000"),
        ("ZZ", "+00:00"),
        ("ZZZ", "UTC"),
    ],
)
def test_each_letter(pattern: str, expected: str) -> None:
    assert format_datetime(MAY24, pattern) == expected


@pytest.mark.parametrize(
    ("hour", "h", "K", "k", "a"),
    [(0, "12", "0", "24", "AM"), (1, "1", "1", "1", "AM"), (11, "11", "11", "11", "AM"),
     (12, "12", "0", "12", "PM"), (13, "1", "1", "13", "PM"), (23, "11", "11", "23", "PM")],
)
def test_hour_fields_around_noon_and_midnight(hour: int, h: str, K: str, k: str, a: str) -> None:
    dt = MAY24.replace(hour=hour)
    assert format_datetime(dt, "h|K|k|a") == f"{h}|{K}|{k}|{a}"


@pytest.mark.parametrize(
    ("month", "short", "full"),
    [(1, "Jan", "January"), (2, "Feb", "February"), (3, "Mar", "March"), (4, "Apr", "April"),
     (5, "May", "May"), (6, "Jun", "June"), (7, "Jul", "July"), (8, "Aug", "August"),
     (9, "Sep", "September"), (10, "Oct", "October"), (11, "Nov", "November"), (12, "Dec", "December")],
)
def test_month_texts(month: int, short: str, full: str) -> None:
    dt = MAY24.replace(month=month, day=1)
    assert format_datetime(dt, "MMM|MMMM") == f"{short}|{full}"


@pytest.mark.parametrize(
    ("day", "short", "full", "number"),
    [(23, "Mon", "Monday", "1"), (24, "Tue", "Tuesday", "2"), (25, "Wed", "Wednesday", "3"),
     (26, "Thu", "Thursday", "4"), (27, "Fri", "Friday", "5"), (28, "Sat", "Saturday", "6"),
     (29, "Sun", "Sunday", "7")],
)
def test_weekday_texts_and_iso_numbers(day: int, short: str, full: str, number: str) -> None:
    assert format_datetime(MAY24.replace(day=day), "E|EEEE|e") == f"{short}|{full}|{number}"


def test_week_based_year_differs_from_calendar_year_at_new_year() -> None:
    # Saturday 2011-01-01 belongs to ISO week 52 of 2010; Monday 2012-12-31 to week 1 of 2013.
    assert format_datetime(datetime(2011, 1, 1, tzinfo=UTC), "xxxx-'W'ww-e yyyy") == "2010-W52-6 2011"
    assert format_datetime(datetime(2012, 12, 31, tzinfo=UTC), "xxxx-'W'ww-e yyyy") == "2013-W01-1 2012"


def test_small_years_are_zero_padded() -> None:
    dt = datetime(5, 3, 4, tzinfo=UTC)
    assert format_datetime(dt, "yyyy|yy|y|C|YYYY") == "0005|05|5|0|0005"


def test_day_of_year_on_leap_year_end() -> None:
    assert format_datetime(datetime(2012, 12, 31, tzinfo=UTC), "D DDD") == "366 366"
    assert format_datetime(datetime(2011, 1, 1, tzinfo=UTC), "D DDD") == "1 001"


# ------------------------------------------------------------ format: literals and quotes


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy-MM-dd'T'HH:mm:ss", "2011-05-24T17:10:00"),
        ("'Year' yyyy", "Year 2011"),
        ("''", "'"),
        ("hh 'o''clock'", "05 o'clock"),
        ("'it''s' HH", "it's 17"),
        ("yyyy''MM", "2011'05"),
        ("'unterminated quote HH", "unterminated quote HH"),  # as in Joda: runs to the end
        ("#?!/\\ :.,_", "#?!/\\ :.,_"),
        ("", ""),
        ("'a b c'", "a b c"),
    ],
)
def test_literals(pattern: str, expected: str) -> None:
    assert format_datetime(MAY24, pattern) == expected


# ------------------------------------------------------------ format: zones


def test_naive_datetime_is_taken_as_utc() -> None:
    assert format_datetime(datetime(2011, 5, 24, 17, 10), "HH:mm Z") == "17:10 +0000"


def test_named_zone() -> None:
    dt = MAY24.astimezone(ZoneInfo("America/Los_Angeles"))
    assert format_datetime(dt, "HH:mm Z|ZZ|ZZZ|z") == "10:10 -0700|-07:00|America/Los_Angeles|PDT"


def test_fixed_offset_zone() -> None:
    dt = MAY24.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert format_datetime(dt, "HH:mm Z|ZZ|ZZZ") == "22:40 +0530|+05:30|+05:30"


def test_zero_fixed_offset_is_utc_as_in_joda() -> None:
    dt = MAY24.astimezone(timezone(timedelta(0)))
    assert format_datetime(dt, "ZZZ z") == "UTC UTC"
    assert format_datetime(MAY24.astimezone(ZoneInfo("Etc/UTC")), "ZZZ z") == "UTC UTC"


# ------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("2011-05-24 17:10:00", "yyyy-MM-dd HH:mm:ss", datetime(2011, 5, 24, 17, 10, tzinfo=UTC)),
        ("2011-05-24", "YYYY-MM-dd", datetime(2011, 5, 24, tzinfo=UTC)),
        ("20110524T171000.123", "yyyyMMdd'T'HHmmss.SSS", datetime(2011, 5, 24, 17, 10, 0, 123000, tzinfo=UTC)),
        ("2011-5-4 5:10 PM", "yyyy-M-d h:mm a", datetime(2011, 5, 4, 17, 10, tzinfo=UTC)),
        ("12:30 am", "hh:mm a", datetime(1970, 1, 1, 0, 30, tzinfo=UTC)),
        ("12:30 PM", "hh:mm a", datetime(1970, 1, 1, 12, 30, tzinfo=UTC)),
        ("24:00", "kk:mm", datetime(1970, 1, 1, 0, 0, tzinfo=UTC)),
        ("11 PM", "K a", datetime(1970, 1, 1, 23, tzinfo=UTC)),
        ("Tuesday, 24 May 2011", "EEEE, d MMMM yyyy", datetime(2011, 5, 24, tzinfo=UTC)),
        ("Tue 24 SEP 2011", "EEE d MMM yyyy", datetime(2011, 9, 24, tzinfo=UTC)),
        ("2011-144", "yyyy-DDD", datetime(2011, 5, 24, tzinfo=UTC)),
        ("2012-366", "yyyy-D", datetime(2012, 12, 31, tzinfo=UTC)),
        ("2011-05-24 17:10 +0100", "yyyy-MM-dd HH:mm Z", datetime(2011, 5, 24, 16, 10, tzinfo=UTC)),
        ("2011-05-24 17:10 -07:00", "yyyy-MM-dd HH:mm ZZ", datetime(2011, 5, 25, 0, 10, tzinfo=UTC)),
        ("2011-05-24 17:10 Z", "yyyy-MM-dd HH:mm ZZ", datetime(2011, 5, 24, 17, 10, tzinfo=UTC)),
        ("2011-05-24 10:10 America/Los_Angeles", "yyyy-MM-dd HH:mm ZZZ",
         datetime(2011, 5, 24, 17, 10, tzinfo=UTC)),
        ("2011-05-24 17:10 UTC", "yyyy-MM-dd HH:mm ZZZ", datetime(2011, 5, 24, 17, 10, tzinfo=UTC)),
        ("AD 2011", "G yyyy", datetime(2011, 1, 1, tzinfo=UTC)),
        ("it's 2011", "'it''s' yyyy", datetime(2011, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse(text: str, pattern: str, expected: datetime) -> None:
    assert parse_datetime(text, pattern) == expected


@pytest.mark.parametrize(("text", "year"), [("11", 2011), ("49", 2049), ("50", 1950), ("99", 1999), ("2011", 2011)])
def test_two_digit_year_falls_in_the_century_around_the_pivot(text: str, year: int) -> None:
    # Joda: a pivot P puts two-digit years in [P-50, P+49].
    assert parse_datetime(text, "yy", two_digit_pivot=2000).year == year


def test_two_digit_year_default_pivot_is_thirty_years_ago() -> None:
    assert parse_datetime("00", "yy").year == 2000
    expected_low = datetime.now(UTC).year - 80
    assert expected_low <= parse_datetime("99", "yy").year < expected_low + 100


@pytest.mark.parametrize(
    ("text", "pattern", "message"),
    [
        ("2011/05/24", "yyyy-MM-dd", r'"2011/05/24" does not match the pattern "yyyy-MM-dd"'),
        ("2011-02-30", "yyyy-MM-dd", r"not a valid date .*day is out of range"),
        ("2011-13-01", "yyyy-MM-dd", r"month must be in 1\.\.12"),
        ("13:00 PM", "hh:mm a", r"clock hour 13 is not in 1\.\.12"),
        ("2011-366", "yyyy-DDD", r"day of year 366 is not in 1\.\.365"),
        ("10:00 Mars/Base", "HH:mm ZZZ", r'unknown time zone "Mars/Base"'),
    ],
)
def test_parse_errors(text: str, pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        parse_datetime(text, pattern)


@pytest.mark.parametrize("pattern", ["HH:mm z", "xxxx", "ww", "e", "C"])
def test_fields_that_cannot_be_parsed(pattern: str) -> None:
    with pytest.raises(PatternError, match="cannot parse"):
        parse_datetime("anything", pattern)


# ------------------------------------------------------------ properties


@FAST
@given(utc_datetimes)
def test_numeric_pattern_matches_strftime(dt: datetime) -> None:
    expected = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    assert format_datetime(dt, "yyyy-MM-dd HH:mm:ss") == expected
    assert format_datetime(dt, "YYYY-MM-dd HH:mm:ss") == expected


@FAST
@given(utc_datetimes)
def test_text_fields_match_python_calendar(dt: datetime) -> None:
    assert format_datetime(dt, "EEEE MMMM") == f"{dt:%A} {dt:%B}"
    assert format_datetime(dt, "EEE MMM") == f"{dt:%a} {dt:%b}"
    assert format_datetime(dt, "hh a") == f"{dt:%I} {dt:%p}"
    assert format_datetime(dt, "DDD") == f"{dt:%j}"


@FAST
@given(utc_datetimes)
def test_week_fields_match_isocalendar(dt: datetime) -> None:
    iso = dt.isocalendar()
    assert format_datetime(dt, "xxxx ww e") == f"{iso.year:04d} {iso.week:02d} {iso.weekday}"


@FAST
@given(utc_datetimes, st.sampled_from([
    "yyyy-MM-dd HH:mm:ss.SSS",
    "yyyyMMddHHmmssSSS",
    "EEEE, d MMMM yyyy hh:mm:ss.SSS a",
    "yyyy-DDD'T'HH:mm:ss.SSSZZ",
    "dd MMM yyyy kk:mm:ss.SSS Z",
    "yyyy.MM.dd G 'at' KK:mm:ss.SSS a ZZZ",
]))
def test_format_then_parse_round_trips_to_the_millisecond(dt: datetime, pattern: str) -> None:
    expected = dt.replace(microsecond=dt.microsecond // 1000 * 1000)
    assert parse_datetime(format_datetime(dt, pattern), pattern) == expected


@FAST
@given(
    # From 1970: before standard time, zones had local mean time offsets with seconds (-07:52:58).
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["America/Los_Angeles", "Asia/Kolkata", "Europe/Paris", "Australia/Eucla"]),
)
def test_round_trip_through_other_zones(dt: datetime, zone: str) -> None:
    pattern = "yyyy-MM-dd'T'HH:mm:ssZZ"
    local = dt.astimezone(ZoneInfo(zone))
    assert parse_datetime(format_datetime(local, pattern), pattern) == dt.replace(microsecond=0)


@FAST
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=20))
def test_any_pattern_compiles_or_raises_pattern_error(pattern: str) -> None:
    try:
        text = format_datetime(MAY24, pattern)
    except PatternError:
        return
    assert isinstance(text, str)
