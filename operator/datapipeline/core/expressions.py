"""The AWS Data Pipeline expression language: ``#{...}`` inside string fields.

A field such as ``"s3://#{myBucket}/#{format(@scheduledStartTime,'YYYY-MM-dd')}"``
is a :class:`Template`: literal text with expressions between ``#{`` and ``}``.
Parsing happens once (:func:`parse_template`), so syntax errors, unknown
functions and wrong argument counts are reported when a pipeline is submitted,
not when it runs; evaluation needs a :class:`Scope` that resolves references.

The language, as the AWS Developer Guide defines it:

* literals: integers (``30``), doubles (``1.0``, ``.5``, ``1e3``), strings in
  single or double quotes (``'YYYY-MM-dd'``, ``"hel"``); inside a string a
  backslash escapes the quote or a backslash, any other backslash is kept;
* references: a field of this object (``myBucket``, ``table``), a runtime field
  (``@scheduledStartTime``), a field of a linked object (``input.tableName``,
  ``node.output.directoryPath``, ``parent.@id``), a masked parameter
  (``*myPassword``); the :class:`Scope` decides what each name means;
* function calls, nested freely: ``format(minusMinutes(@scheduledStartTime,30),'YYYY-MM-dd hh:mm:ss')``,
  and the method form the guide also uses, ``@scheduledStartTime.format('YYYY-MM-dd')``,
  which is the same call with the receiver as first argument;
* arithmetic ``+ - * / ^`` with the usual precedence and parentheses, unary
  minus; ``/`` of two integers truncates toward zero (Java), ``^`` always gives
  a Double (Java's ``Math.pow``) and binds tighter than unary minus
  (``-2^2`` is ``-4.0``) and to the right (``2^3^2`` is ``2^9``);
* ``+`` concatenates as soon as one side is a String (the other side is
  converted with :func:`to_string`);
* a List value is evaluated per element: ``'this is ' + myList`` is a List, and
  so is ``format(myDates,'YYYY')``; two Lists in one operation are paired
  element by element and must have the same length.

Date functions work in UTC with Joda-Time semantics (month arithmetic clamps to
the end of the month). Where AWS documents nothing, this module chooses, and
says so: a backslash right before ``#{`` (``\\#{``) makes it literal text; a
String holding a DateTime or an integer is accepted where one is expected (field
values are often strings); division by zero is an error even for Doubles.
"""

from __future__ import annotations

import calendar
import difflib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from types import MappingProxyType
from typing import Protocol, TypeAlias

from datapipeline.core import jodatime
from datapipeline.core.limits import DEFAULT_LIMITS, int_too_large, too_many_digits

__all__ = [
    "FUNCTIONS",
    "ArgType",
    "ExpressionError",
    "FunctionSpec",
    "MappingScope",
    "Scope",
    "Template",
    "Value",
    "has_expression",
    "parse_datetime",
    "parse_template",
    "to_string",
]

Value: TypeAlias = str | int | float | datetime | list["Value"]
"""What an expression produces. DateTimes are timezone-aware UTC."""

# Expression length and depth, number digits and the size of a value (see datapipeline.core.limits).
_LIMITS = DEFAULT_LIMITS


class ExpressionError(ValueError):
    """A bad expression, or one that cannot be evaluated; ``message`` says what and where.

    ``position`` is the 0-based index in the template source of the offending
    part (messages show it as a 1-based column), or None when there is none.
    """

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def _column(position: int) -> str:
    return f"column {position + 1}"


class Scope(Protocol):
    """Resolves the references an expression reads."""

    def lookup(self, name: str) -> Value:
        """Return the value of a dotted reference as written (``node.@scheduledStartTime``).

        Raises KeyError when the name means nothing here.
        """
        ...


class MappingScope:
    """A Scope over a plain mapping of reference name to value."""

    def __init__(self, values: Mapping[str, Value]) -> None:
        self._values = dict(values)

    def lookup(self, name: str) -> Value:
        return self._values[name]

    def names(self) -> frozenset[str]:
        """The names it knows; the evaluator uses them to suggest a fix for a misspelt reference."""
        return frozenset(self._values)


# ------------------------------------------------------------------ values


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, datetime):
        return "DateTime"
    if isinstance(value, list):
        return "List"
    return type(value).__name__


def _describe(value: Value) -> str:
    """A value as an error message shows it: its type, then the value itself."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'String "{shown}"'
    return f"{_type_name(value)} {to_string(value)}"


def to_string(value: Value) -> str:
    """The text AWS substitutes for a value.

    DateTimes print as ``2011-05-24T17:10:00`` (UTC, whole seconds), Doubles as
    Java prints them (``4.0``, ``1.0E10``), Lists as their elements joined by
    commas.
    """
    if isinstance(value, bool):  # not a Value, but scopes built from YAML may hand one over
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, datetime):
        dt = _as_utc(value)
        return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
                f"T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}")
    return ",".join(to_string(item) for item in value)


def _java_double(value: float) -> str:
    """Java's ``Double.toString``: plain between 1e-3 and 1e7, else ``d.dddE±n``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(value)  # shortest round-trip digits, as Java (JDK 19+) prints; no exponent in this range
        return text if "." in text else text + ".0"
    digits = Decimal(repr(value))
    sign, numerals, _ = digits.normalize().as_tuple()
    mantissa = "".join(map(str, numerals))
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{digits.adjusted()}"


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_DATETIME_RE = re.compile(
    r"\s*(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[Tt ](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"\s*(?P<z>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*"
)


def parse_datetime(text: str) -> datetime:
    """Read a DateTime as AWS writes them; returns it as an aware UTC datetime.

    Accepts ``2012-01-15T23:59:00`` (AWS's form, UTC), a space instead of the
    ``T``, a one-digit hour (``2011-05-24T0:00:00z``, as the guide prints),
    optional seconds and fractions, a trailing ``Z``/``z``/``UTC``/``GMT`` or
    offset (``+01:00``, ``-0800``), and a bare date (midnight).
    """
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        raise ExpressionError(f'invalid DateTime "{text}": expected a form like 2011-05-24T17:10:00')
    g = match.groupdict()
    try:
        dt = datetime(int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"] or 0), int(g["mi"] or 0),
                      int(g["s"] or 0), int((g["f"] or "0")[:6].ljust(6, "0")), tzinfo=UTC)
    except ValueError as exc:
        raise ExpressionError(f'invalid DateTime "{text}": {exc}') from None
    return dt - _offset(g["z"])


def _offset(zone: str | None) -> timedelta:
    if zone is None or zone[0] not in "+-":
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return -delta if zone[0] == "-" else delta


def _normalize(value: object, name: str, position: int) -> Value:
    """Check a value a Scope returned, and bring DateTimes to UTC."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, list | tuple):
        return [_normalize(item, name, position) for item in value]
    raise ExpressionError(
        f'reference "{name}" at {_column(position)} holds a {_type_name(value)}, '
        "which an expression cannot use", position)


# ------------------------------------------------------------------ functions


class ArgType(Enum):
    """What a function parameter accepts (the names are the guide's)."""

    DATETIME = "DateTime"
    INTEGER = "Integer"
    STRING = "String"


class _FunctionFailure(Exception):
    """Raised by a function's implementation; the evaluator adds the name and column."""


@dataclass(frozen=True)
class FunctionSpec:
    """One entry of the function table."""

    name: str
    params: tuple[ArgType, ...]
    returns: str
    impl: Callable[..., Value]
    doc: str

    @property
    def arity(self) -> int:
        return len(self.params)

    @property
    def signature(self) -> str:
        return f"{self.returns} {self.name}({', '.join(p.value for p in self.params)})"


def _shifted(dt: datetime, step: timedelta, count: int) -> datetime:
    try:
        return dt + step * count
    except OverflowError:
        raise _FunctionFailure("the result is outside the supported years 1-9999") from None


def _add_months(dt: datetime, months: int) -> datetime:
    """Joda's plusMonths: same day of month, clamped to the month's last day (Jan 31 + 1 = Feb 28/29)."""
    year, month0 = divmod(dt.year * 12 + dt.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise _FunctionFailure("the result is outside the supported years 1-9999")
    day = min(dt.day, calendar.monthrange(year, month0 + 1)[1])
    return dt.replace(year=year, month=month0 + 1, day=day)


def _make_datetime(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise _FunctionFailure(
            f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d} is not a valid date and time ({exc})"
        ) from None


def _format(dt: datetime, pattern: str) -> str:
    try:
        return jodatime.format_datetime(dt, pattern)
    except jodatime.PatternError as exc:
        raise _FunctionFailure(str(exc)) from None


def _sunday(dt: datetime) -> datetime:
    # The guide: "the previous Sunday ... If the specified DateTime is a Sunday, the
    # result is the specified DateTime" (Tue 2011-05-24 -> Sun 2011-05-22), time kept.
    return _shifted(dt, timedelta(days=-1), (dt.weekday() + 1) % 7)


_D, _I, _S = ArgType.DATETIME, ArgType.INTEGER, ArgType.STRING


def _unit_functions() -> Iterator[FunctionSpec]:
    """plusX/minusX for every unit the guide lists."""
    fixed = {"Minutes": timedelta(minutes=1), "Hours": timedelta(hours=1),
             "Days": timedelta(days=1), "Weeks": timedelta(weeks=1)}
    for unit, step in fixed.items():
        yield FunctionSpec(f"plus{unit}", (_D, _I), "DateTime",
                           lambda dt, n, step=step: _shifted(dt, step, n),
                           f"The DateTime plus the given number of {unit.lower()}.")
        yield FunctionSpec(f"minus{unit}", (_D, _I), "DateTime",
                           lambda dt, n, step=step: _shifted(dt, step, -n),
                           f"The DateTime minus the given number of {unit.lower()}.")
    for unit, per in (("Months", 1), ("Years", 12)):
        yield FunctionSpec(f"plus{unit}", (_D, _I), "DateTime",
                           lambda dt, n, per=per: _add_months(dt, n * per),
                           f"The DateTime plus the given number of {unit.lower()} (clamped to the month's end).")
        yield FunctionSpec(f"minus{unit}", (_D, _I), "DateTime",
                           lambda dt, n, per=per: _add_months(dt, -n * per),
                           f"The DateTime minus the given number of {unit.lower()} (clamped to the month's end).")


def _function_table() -> Mapping[str, FunctionSpec]:
    specs = [
        FunctionSpec("format", (_D, _S), "String", _format,
                     "The DateTime written with a Joda-Time pattern, e.g. 'YYYY-MM-dd HH:mm:ss'."),
        FunctionSpec("day", (_D,), "Integer", lambda dt: dt.day, "The day of the month (1-31)."),
        FunctionSpec("dayOfYear", (_D,), "Integer", lambda dt: dt.timetuple().tm_yday,
                     "The day of the year (1-366)."),
        FunctionSpec("hour", (_D,), "Integer", lambda dt: dt.hour, "The hour of the day (0-23)."),
        FunctionSpec("minute", (_D,), "Integer", lambda dt: dt.minute, "The minute of the hour (0-59)."),
        FunctionSpec("month", (_D,), "Integer", lambda dt: dt.month, "The month of the year (1-12)."),
        FunctionSpec("year", (_D,), "Integer", lambda dt: dt.year, "The year."),
        FunctionSpec("midnight", (_D,), "DateTime",
                     lambda dt: dt.replace(hour=0, minute=0, second=0, microsecond=0),
                     "The start (00:00:00) of the DateTime's day."),
        FunctionSpec("yesterday", (_D,), "DateTime", lambda dt: _shifted(dt, timedelta(days=-1), 1),
                     "The same time on the previous day (minusDays(dt, 1))."),
        FunctionSpec("sunday", (_D,), "DateTime", _sunday,
                     "The same time on the most recent Sunday (the DateTime itself on a Sunday)."),
        FunctionSpec("firstOfMonth", (_D,), "DateTime", lambda dt: dt.replace(day=1),
                     "The same time on the first day of the DateTime's month."),
        FunctionSpec("makeDate", (_I, _I, _I), "DateTime", _make_datetime,
                     "Midnight UTC of the given year, month and day."),
        FunctionSpec("makeDateTime", (_I, _I, _I, _I, _I), "DateTime", _make_datetime,
                     "The given year, month, day, hour and minute, in UTC."),
        *_unit_functions(),
    ]
    return MappingProxyType({spec.name: spec for spec in sorted(specs, key=lambda s: s.name)})


FUNCTIONS: Mapping[str, FunctionSpec] = _function_table()
"""Every function an expression may call, by name."""


# ------------------------------------------------------------------ tokens


class _Kind(Enum):
    NUMBER = "a number"
    STRING = "a string"
    NAME = "a name"
    OP = "an operator"
    LPAREN = '"("'
    RPAREN = '")"'
    COMMA = '","'
    DOT = '"."'
    END = '"}"'


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    text: str
    position: int
    value: str | int | float | None = None

    def shown(self) -> str:
        return "the end of the expression" if self.kind is _Kind.END else f'"{self.text}"'


_SEGMENT = r"[@*]?[A-Za-z_][A-Za-z0-9_]*"
_NAME_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_NUMBER_RE = re.compile(r"(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")
_SINGLE = {"(": _Kind.LPAREN, ")": _Kind.RPAREN, ",": _Kind.COMMA}
_OPERATORS = frozenset("+-*/^")
_ENDS_OPERAND = frozenset({_Kind.NUMBER, _Kind.STRING, _Kind.NAME, _Kind.RPAREN})


def _lex(source: str, opening: int) -> tuple[list[_Token], int]:
    """Tokens of the expression whose ``#{`` is at ``opening``, and the index after its ``}``."""
    tokens: list[_Token] = []
    i, n = opening + 2, len(source)
    while i < n:
        if i - opening >= _LIMITS.max_expression_length:
            raise ExpressionError(f"the expression at {_column(opening)} is longer than "
                                  f"{_LIMITS.max_expression_length:,} characters", opening)
        c = source[i]
        operand_expected = not tokens or tokens[-1].kind not in _ENDS_OPERAND
        if c.isspace():
            i += 1
        elif c == "}":
            tokens.append(_Token(_Kind.END, "}", i))
            return tokens, i + 1
        elif c in "'\"":
            text, end = _read_string(source, i)
            tokens.append(_Token(_Kind.STRING, source[i:end], i, text))
            i = end
        elif (number := _NUMBER_RE.match(source, i)) and (c != "." or operand_expected):
            text = number.group()
            if problem := too_many_digits(text):
                raise ExpressionError(f"number at {_column(i)}: {problem}", i)
            value: int | float = float(text) if any(ch in text for ch in ".eE") else int(text)
            tokens.append(_Token(_Kind.NUMBER, text, i, value))
            i = number.end()
        elif (name := _NAME_RE.match(source, i)) and (c != "*" or operand_expected):
            tokens.append(_Token(_Kind.NAME, name.group(), i))
            i = name.end()
        elif c in _OPERATORS:
            tokens.append(_Token(_Kind.OP, c, i))
            i += 1
        elif c in _SINGLE:
            tokens.append(_Token(_SINGLE[c], c, i))
            i += 1
        elif c == ".":
            tokens.append(_Token(_Kind.DOT, c, i))
            i += 1
        elif source.startswith("#{", i):
            raise ExpressionError(
                f'"#{{" at {_column(i)} opens an expression inside the expression opened at '
                f"{_column(opening)}; expressions do not nest: write the inner one without \"#{{\" and \"}}\"", i)
        else:
            raise ExpressionError(f'unexpected character "{c}" at {_column(i)} in an expression', i)
    raise ExpressionError(f'unterminated expression: "#{{" at {_column(opening)} has no closing "}}"', opening)


def _read_string(source: str, start: int) -> tuple[str, int]:
    """A quoted literal starting at ``start``; a backslash escapes the quote or itself only."""
    quote = source[start]
    out: list[str] = []
    i, n = start + 1, len(source)
    while i < n:
        c = source[i]
        if c == "\\" and i + 1 < n and source[i + 1] in (quote, "\\"):
            out.append(source[i + 1])
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ExpressionError(f"unterminated string: the {quote} at {_column(start)} is never closed", start)


# ------------------------------------------------------------------ syntax tree


@dataclass(frozen=True, slots=True)
class _Literal:
    value: str | int | float
    position: int


@dataclass(frozen=True, slots=True)
class _Ref:
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Node, ...]
    position: int


@dataclass(frozen=True, slots=True)
class _Negate:
    operand: _Node
    position: int


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: _Node
    right: _Node
    position: int


_Node: TypeAlias = _Literal | _Ref | _Call | _Negate | _Binary

# Binding powers: + - < * / < unary minus < ^ (right-associative).
_INFIX_POWER = {"+": 10, "-": 10, "*": 20, "/": 20, "^": 40}
_PREFIX_POWER = 30


class _Parser:
    """A Pratt parser over one expression's tokens."""

    def __init__(self, tokens: list[_Token], opening: int) -> None:
        self._tokens = tokens
        self._index = 0
        self._opening = opening
        self._depth = 0  # _expression calls under way: every nesting passes through it

    def parse(self) -> _Node:
        if self._peek().kind is _Kind.END:
            raise ExpressionError(f'empty expression "#{{}}" at {_column(self._opening)}', self._opening)
        node = self._expression(0)
        if _tree_depth(node) > _LIMITS.max_expression_depth:
            raise self._too_deep()
        token = self._peek()
        if token.kind is not _Kind.END:
            raise ExpressionError(
                f"unexpected {token.shown()} at {_column(token.position)}; expected an operator or \"}}\"",
                token.position)
        return node

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, kind: _Kind, context: str) -> _Token:
        token = self._next()
        if token.kind is not kind:
            raise ExpressionError(
                f"expected {kind.value} at {_column(token.position)} {context}, found {token.shown()}",
                token.position)
        return token

    def _too_deep(self) -> ExpressionError:
        return ExpressionError(f"the expression at {_column(self._opening)} nests parentheses, calls and operators "
                               f"more than {_LIMITS.max_expression_depth} levels deep", self._opening)

    def _expression(self, min_power: int) -> _Node:
        self._depth += 1
        if self._depth > _LIMITS.max_expression_depth:
            raise self._too_deep()
        left = self._prefix()
        while (token := self._peek()).kind is _Kind.OP and _INFIX_POWER[token.text] > min_power:
            self._next()
            power = _INFIX_POWER[token.text]
            right = self._expression(power - 1 if token.text == "^" else power)
            left = _Binary(token.text, left, right, token.position)
        self._depth -= 1
        return left

    def _prefix(self) -> _Node:
        token = self._peek()
        if token.kind is _Kind.OP and token.text in "+-":
            self._next()
            operand = self._expression(_PREFIX_POWER)
            return _Negate(operand, token.position) if token.text == "-" else operand
        return self._postfix(self._primary())

    def _primary(self) -> _Node:
        token = self._next()
        if token.kind in (_Kind.NUMBER, _Kind.STRING):
            assert token.value is not None
            return _Literal(token.value, token.position)
        if token.kind is _Kind.LPAREN:
            inner = self._expression(0)
            self._expect(_Kind.RPAREN, f"to close the \"(\" at {_column(token.position)}")
            return inner
        if token.kind is _Kind.NAME:
            return self._name(token)
        raise ExpressionError(f"expected a value at {_column(token.position)}, found {token.shown()}",
                              token.position)

    def _name(self, token: _Token) -> _Node:
        if self._peek().kind is not _Kind.LPAREN:
            return _Ref(token.text, token.position)
        receiver, dot, function = token.text.rpartition(".")
        if not dot:
            return self._call(function, token.position, ())
        # "@scheduledStartTime.format('YYYY')": the method form of format(@scheduledStartTime, 'YYYY').
        return self._call(function, token.position + len(receiver) + 1, (_Ref(receiver, token.position),))

    def _postfix(self, node: _Node) -> _Node:
        # Method calls chain on any value: plusDays(x, 1).format('YYYY').
        while self._peek().kind is _Kind.DOT:
            dot = self._next()
            name = self._next()
            if name.kind is not _Kind.NAME or "." in name.text or self._peek().kind is not _Kind.LPAREN:
                raise ExpressionError(
                    f'expected a function call after the "." at {_column(dot.position)}, found {name.shown()}',
                    name.position)
            node = self._call(name.text, name.position, (node,))
        return node

    def _call(self, name: str, position: int, receiver: tuple[_Node, ...]) -> _Node:
        open_paren = self._expect(_Kind.LPAREN, f'after "{name}"')
        spec = _function(name, position)
        args: list[_Node] = list(receiver)
        if self._peek().kind is _Kind.RPAREN:
            self._next()
        else:
            while True:
                args.append(self._expression(0))
                separator = self._next()
                if separator.kind is _Kind.RPAREN:
                    break
                if separator.kind is not _Kind.COMMA:
                    raise ExpressionError(
                        f'expected "," or ")" in the call of {name} (opened at {_column(open_paren.position)}) '
                        f"at {_column(separator.position)}, found {separator.shown()}", separator.position)
        if len(args) != spec.arity:
            noun = "argument" if spec.arity == 1 else "arguments"
            method = f' (counting the value before ".{name}")' if receiver else ""
            raise ExpressionError(
                f"{name} takes {spec.arity} {noun} ({', '.join(p.value for p in spec.params)}), "
                f"got {len(args)}{method} at {_column(position)}", position)
        _check_literal_pattern(name, args)
        return _Call(name, tuple(args), position)


def _check_literal_pattern(name: str, args: list[_Node]) -> None:
    """A format pattern written as a literal is checked now, so a typo fails at submission, not at run time."""
    if name != "format" or not isinstance(pattern := args[1], _Literal) or not isinstance(pattern.value, str):
        return
    try:
        jodatime.compile_pattern(pattern.value)
    except jodatime.PatternError as exc:
        raise ExpressionError(f"format pattern at {_column(pattern.position)}: {exc}", pattern.position) from None


def _function(name: str, position: int) -> FunctionSpec:
    spec = FUNCTIONS.get(name)
    if spec is not None:
        return spec
    raise ExpressionError(f'unknown function "{name}" at {_column(position)}{_suggest(name, FUNCTIONS)}',
                          position)


def _suggest(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean "x"?' for the closest candidate, or ''."""
    known = list(candidates)
    by_case = [c for c in known if c.lower() == name.lower()]
    close = by_case or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _children(node: _Node) -> tuple[_Node, ...]:
    if isinstance(node, _Call):
        return node.args
    if isinstance(node, _Negate):
        return (node.operand,)
    if isinstance(node, _Binary):
        return (node.left, node.right)
    return ()


def _tree_depth(node: _Node) -> int:
    """How deep the syntax tree is (iterative: ``1+1+...+1`` is deep without any parenthesis)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(current))
    return deepest


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    if isinstance(node, _Call):
        for arg in node.args:
            yield from _walk(arg)
    elif isinstance(node, _Negate):
        yield from _walk(node.operand)
    elif isinstance(node, _Binary):
        yield from _walk(node.left)
        yield from _walk(node.right)


# ------------------------------------------------------------------ evaluation


def _broadcast(apply: Callable[[list[Value]], Value], args: list[Value], position: int) -> Value:
    """Apply per element when any argument is a List ("lists are evaluated per element")."""
    lists = [arg for arg in args if isinstance(arg, list)]
    if not lists:
        return apply(args)
    length = len(lists[0])
    if any(len(other) != length for other in lists):
        sizes = " and ".join(str(len(other)) for other in lists)
        raise ExpressionError(f"lists of different lengths ({sizes}) combined at {_column(position)}", position)
    return [_broadcast(apply, [arg[i] if isinstance(arg, list) else arg for arg in args], position)
            for i in range(length)]


_INTEGER_RE = re.compile(r"\s*[+-]?\d+\s*")
# Decimal notation only: Python's float() would also take "nan", "inf" and "1_000".
_DOUBLE_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


def _coerce(value: Value, expected: ArgType, function: str, index: int, position: int) -> Value:
    """Check one (non-List) argument against its parameter type; Strings holding the type convert."""
    if expected is ArgType.DATETIME:
        if isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ExpressionError:
                pass
    elif expected is ArgType.INTEGER:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER_RE.fullmatch(value):
            return _integer(value, f"{function} argument {index}", position)
    elif isinstance(value, str):
        return value
    article = "an" if expected is ArgType.INTEGER else "a"
    raise ExpressionError(
        f"{function} expects {article} {expected.value} as argument {index}, got {_describe(value)} "
        f"at {_column(position)}", position)


def _number(value: Value, op: str, position: int) -> int | float:
    """An arithmetic operand; numeric Strings (a String parameter holding "30") count as numbers."""
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _DOUBLE_RE.fullmatch(value):
        return _integer(value, f'operator "{op}"', position) if _INTEGER_RE.fullmatch(value) else float(value)
    raise ExpressionError(f'operator "{op}" at {_column(position)} needs numbers, got {_describe(value)}',
                          position)


def _integer(text: str, what: str, position: int) -> int:
    """A String holding an Integer, as an int (one of thousands of digits is refused, not converted)."""
    if problem := too_many_digits(text):
        raise ExpressionError(f"{what} at {_column(position)}: {problem}", position)
    return int(text)


def _value_size(value: Value) -> int:
    """Roughly how many characters the value takes as text."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_value_size(item) + 1 for item in value)
    return 24


def _bounded(value: Value, position: int) -> Value:
    """The value, unless it is larger than any field may be: integers past the digit limit, or text past the
    value limit (variables that double each other would otherwise grow exponentially)."""
    if isinstance(value, int) and not isinstance(value, bool) and int_too_large(value):
        raise ExpressionError(f"the result at {_column(position)} has more than {_LIMITS.max_number_digits} "
                              "digits", position)
    if _value_size(value) > _LIMITS.max_value_length:
        raise ExpressionError(f"the result at {_column(position)} is longer than {_LIMITS.max_value_length:,} "
                              "characters", position)
    return value


def _add(left: Value, right: Value, position: int) -> Value:
    if isinstance(left, str) or isinstance(right, str):
        return to_string(left) + to_string(right)
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left + right
    raise ExpressionError(
        f'operator "+" at {_column(position)} cannot add {_describe(left)} and {_describe(right)}; '
        "for dates use plusMinutes, plusHours, plusDays, ...", position)


def _divide(left: int | float, right: int | float, position: int) -> int | float:
    if right == 0:
        raise ExpressionError(f"division by zero at {_column(position)}", position)
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right)  # Java truncates toward zero; Python's // floors
        return quotient if (left < 0) == (right < 0) else -quotient
    return left / right


def _power(left: int | float, right: int | float, position: int) -> float:
    try:
        return math.pow(left, right)
    except (ValueError, OverflowError) as exc:
        reason = "the result is too large" if isinstance(exc, OverflowError) else "the result is not a real number"
        raise ExpressionError(
            f"{to_string(left)} ^ {to_string(right)} at {_column(position)}: {reason}", position) from None


def _arithmetic(op: str, left: Value, right: Value, position: int) -> Value:
    if op == "+":
        return _add(left, right, position)
    a, b = _number(left, op, position), _number(right, op, position)
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return _divide(a, b, position)
    return _power(a, b, position)


class _Evaluator:
    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def evaluate(self, node: _Node) -> Value:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Ref):
            return self._reference(node)
        if isinstance(node, _Negate):
            operand = self.evaluate(node.operand)
            return _broadcast(lambda a: -_number(a[0], "-", node.position), [operand], node.position)
        if isinstance(node, _Binary):
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            return _bounded(_broadcast(lambda a: _arithmetic(node.op, a[0], a[1], node.position), [left, right],
                                       node.position), node.position)
        return _bounded(self._call(node), node.position)

    def _reference(self, node: _Ref) -> Value:
        try:
            value: object = self._scope.lookup(node.name)
        except KeyError:
            names = getattr(self._scope, "names", None)
            hint = _suggest(node.name, frozenset(str(n) for n in names())) if callable(names) else ""
            raise ExpressionError(f'unknown reference "{node.name}" at {_column(node.position)}{hint}',
                                  node.position) from None
        return _normalize(value, node.name, node.position)

    def _call(self, node: _Call) -> Value:
        spec = FUNCTIONS[node.name]
        args = [self.evaluate(arg) for arg in node.args]

        def apply(values: list[Value]) -> Value:
            checked = [
                _coerce(value, expected, spec.name, i, arg.position)
                for i, (value, expected, arg) in enumerate(zip(values, spec.params, node.args, strict=True), 1)
            ]
            try:
                return spec.impl(*checked)
            except _FunctionFailure as exc:
                raise ExpressionError(f"{spec.name} at {_column(node.position)}: {exc}", node.position) from None

        return _broadcast(apply, args, node.position)


# ------------------------------------------------------------------ templates


@dataclass(frozen=True, slots=True)
class _Expression:
    node: _Node
    start: int  # index of "#"
    end: int  # index after "}"


_Part: TypeAlias = str | _Expression


def _split(source: str) -> tuple[_Part, ...]:
    """Literal text and parsed expressions, in order; adjacent text is merged."""
    parts: list[_Part] = []
    text: list[str] = []
    i = 0
    while (opening := source.find("#{", i)) >= 0:
        if opening > i and source[opening - 1] == "\\":
            # "\#{" is literal text: AWS documents no escape, and shell scripts sometimes need "#{".
            text.append(source[i:opening - 1] + "#{")
            i = opening + 2
            continue
        text.append(source[i:opening])
        tokens, end = _lex(source, opening)
        node = _Parser(tokens, opening).parse()
        if any(text):
            parts.append("".join(text))
        text = []
        parts.append(_Expression(node, opening, end))
        i = end
    text.append(source[i:])
    if any(text):
        parts.append("".join(text))
    return tuple(parts)


@dataclass(frozen=True)
class Template:
    """A string with zero or more ``#{...}`` parts, parsed when constructed."""

    source: str
    _parts: tuple[_Part, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parts", _split(self.source))

    def _expressions(self) -> Iterator[_Expression]:
        return (part for part in self._parts if isinstance(part, _Expression))

    def _nodes(self) -> Iterator[_Node]:
        for expression in self._expressions():
            yield from _walk(expression.node)

    @property
    def is_constant(self) -> bool:
        """True if there is nothing to evaluate (the rendered text is fixed)."""
        return not any(self._expressions())

    def render(self, scope: Scope) -> str:
        """The text with every expression replaced by its value (see :func:`to_string`)."""
        return self.render_each(scope, lambda _before, evaluate, _bare: to_string(evaluate()))

    def render_each(self, scope: Scope, embed: Callable[[str, Callable[[], Value], str | None], str]) -> str:
        """Like :meth:`render`, but ``embed(text_so_far, evaluate, bare_reference)`` writes each expression.

        The caller decides how a value enters the text (a shell command quotes values it does not trust);
        ``bare_reference`` is the name when the expression is a plain reference such as ``#{myX}``.
        """
        evaluator = _Evaluator(scope)
        pieces: list[str] = []
        size = 0
        for part in self._parts:
            if isinstance(part, str):
                piece = part
            else:
                node = part.node
                bare = node.name if isinstance(node, _Ref) else None
                piece = embed("".join(pieces), lambda node=node: evaluator.evaluate(node), bare)  # type: ignore[misc]
            size += len(piece)
            if size > _LIMITS.max_value_length:
                start = part.start if isinstance(part, _Expression) else 0
                raise ExpressionError(f"the text is longer than {_LIMITS.max_value_length:,} characters once "
                                      f"the expression at {_column(start)} is evaluated", start)
            pieces.append(piece)
        return "".join(pieces)

    def evaluate(self, scope: Scope) -> Value:
        """The raw value if the whole string is one expression (a DateTime stays a DateTime), else render()."""
        if len(self._parts) == 1 and isinstance(self._parts[0], _Expression):
            return _Evaluator(scope).evaluate(self._parts[0].node)
        return self.render(scope)

    def references(self) -> frozenset[str]:
        """Every reference read, as written: ``myBucket``, ``node.@scheduledStartTime``."""
        return frozenset(node.name for node in self._nodes() if isinstance(node, _Ref))

    def bare_references(self) -> frozenset[str]:
        """References that are a whole expression on their own, like ``#{myToken}``."""
        return frozenset(e.node.name for e in self._expressions() if isinstance(e.node, _Ref))

    def literal_length(self) -> int:
        """Characters of literal text (the rest of the source is expressions)."""
        return sum(len(part) for part in self._parts if isinstance(part, str))

    def reference_uses(self) -> tuple[str, ...]:
        """Every reference read, once per place it is read (``#{a}#{a}`` reads ``a`` twice)."""
        return tuple(node.name for node in self._nodes() if isinstance(node, _Ref))

    def functions(self) -> frozenset[str]:
        """Every function called."""
        return frozenset(node.name for node in self._nodes() if isinstance(node, _Call))


def parse_template(text: str) -> Template:
    """Parse a field value; raises ExpressionError for bad syntax, unknown functions or wrong arity.

    Templates are cached, but only short ones: 2,048 cached 64 KiB scripts would hold a quarter of a gigabyte.
    """
    return _cached_template(text) if len(text) <= _CACHED_LENGTH else Template(text)


_CACHED_LENGTH = 4_096


@lru_cache(maxsize=2048)
def _cached_template(text: str) -> Template:
    return Template(text)


def has_expression(text: str) -> bool:
    """True if the text holds a ``#{`` that is not escaped as ``\\#{``."""
    i = 0
    while (opening := text.find("#{", i)) >= 0:
        if opening == 0 or text[opening - 1] != "\\":
            return True
        i = opening + 2
    return False
