"""Joda-Time ``DateTimeFormat`` patterns: the date format language of AWS Data Pipeline.

AWS Data Pipeline's ``format(dt, pattern)`` passes the pattern to Joda-Time, so
pipelines written for AWS use Joda letters, not ``strftime`` or Java's
``SimpleDateFormat``. The differences matter: in Joda ``YYYY`` is the year of era
(the same number as ``yyyy`` for AD years, not a week-based year as in
``SimpleDateFormat``), ``hh`` is the clock hour 1-12 (so the guide's own example
``'YYYY-MM-dd hh:mm:ss'`` prints 17:10 as ``05:10:00``), ``S`` is a fraction of
a second, and any letter Joda does not know is an error rather than a literal.

Letters (English texts, ISO chronology):

=======  ===========================  ==========  ===============================
Letter   Meaning                      Kind        Examples
=======  ===========================  ==========  ===============================
G        era                          text        AD
C        century of era               number      20
Y        year of era                  year        2011; ``YY``: 11
y        year                         year        2011; ``yy``: 11
x        ISO week-based year          year        2011
w        ISO week of week-based year  number      21
e        ISO day of week (Mon=1)      number      2
E        day of week                  text        Tue; ``EEEE``: Tuesday
D        day of year                  number      144
M        month of year                month       5; ``MM``: 05; May; ``MMMM``: May
d        day of month                 number      24
a        half day                     text        PM
K        hour of half day (0-11)      number      5
h        clock hour of half day 1-12  number      5
H        hour of day (0-23)           number      17
k        clock hour of day (1-24)     number      17
m        minute of hour               number      10
s        second of minute             number      0
S        fraction of second           fraction    ``SSS``: 000 (milliseconds)
z        time zone name               text        UTC; ``zzzz``: Coordinated Universal Time
Z        offset / zone id             zone        ``Z``: +0000; ``ZZ``: +00:00; ``ZZZ``: UTC
'        quotes literal text                      ``'T'``; ``''`` is one quote
=======  ===========================  ==========  ===============================

A number field prints at least as many digits as letters are repeated. Any
character outside a-z/A-Z is copied as is; an unterminated quote runs to the
end of the pattern (as in Joda).

``parse_datetime`` reads text back with a pattern, for the fields that carry a
date or a time (Joda itself cannot parse ``z``, and week-based fields are not
supported here); a time without a zone is UTC.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Field", "Literal", "PatternError", "compile_pattern", "format_datetime", "parse_datetime"]

_LETTERS = frozenset("GCYxweEyDMdaKhHkmsSzZ")
# Spelled out rather than taken from calendar.month_name, which follows the
# process locale: AWS formats with the English locale.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class PatternError(ValueError):
    """A pattern Joda would reject, or text that does not match a pattern."""


@dataclass(frozen=True, slots=True)
class Field:
    """A run of one pattern letter, e.g. ``yyyy`` is ``Field("y", 4)``."""

    letter: str
    count: int
    position: int  # index in the pattern, for error messages


@dataclass(frozen=True, slots=True)
class Literal:
    """Text copied verbatim: punctuation, spaces, or a quoted section."""

    text: str


Token = Field | Literal


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple[Token, ...]:
    """Split a Joda pattern into fields and literals; raises PatternError for unknown letters."""
    tokens: list[Token] = []
    literal: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if _is_letter(c):
            j = i
            while j < n and pattern[j] == c:
                j += 1
            if c not in _LETTERS:
                raise PatternError(
                    f'illegal pattern letter "{c}" at position {i + 1} of pattern "{pattern}" '
                    "(quote literal text, e.g. 'T')"
                )
            if literal:
                tokens.append(Literal("".join(literal)))
                literal = []
            tokens.append(Field(c, j - i, i))
            i = j
        elif c == "'":
            i = _read_quoted(pattern, i + 1, literal)
        else:
            literal.append(c)
            i += 1
    if literal:
        tokens.append(Literal("".join(literal)))
    return tuple(tokens)


def _is_letter(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def _read_quoted(pattern: str, i: int, out: list[str]) -> int:
    """Read after an opening quote; ``''`` is a quote. Returns the index after the closing quote."""
    n = len(pattern)
    if i < n and pattern[i] == "'":  # '' outside a quoted section: one literal quote
        out.append("'")
        return i + 1
    while i < n:
        c = pattern[i]
        if c == "'":
            if i + 1 < n and pattern[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return i + 1
        out.append(c)
        i += 1
    return i  # Joda treats an unterminated quote as running to the end


# ---------------------------------------------------------------- formatting


def format_datetime(value: datetime, pattern: str) -> str:
    """Format an aware datetime (a naive one is taken as UTC) with a Joda pattern."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return "".join(
        token.text if isinstance(token, Literal) else _format_field(value, token)
        for token in compile_pattern(pattern)
    )


def _pad(number: int, width: int) -> str:
    sign = "-" if number < 0 else ""
    return sign + str(abs(number)).zfill(width)


def _format_field(dt: datetime, f: Field) -> str:
    letter, count = f.letter, f.count
    if letter in "yYx":
        year = dt.isocalendar().year if letter == "x" else dt.year
        return _pad(year % 100, 2) if count == 2 else _pad(year, count)
    numbers = {
        "C": lambda: dt.year // 100,
        "w": lambda: dt.isocalendar().week,
        "e": lambda: dt.isoweekday(),
        "D": lambda: dt.timetuple().tm_yday,
        "d": lambda: dt.day,
        "K": lambda: dt.hour % 12,
        "h": lambda: dt.hour % 12 or 12,
        "H": lambda: dt.hour,
        "k": lambda: dt.hour or 24,
        "m": lambda: dt.minute,
        "s": lambda: dt.second,
    }
    if letter in numbers:
        return _pad(numbers[letter](), count)
    if letter == "M":
        if count >= 4:
            return _MONTHS[dt.month - 1]
        return _MONTHS[dt.month - 1][:3] if count == 3 else _pad(dt.month, count)
    if letter == "E":
        name = _WEEKDAYS[dt.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "S":
        # Joda keeps milliseconds: truncate, then show the first `count` digits of the fraction.
        return f"{dt.microsecond // 1000:03d}".ljust(count, "0")[:count]
    if letter == "a":
        return "AM" if dt.hour < 12 else "PM"
    if letter == "G":
        return "AD"
    if letter == "z":
        return _zone_name(dt, full=count >= 4)
    # letter == "Z"
    return _zone_id(dt) if count >= 3 else _offset(dt, colon=count == 2)


def _offset(dt: datetime, *, colon: bool) -> str:
    delta = dt.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


def _is_utc(zone: tzinfo | None) -> bool:
    if isinstance(zone, timezone):  # Joda folds every zero fixed offset into its UTC zone
        return zone.utcoffset(None) == timedelta(0)
    return isinstance(zone, ZoneInfo) and zone.key in ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu")


def _zone_id(dt: datetime) -> str:
    zone = dt.tzinfo
    if _is_utc(zone):
        return "UTC"
    if isinstance(zone, ZoneInfo):
        return zone.key
    return _offset(dt, colon=True)  # Joda's id for a fixed offset zone is "+hh:mm"


def _zone_name(dt: datetime, *, full: bool) -> str:
    if _is_utc(dt.tzinfo):
        return "Coordinated Universal Time" if full else "UTC"
    return dt.tzname() or _offset(dt, colon=True)


# ------------------------------------------------------------------- parsing

_MAX_DIGITS = {"d": 2, "M": 2, "D": 3, "H": 2, "h": 2, "K": 2, "k": 2, "m": 2, "s": 2}
_UNPARSEABLE = {"z": "time zone names cannot be parsed (Joda cannot either)",
                "x": "week-based years are not supported for parsing",
                "w": "week numbers are not supported for parsing",
                "e": "day-of-week numbers are not supported for parsing",
                "C": "centuries are not supported for parsing"}


def parse_datetime(text: str, pattern: str, *, two_digit_pivot: int | None = None) -> datetime:
    """Read ``text`` written with a Joda pattern; returns an aware UTC datetime.

    Fields the pattern lacks default as in Joda (1970-01-01T00:00:00). A two-digit
    year ``yy`` falls in the hundred years around ``two_digit_pivot`` (Joda's
    default pivot is the current year minus 30).
    """
    regex, fields = _parse_regex(pattern)
    match = regex.fullmatch(text)
    if match is None:
        raise PatternError(f'"{text}" does not match the pattern "{pattern}"')
    values = {name: match.group(name) for name in fields}
    try:
        return _build(values, fields, two_digit_pivot)
    except ValueError as exc:
        raise PatternError(f'"{text}" is not a valid date for the pattern "{pattern}": {exc}') from None


def _numeric(token: Token | None) -> bool:
    return isinstance(token, Field) and (token.letter not in "MEaGzZ" or (token.letter == "M" and token.count < 3))


@lru_cache(maxsize=128)
def _parse_regex(pattern: str) -> tuple[re.Pattern[str], dict[str, Field]]:
    tokens = compile_pattern(pattern)
    parts: list[str] = []
    fields: dict[str, Field] = {}
    for index, token in enumerate(tokens):
        if isinstance(token, Literal):
            parts.append(re.escape(token.text))
            continue
        if token.letter in _UNPARSEABLE:
            raise PatternError(f'cannot parse with pattern "{pattern}": {_UNPARSEABLE[token.letter]}')
        group = f"g{index}"
        # Adjacent numbers (yyyyMMdd) can only be told apart by width, as in Joda.
        fixed = _numeric(tokens[index + 1]) if index + 1 < len(tokens) else False
        parts.append(f"(?P<{group}>{_field_regex(token, fixed)})")
        fields[group] = token
    return re.compile("".join(parts), re.IGNORECASE), fields


def _field_regex(f: Field, fixed_width: bool) -> str:
    letter, count = f.letter, f.count
    if letter in "yY":
        return rf"\d{{{count}}}" if fixed_width else r"[+-]?\d{1,9}"
    if letter == "M" and count >= 3:
        return "|".join(sorted((*_MONTHS, *(m[:3] for m in _MONTHS)), key=len, reverse=True))
    if letter == "E":
        return "|".join(sorted((*_WEEKDAYS, *(d[:3] for d in _WEEKDAYS)), key=len, reverse=True))
    if letter == "a":
        return "AM|PM"
    if letter == "G":
        return "AD|CE"
    if letter == "S":
        return rf"\d{{{count}}}" if fixed_width else r"\d{1,9}"
    if letter == "Z":
        return r"Z|[+-]\d{2}:?\d{2}" if count < 3 else r"[A-Za-z_]+(?:/[A-Za-z_+-]+)*|[+-]\d{2}:\d{2}"
    maximum = _MAX_DIGITS[letter]
    return rf"\d{{{count}}}" if fixed_width and count > 1 else rf"\d{{1,{maximum}}}"


def _build(values: dict[str, str], fields: dict[str, Field], pivot: int | None) -> datetime:
    parts = {"year": 1970, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "micro": 0}
    day_of_year: int | None = None
    half: int | None = None
    half_hour: int | None = None
    zone: tzinfo = UTC
    for group, f in fields.items():
        raw = values[group]
        letter = f.letter
        if letter in "yY":
            parts["year"] = _two_digit_year(int(raw), pivot) if f.count == 2 and len(raw) == 2 else int(raw)
        elif letter == "M":
            parts["month"] = _month_number(raw) if f.count >= 3 else int(raw)
        elif letter == "d":
            parts["day"] = int(raw)
        elif letter == "D":
            day_of_year = int(raw)
        elif letter == "H":
            parts["hour"] = int(raw)
        elif letter == "k":
            parts["hour"] = _checked(int(raw), 1, 24, "clock hour") % 24
        elif letter in "hK":
            hour = int(raw)
            half_hour = _checked(hour, 1, 12, "clock hour") % 12 if letter == "h" else _checked(hour, 0, 11, "hour")
        elif letter == "a":
            half = 0 if raw.upper() == "AM" else 12
        elif letter == "m":
            parts["minute"] = int(raw)
        elif letter == "s":
            parts["second"] = int(raw)
        elif letter == "S":
            parts["micro"] = int(raw[:6].ljust(6, "0"))
        elif letter == "Z":
            zone = _parse_zone(raw)
        # E and G carry no information beyond the date itself.
    if half_hour is not None:
        parts["hour"] = half_hour + (half or 0)
    elif half is not None:
        parts["hour"] = parts["hour"] % 12 + half
    result = datetime(parts["year"], parts["month"], parts["day"], parts["hour"], parts["minute"],
                      parts["second"], parts["micro"], tzinfo=zone)
    if day_of_year is not None:
        _checked(day_of_year, 1, 366 if calendar.isleap(parts["year"]) else 365, "day of year")
        result = result.replace(month=1, day=1) + timedelta(days=day_of_year - 1)
    return result.astimezone(UTC)


def _checked(value: int, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is not in {low}..{high}")
    return value


def _two_digit_year(value: int, pivot: int | None) -> int:
    if pivot is None:
        pivot = datetime.now(UTC).year - 30
    low = pivot - 50
    year = low - low % 100 + value
    return year + 100 if year < low else year


def _month_number(name: str) -> int:
    prefix = name[:3].lower()
    return next(i for i, month in enumerate(_MONTHS, 1) if month[:3].lower() == prefix)


def _parse_zone(raw: str) -> tzinfo:
    if raw.upper() in ("Z", "UTC"):
        return UTC
    if raw[0] in "+-":
        digits = raw[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return timezone(-delta if raw[0] == "-" else delta)
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown time zone "{raw}"') from None
