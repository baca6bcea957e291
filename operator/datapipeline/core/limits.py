"""Bounds on what a user may submit and on what using it may cost: every limit lives here.

Hostile or careless input (a YAML alias bomb, a JSON document nested 450 deep, variables that double
each other forty times, a one-second schedule that started in year 1) must fail fast with a message
naming the field, and never hang or exhaust the CLI or the operator. Each limit is a named, documented
field of :class:`Limits`; :data:`DEFAULT_LIMITS` holds the defaults. Functions that enforce a limit take a
``limits`` argument, so the operator can pass its administrator's choices (:meth:`Limits.from_environ`
reads the configurable ones, e.g. ``DATAPIPELINE_MIN_SCHEDULE_PERIOD``).

This module also holds the checks that only need the limits: :func:`spec_problems` (a spec's size and
shape, checked before anything else reads it) and :func:`schedule_problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from croniter import croniter

from datapipeline.core.catalog import SECTIONS
from datapipeline.core.durations import DurationError, Period, format_duration, parse_duration
from datapipeline.core.model import PipelineDefinition, PipelineObject, Schedule
from datapipeline.core.problems import Problem


@dataclass(frozen=True)
class Limits:
    """Every bound, with its default. Override with ``Limits(name=value)`` or :func:`dataclasses.replace`."""

    max_bytes: int = 1_048_576
    """Size of a manifest or AWS definition the CLI reads, and of a Pipeline spec (as JSON, UTF-8)."""
    max_depth: int = 64
    """Nesting of mappings and lists in a document or spec."""
    max_nodes: int = 100_000
    """Values (mappings, lists, scalars) in a document or spec, counting every YAML alias as a copy."""
    max_objects: int = 2_000
    """Objects of a pipeline, all sections together (AWS allows 100 by default)."""
    max_string_length: int = 65_536
    """Characters in one string value or key (AWS allows 10,240 bytes per field)."""
    max_number_digits: int = 100
    """Digits of a number literal (YAML, JSON, expressions) and of an integer an expression computes."""
    max_cron_length: int = 256
    """Characters of a cron expression."""
    max_expression_length: int = 2_048
    """Characters of one ``#{...}`` expression."""
    max_expression_depth: int = 32
    """Nesting of one expression: parentheses, calls and operators inside each other."""
    max_reference_depth: int = 16
    """References evaluated inside each other (a field reading a variable reading a field of an input ...)."""
    max_value_length: int = 1_048_576
    """Characters an expression or a field may evaluate to (stops variables that double each other)."""
    max_parameter_value_length: int = 4_096
    """Characters of one parameter value (a Pipeline's or a run's)."""
    max_array_items: int = 256
    """Values of one isArray parameter."""
    max_pattern_length: int = 1_024
    """Characters of a parameter's ``pattern`` (RE2: matching time is linear in the value whatever the pattern)."""
    max_evaluation_steps: int = 10_000
    """Field and variable evaluations to resolve one task (stops exponential fan-out through references)."""
    min_schedule_period: timedelta = timedelta(minutes=1)
    """Shortest schedule period, or gap between two cron fire times; configurable by the operator admin."""
    max_occurrences: int = 10_000
    """Largest ``schedule.occurrences`` (a cron schedule counts its fire times: 10,000 take about 0.5 s, once)."""
    max_intervals_per_pass: int = 1_000
    """Intervals one scheduling pass looks at; a longer backlog is worked through over several passes."""
    max_instances_per_wait: int = 1_000
    """Instances of an activity on a finer schedule that one instance of a coarser one may wait for."""
    earliest_date: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    """Earliest ``startDateTime`` / ``endDateTime``."""
    latest_date: datetime = datetime(9000, 1, 1, tzinfo=UTC)
    """``startDateTime`` / ``endDateTime`` must be before this (leaves room for interval arithmetic)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], base: Limits | None = None) -> Limits:
        """The limits an administrator configured: ``DATAPIPELINE_MIN_SCHEDULE_PERIOD`` ("30s", "5 minutes";
        "0" for none). Raises ValueError naming the variable when its value is not a duration."""
        limits = base or DEFAULT_LIMITS
        text = environ.get(MIN_PERIOD_VARIABLE, "").strip()
        if not text:
            return limits
        if text == "0":
            return replace(limits, min_schedule_period=timedelta(0))
        try:
            return replace(limits, min_schedule_period=parse_duration(text))
        except DurationError as error:
            raise ValueError(f"{MIN_PERIOD_VARIABLE}: {error}") from None


MIN_PERIOD_VARIABLE = "DATAPIPELINE_MIN_SCHEDULE_PERIOD"
DEFAULT_LIMITS = Limits()


class LimitError(ValueError):
    """An input beyond a limit; the message says which limit and where."""


# ---------------------------------------------------------------------------- numbers and text
def too_many_digits(digits: str, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """A problem when a number written as ``digits`` is too long, else None (letters count: hexadecimal
    digits, an exponent's "e"; signs, points and separators do not)."""
    count = sum(c.isalnum() for c in digits)
    if count > limits.max_number_digits:
        return f"a number of {count} digits is too large; at most {limits.max_number_digits} digits"
    return None


def int_too_large(value: int, limits: Limits = DEFAULT_LIMITS) -> bool:
    """True when ``value`` has more digits than allowed (cheap: no conversion to text)."""
    return abs(value) >= _ten_power(limits.max_number_digits)


def _ten_power(digits: int) -> int:
    if digits not in _POWERS:
        _POWERS[digits] = 10 ** digits
    return _POWERS[digits]


_POWERS: dict[int, int] = {}


def clip(text: str, length: int = 60) -> str:
    """``text`` shortened for a message (a 60,000-character value must not become a 60,000-character error)."""
    return text if len(text) <= length else f"{text[:length - 3]}... ({len(text)} characters)"


# ---------------------------------------------------------------------------- a spec's size and shape
def spec_problems(spec: Any, path: str = "spec", limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    """Size, nesting, value count, string lengths, numbers and object count of a spec, with their paths.

    Walks the spec once, iteratively (a DAG built from YAML aliases counts every time it is reached), and
    stops at the first size or nesting problem, so a hostile spec costs at most ``max_nodes`` steps.
    """
    walk = _Walk(limits)
    problems = walk.run(spec, path)
    if problems:
        return problems
    if isinstance(spec, Mapping):
        problems.extend(_object_count(spec, path, limits))
        problems.extend(_cron_length(spec, path, limits))
    return problems


class _Walk:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.nodes = 0
        self.size = 0
        self.problems: list[Problem] = []

    def run(self, root: Any, path: str) -> list[Problem]:
        stack: list[tuple[Any, str, int]] = [(root, path, 1)]
        while stack:
            value, where, depth = stack.pop()
            self.nodes += 1
            if self.nodes > self.limits.max_nodes:
                return [Problem(path, f"holds more than {self.limits.max_nodes:,} values (fields, list items and "
                                      "scalars, YAML aliases counted as copies)")]
            if depth > self.limits.max_depth:
                return [Problem(where, f"is nested more than {self.limits.max_depth} levels deep")]
            self.size += self._scalar(value, where) if not isinstance(value, Mapping | list) else 2
            if self.size > self.limits.max_bytes:
                return [Problem(path, f"is larger than {self.limits.max_bytes:,} bytes")]
            if isinstance(value, Mapping):
                for key, item in value.items():
                    inner = f"{where}.{clip(str(key))}"
                    self.size += self._scalar(key, inner) + 2
                    stack.append((item, inner, depth + 1))
            elif isinstance(value, list):
                stack.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
        return self.problems

    def _scalar(self, value: Any, where: str) -> int:
        """The value's size as JSON; records a problem for a string or number beyond its limit."""
        if isinstance(value, str):
            if len(value) > self.limits.max_string_length:
                self.problems.append(Problem(where, f"is {len(value):,} characters long; at most "
                                                    f"{self.limits.max_string_length:,}"))
            return len(value.encode("utf-8", "surrogatepass")) + 2
        if isinstance(value, bool) or value is None:
            return 5
        if isinstance(value, int):
            if int_too_large(value, self.limits):
                self.problems.append(Problem(where, f"the number is too large; at most "
                                                    f"{self.limits.max_number_digits} digits"))
                return self.limits.max_number_digits
            return len(str(value))
        if isinstance(value, float):
            return 24
        self.problems.append(Problem(where, f"must be a mapping, list, string, number, boolean or null, not "
                                            f"{type(value).__name__}"))
        return 8


def _object_count(spec: Mapping[str, Any], path: str, limits: Limits) -> list[Problem]:
    count = sum(len(spec[s]) for s in SECTIONS if isinstance(spec.get(s), list))
    if count > limits.max_objects:
        return [Problem(path, f"holds {count:,} objects; at most {limits.max_objects:,} in all sections together")]
    return []


def _cron_length(spec: Mapping[str, Any], path: str, limits: Limits) -> list[Problem]:
    schedule = spec.get("schedule")
    cron = schedule.get("cron") if isinstance(schedule, Mapping) else None
    if isinstance(cron, str) and len(cron) > limits.max_cron_length:
        return [Problem(f"{path}.schedule.cron", f"is {len(cron):,} characters long; at most "
                                                 f"{limits.max_cron_length}")]
    return []


# ---------------------------------------------------------------------------- schedules
def schedule_problems(schedule: Schedule, path: str, limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    """The schedule's period, occurrences and dates against the limits (``path`` is the schedule's)."""
    problems: list[Problem] = []
    minimum = limits.min_schedule_period
    if schedule.period is not None and shortest_period(schedule.period) < minimum:
        problems.append(Problem(f"{path}.period", f'"{schedule.period}" is shorter than the minimum period, '
                                                  f"{_words(minimum)} (set by the operator's administrator)"))
    gap = cron_shortest_gap(schedule.cron) if schedule.cron else None
    if gap is not None and gap < minimum:
        problems.append(Problem(f"{path}.cron", f'"{schedule.cron}" fires {_words(gap)} apart; the minimum '
                                                f"period is {_words(minimum)} (set by the operator's administrator)"))
    if schedule.occurrences is not None and schedule.occurrences > limits.max_occurrences:
        problems.append(Problem(f"{path}.occurrences", f"{schedule.occurrences:,} is too many; at most "
                                                       f"{limits.max_occurrences:,} (use endDateTime for longer)"))
    for key, moment in (("startDateTime", schedule.start), ("endDateTime", schedule.end)):
        if moment is not None and not limits.earliest_date <= moment < limits.latest_date:
            problems.append(Problem(f"{path}.{key}", f"{moment:%Y-%m-%dT%H:%M:%SZ} is out of range: it must be "
                                                     f"from {limits.earliest_date:%Y-%m-%d} and before "
                                                     f"{limits.latest_date:%Y-%m-%d}"))
    return problems


def shortest_period(period: Period) -> timedelta:
    """The shortest interval a period gives: calendar months have 28 days at least, years 365."""
    if period.unit == "months":
        return timedelta(days=28 * period.count)
    if period.unit == "years":
        return timedelta(days=365 * period.count)
    return period.as_timedelta()


def cron_shortest_gap(expression: str) -> timedelta | None:
    """The shortest time between two fire times of a valid cron expression, from its second, minute and hour
    fields (days are assumed to follow each other, so the gap across midnight counts); None if unreadable."""
    six = len(expression.split()) == 6
    try:
        expanded = croniter(expression, second_at_beginning=six).expanded
    except (ValueError, KeyError, TypeError):
        return None
    seconds = _values(expanded[5] if len(expanded) > 5 else [0], 60)
    minutes, hours = _values(expanded[0], 60), _values(expanded[1], 24)
    gaps = [86400 - (hours[-1] - hours[0]) * 3600 - (minutes[-1] - minutes[0]) * 60 - (seconds[-1] - seconds[0])]
    gaps += [b - a for a, b in pairwise(seconds)]
    gaps += [(b - a) * 60 - (seconds[-1] - seconds[0]) for a, b in pairwise(minutes)]
    span = (minutes[-1] - minutes[0]) * 60 + seconds[-1] - seconds[0]
    gaps += [(b - a) * 3600 - span for a, b in pairwise(hours)]
    return timedelta(seconds=min(gaps))


def _values(field: list[Any], size: int) -> list[int]:
    if any(not isinstance(v, int) for v in field):  # "*"
        return list(range(size))
    return sorted(set(field))


def _words(delta: timedelta) -> str:
    text = format_duration(delta)
    return {"1m": "1 minute", "1s": "1 second", "1h": "1 hour", "1d": "1 day"}.get(text, text)


# ---------------------------------------------------------------------------------------------- expansion
def expansion_problems(definition: PipelineDefinition, path: str = "spec",
                       limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    """Variables and fields whose text would grow past ``max_value_length`` once evaluated (``myA`` reading
    ``myB`` twice, ``myB`` reading ``myC`` twice, ...), found before any run: an upper bound of each one's
    length, from its own text and what it reads in its object. The first one past the limit is reported."""
    problems: dict[str, Problem] = {}
    tables = [definition.activities, *definition.objects.values()]
    for obj in (o for table in tables for o in table.values()):
        sizes = _Expansion(definition, obj)
        for name, text in [*obj.vars.items(), *((k, v) for k, v in obj.fields.items() if isinstance(v, str))]:
            if sizes.of(name, text) > limits.max_value_length and not sizes.reads_too_much(text, limits):
                where = (f"{path}.defaults.vars.{name}" if name in obj.vars and definition.vars.get(name) == text
                         else f"{obj.path}.vars.{name}" if name in obj.vars else f"{obj.path}.{name}")
                problems[where] = Problem(where, f"would be longer than {limits.max_value_length:,} characters once "
                                                 "evaluated: it repeats fields or variables that repeat others")
    return list(problems.values())


class _Expansion:
    """Upper bounds of evaluated lengths in one object's scope (the lookup order of core.resolve)."""

    READ = 64  # a runtime field, a number, or a field of another object: short

    def __init__(self, definition: PipelineDefinition, obj: PipelineObject) -> None:
        self.d, self.obj = definition, obj
        self.known: dict[str, int] = {}

    def of(self, name: str, text: str) -> int:
        if name not in self.known:
            self.known[name] = 0  # a cycle reads nothing more (resolving it fails anyway)
            self.known[name] = self._text(text)
        return self.known[name]

    def _text(self, text: str) -> int:
        literal, uses, calls = _reading(text)
        # Literal text once, and what it reads; expressions that call functions (format() writes "MMMM" as
        # "September") or compute from literals add up to three times their own source.
        extra = 3 * (len(text) - literal) if calls or not uses else 0
        return literal + extra + sum(self._reference(name) for name in uses)

    def _reference(self, name: str) -> int:
        name = name.lstrip("*")
        if name in self.obj.vars:
            return self.of(name, self.obj.vars[name])
        if isinstance(self.obj.fields.get(name), str):
            return self.of(name, self.obj.fields[name])
        if name in self.d.parameters:
            return _parameter_length(self.d, name)
        if name in self.d.vars:
            return self.of(name, self.d.vars[name])
        return self.READ

    def reads_too_much(self, text: str, limits: Limits) -> bool:
        """True when something ``text`` reads is already too long (then that one is the one to report)."""
        return any(self._reference(name) > limits.max_value_length for name in _reading(text)[1])


def _reading(text: str) -> tuple[int, tuple[str, ...], bool]:
    """A field's literal length, every reference it reads, and whether it calls functions."""
    from datapipeline.core.expressions import (  # expressions imports the limits
        ExpressionError,
        parse_template,
    )

    try:
        template = parse_template(text)
    except ExpressionError:
        return len(text), (), False
    return template.literal_length(), template.reference_uses(), bool(template.functions())


def _parameter_length(definition: PipelineDefinition, name: str) -> int:
    parameter = definition.parameters[name]
    value = definition.values.get(name, parameter.default)
    items = value if isinstance(value, list) else [value or ""]
    return sum(len(item) + 1 for item in items) + _Expansion.READ
