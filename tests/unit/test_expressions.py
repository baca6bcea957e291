"""The #{...} expression language (datapipeline.core.expressions)."""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from datapipeline.core.expressions import (
    FUNCTIONS,
    ArgType,
    ExpressionError,
    MappingScope,
    Template,
    Value,
    has_expression,
    parse_datetime,
    parse_template,
    to_string,
)

# The guide's example: "the value of myDateTime is May 24, 2011 @ 5:10 pm GMT" (a Tuesday).
MAY24 = datetime(2011, 5, 24, 17, 10, tzinfo=UTC)

SCOPE = MappingScope({
    "myDateTime": MAY24,
    "@scheduledStartTime": MAY24,
    "@scheduledEndTime": MAY24 + timedelta(hours=1),
    "node.@scheduledStartTime": datetime(2020, 2, 29, 23, 45, tzinfo=UTC),
    "node.output.directoryPath": "s3://bucket/out",
    "parent.@id": "ExampleDataNode",
    "input.tableName": "events",
    "myBucket": "my-bucket",
    "myList": ["one", "two"],
    "myList1": [1, 2],
    "myList2": [3, 4],
    "myDates": [datetime(2011, 1, 31, tzinfo=UTC), datetime(2012, 2, 29, 6, tzinfo=UTC)],
    "myDays": "3",
    "myRatio": 0.25,
    "myCount": 7,
    "myDateString": "2011-05-24T17:10:00",
    "*myPassword": "secret",
    "@id": "ShellOut",
})

FAST = settings(max_examples=60, deadline=None)
utc_datetimes = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                             timezones=st.just(UTC))


def ev(text: str, scope: MappingScope = SCOPE) -> Value:
    return parse_template(text).evaluate(scope)


def render(text: str, scope: MappingScope = SCOPE) -> str:
    return parse_template(text).render(scope)


def error(text: str, scope: MappingScope = SCOPE) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse_template(text).evaluate(scope)
    return caught.value


# ------------------------------------------------------------ the function table


GUIDE_FUNCTIONS = {
    "day", "dayOfYear", "firstOfMonth", "format", "hour", "makeDate", "makeDateTime", "midnight",
    "minusDays", "minusHours", "minusMinutes", "minusMonths", "minusWeeks", "minusYears", "minute",
    "month", "plusDays", "plusHours", "plusMinutes", "plusMonths", "plusWeeks", "plusYears", "sunday",
    "year", "yesterday",
}


def test_function_table_is_exactly_the_guides() -> None:
    assert set(FUNCTIONS) == GUIDE_FUNCTIONS


def test_function_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        FUNCTIONS["evil"] = FUNCTIONS["day"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "signature"),
    [
        ("format", "String format(DateTime, String)"),
        ("plusDays", "DateTime plusDays(DateTime, Integer)"),
        ("makeDate", "DateTime makeDate(Integer, Integer, Integer)"),
        ("makeDateTime", "DateTime makeDateTime(Integer, Integer, Integer, Integer, Integer)"),
        ("dayOfYear", "Integer dayOfYear(DateTime)"),
    ],
)
def test_signatures(name: str, signature: str) -> None:
    assert FUNCTIONS[name].signature == signature
    assert FUNCTIONS[name].arity == signature.count(",") + 1
    assert FUNCTIONS[name].doc


def test_every_function_takes_a_datetime_first_except_the_constructors() -> None:
    for name, spec in FUNCTIONS.items():
        expected = ArgType.INTEGER if name.startswith("make") else ArgType.DATETIME
        assert spec.params[0] is expected, name


# ------------------------------------------------------------ the guide's examples, function by function


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("day(myDateTime)", 24),
        ("dayOfYear(myDateTime)", 144),
        ("firstOfMonth(myDateTime)", datetime(2011, 5, 1, 17, 10, tzinfo=UTC)),
        ("format(myDateTime,'YYYY-MM-dd HH:mm:ss z')", "2011-05-24 17:10:00 UTC"),
        ("hour(myDateTime)", 17),
        ("makeDate(2011,5,24)", datetime(2011, 5, 24, tzinfo=UTC)),
        ("makeDateTime(2011,5,24,14,21)", datetime(2011, 5, 24, 14, 21, tzinfo=UTC)),
        ("midnight(myDateTime)", datetime(2011, 5, 24, tzinfo=UTC)),
        ("minusDays(myDateTime,1)", datetime(2011, 5, 23, 17, 10, tzinfo=UTC)),
        ("minusHours(myDateTime,1)", datetime(2011, 5, 24, 16, 10, tzinfo=UTC)),
        ("minusMinutes(myDateTime,1)", datetime(2011, 5, 24, 17, 9, tzinfo=UTC)),
        ("minusMonths(myDateTime,1)", datetime(2011, 4, 24, 17, 10, tzinfo=UTC)),
        ("minusWeeks(myDateTime,1)", datetime(2011, 5, 17, 17, 10, tzinfo=UTC)),
        ("minusYears(myDateTime,1)", datetime(2010, 5, 24, 17, 10, tzinfo=UTC)),
        ("minute(myDateTime)", 10),
        ("month(myDateTime)", 5),
        ("plusDays(myDateTime,1)", datetime(2011, 5, 25, 17, 10, tzinfo=UTC)),
        ("plusHours(myDateTime,1)", datetime(2011, 5, 24, 18, 10, tzinfo=UTC)),
        ("plusMinutes(myDateTime,1)", datetime(2011, 5, 24, 17, 11, tzinfo=UTC)),
        ("plusMonths(myDateTime,1)", datetime(2011, 6, 24, 17, 10, tzinfo=UTC)),
        ("plusWeeks(myDateTime,1)", datetime(2011, 5, 31, 17, 10, tzinfo=UTC)),
        ("plusYears(myDateTime,1)", datetime(2012, 5, 24, 17, 10, tzinfo=UTC)),
        ("sunday(myDateTime)", datetime(2011, 5, 22, 17, 10, tzinfo=UTC)),
        ("year(myDateTime)", 2011),
        ("yesterday(myDateTime)", datetime(2011, 5, 23, 17, 10, tzinfo=UTC)),
    ],
)
def test_guide_function_examples(expression: str, expected: Value) -> None:
    assert ev("#{" + expression + "}") == expected


def test_the_guide_example_covers_every_function() -> None:
    examples = test_guide_function_examples.pytestmark[0].args[1]  # type: ignore[attr-defined]
    assert {expression.split("(")[0] for expression, _ in examples} == GUIDE_FUNCTIONS


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#{format(minusMinutes(@scheduledStartTime,30),'YYYY-MM-dd hh:mm:ss')}", "2011-05-24 04:40:00"),
        ("#{format(minusMinutes(node.@scheduledStartTime,30),'YYYY-MM-dd hh:mm:ss')}", "2020-02-29 11:15:00"),
        ("#{format(myDateTime,'YYYY-MM-dd hh:mm:ss')}", "2011-05-24 05:10:00"),
        ("s3://mybucket/#{parent.@id}.csv", "s3://mybucket/ExampleDataNode.csv"),
        ("Error for interval #{node.@scheduledStartTime}..#{@scheduledEndTime}.",
         "Error for interval 2020-02-29T23:45:00..2011-05-24T18:10:00."),
        ("S3 bucket '#{node.output.directoryPath}' succeeded", "S3 bucket 's3://bucket/out' succeeded"),
        ("/home/userName/xxx.sh #{@scheduledStartTime} #{@scheduledEndTime}",
         "/home/userName/xxx.sh 2011-05-24T17:10:00 2011-05-24T18:10:00"),
        ("select * from #{input.tableName} where eventTime >= '#{@scheduledStartTime.format('YYYY-MM-dd HH:mm:ss')}'",
         "select * from events where eventTime >= '2011-05-24 17:10:00'"),
        ("s3://example-bucket/InputData/#{@scheduledStartTime.format('YYYY-MM-dd-hh:mm')}.csv",
         "s3://example-bucket/InputData/2011-05-24-05:10.csv"),
        ("#{myBucket}/#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}", "my-bucket/2011-05-24-17-10-00"),
    ],
)
def test_guide_templates(template: str, expected: str) -> None:
    assert render(template) == expected


# ------------------------------------------------------------ literals


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("42", 42),
        ("0", 0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("'single'", "single"),
        ('"double"', "double"),
        ("''", ""),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'back\\\\slash'", "back\\slash"),
        ("'\\d+ stays'", "\\d+ stays"),  # a backslash before anything else is kept
        ("'a \"mixed\" one'", 'a "mixed" one'),
        ("'#{ is text here }'", "#{ is text here }"),
        ("'  spaced  '", "  spaced  "),
    ],
)
def test_literals(expression: str, expected: Value) -> None:
    assert ev("#{" + expression + "}") == expected


def test_integer_literals_stay_integers_and_doubles_doubles() -> None:
    assert type(ev("#{3}")) is int
    assert type(ev("#{3.0}")) is float


# ------------------------------------------------------------ references


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("#{myBucket}", "my-bucket"),
        ("#{@id}", "ShellOut"),
        ("#{parent.@id}", "ExampleDataNode"),
        ("#{input.tableName}", "events"),
        ("#{node.output.directoryPath}", "s3://bucket/out"),
        ("#{*myPassword}", "secret"),
        ("#{ myBucket }", "my-bucket"),
    ],
)
def test_references(template: str, expected: Value) -> None:
    assert ev(template) == expected


def test_masked_parameter_reference_versus_multiplication() -> None:
    scope = MappingScope({"a": 6, "b": 7, "*b": 100})
    assert ev("#{a*b}", scope) == 42
    assert ev("#{a * *b}", scope) == 600
    assert ev("#{*b}", scope) == 100
    assert parse_template("#{a*b}").references() == {"a", "b"}
    assert parse_template("#{a * *b}").references() == {"a", "*b"}


def test_naive_and_offset_datetimes_from_a_scope_become_utc() -> None:
    scope = MappingScope({
        "naive": datetime(2011, 5, 24, 17, 10),
        "paris": datetime(2011, 5, 24, 19, 10, tzinfo=timezone(timedelta(hours=2))),
    })
    assert ev("#{naive}", scope) == MAY24
    assert ev("#{paris}", scope) == MAY24
    assert ev("#{paris}", scope).tzinfo is UTC  # type: ignore[union-attr]


def test_tuples_and_booleans_from_a_scope() -> None:
    scope = MappingScope({"t": ("a", "b"), "flag": True})  # type: ignore[dict-item]
    assert ev("#{t}", scope) == ["a", "b"]
    assert ev("#{flag}", scope) == "true"


def test_unsupported_scope_value() -> None:
    scope = MappingScope({"d": {"a": 1}})  # type: ignore[dict-item]
    err = error("x #{d}", scope)
    assert err.message == 'reference "d" at column 5 holds a dict, which an expression cannot use'
    assert err.position == 4


class _BareScope:
    """A Scope with lookup only (no names()): unknown references get no suggestion."""

    def lookup(self, name: str) -> Value:
        if name == "known":
            return 1
        raise KeyError(name)


def test_scope_protocol_needs_only_lookup() -> None:
    assert parse_template("#{known + 1}").evaluate(_BareScope()) == 2
    with pytest.raises(ExpressionError, match=r'^unknown reference "knwon" at column 3$'):
        parse_template("#{knwon}").evaluate(_BareScope())


# ------------------------------------------------------------ operators


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # The guide's table.
        ("1 + 2", 3),
        ("1 - 2", -1),
        ("1 * 2", 2),
        ("1 / 2", 0),
        ("1.0 / 2", 0.5),
        ("2 ^ 2", 4.0),
        ('"hel" + "lo"', "hello"),
        # Precedence and associativity.
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("100 / 10 / 5", 2),
        ("2 * 3 ^ 2", 18.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("(2 ^ 3) ^ 2", 64.0),
        ("-2 ^ 2", -4.0),
        ("(-2) ^ 2", 4.0),
        ("2 ^ -1", 0.5),
        ("-3 * -3", 9),
        ("- -3", 3),
        ("+3", 3),
        ("2*-3", -6),
        ("1 - -1", 2),
        ("((((7))))", 7),
        ("7 / 2 * 2", 6),
        ("7.0 / 2 * 2", 7.0),
        # Java integer division truncates toward zero.
        ("-7 / 2", -3),
        ("7 / -2", -3),
        ("-7 / -2", 3),
        ("7 / 2", 3),
        # Mixed Integer and Double give a Double.
        ("1 + 0.5", 1.5),
        ("3 * 0.5", 1.5),
        ("4 ^ 0.5", 2.0),
        # + concatenates once either side is a String.
        ("'a' + 1", "a1"),
        ("1 + 'a'", "1a"),
        ("1 + 2 + 'a'", "3a"),
        ("'a' + 1 + 2", "a12"),
        ("'a' + (1 + 2)", "a3"),
        ("'x' + 1.5", "x1.5"),
        ("'at ' + myDateTime", "at 2011-05-24T17:10:00"),
        ("myDateTime + '!'", "2011-05-24T17:10:00!"),
        # Numeric Strings are numbers for the other operators.
        ("myDays * 2", 6),
        ("myDays + 1", "31"),
        ("'2.5' * 2", 5.0),
        ("-myDays", -3),
        ("myCount / 2", 3),
        ("myRatio * 4", 1.0),
    ],
)
def test_operators(expression: str, expected: Value) -> None:
    result = ev("#{" + expression + "}")
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("template", "message", "position"),
    [
        ("#{1/0}", "division by zero at column 4", 3),
        ("#{1.0 / 0}", "division by zero at column 7", 6),
        ("#{1 / (2 - 2)}", "division by zero at column 5", 4),
        ("#{'a' - 1}", 'operator "-" at column 7 needs numbers, got String "a"', 6),
        ("#{2 * myBucket}", 'operator "*" at column 5 needs numbers, got String "my-bucket"', 4),
        ("#{'nan' * 2}", 'operator "*" at column 9 needs numbers, got String "nan"', 8),
        ("#{'1_000' / 2}", 'operator "/" at column 11 needs numbers, got String "1_000"', 10),
        ("#{-myBucket}", 'operator "-" at column 3 needs numbers, got String "my-bucket"', 2),
        ("#{myDateTime + 1}", 'operator "+" at column 14 cannot add DateTime 2011-05-24T17:10:00 and Integer 1; '
                              "for dates use plusMinutes, plusHours, plusDays, ...", 13),
        ("#{myDateTime - myDateTime}",
         'operator "-" at column 14 needs numbers, got DateTime 2011-05-24T17:10:00', 13),
        ("#{(-8) ^ 0.5}", "-8 ^ 0.5 at column 8: the result is not a real number", 7),
        ("#{10.0 ^ 400}", "10.0 ^ 400 at column 8: the result is too large", 7),
    ],
)
def test_operator_errors(template: str, message: str, position: int) -> None:
    err = error(template)
    assert err.message == message
    assert str(err) == message
    assert err.position == position


# ------------------------------------------------------------ to_string


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("text", "text"),
        (42, "42"),
        (-7, "-7"),
        (4.0, "4.0"),
        (0.5, "0.5"),
        (-0.0, "-0.0"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (1234567.5, "1234567.5"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (1.5e-5, "1.5E-5"),
        (-2.5e20, "-2.5E20"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
        (MAY24, "2011-05-24T17:10:00"),
        (MAY24.replace(microsecond=999999), "2011-05-24T17:10:00"),
        (datetime(5, 1, 2, 3, 4, 5, tzinfo=UTC), "0005-01-02T03:04:05"),
        (datetime(2011, 5, 24, 10, 10), "2011-05-24T10:10:00"),
        (MAY24.astimezone(timezone(timedelta(hours=-7))), "2011-05-24T17:10:00"),
        (["a", 1, 2.0], "a,1,2.0"),
        ([["a", "b"], ["c"]], "a,b,c"),
        ([], ""),
    ],
)
def test_to_string(value: Value, text: str) -> None:
    assert to_string(value) == text


# ------------------------------------------------------------ lists


def test_lists_are_evaluated_per_element() -> None:
    assert ev("#{'this is ' + myList}") == ["this is one", "this is two"]
    assert ev("#{myList + '!'}") == ["one!", "two!"]
    assert ev("#{myList1 * 10}") == [10, 20]
    assert ev("#{-myList1}") == [-1, -2]
    assert ev("#{myList1}") == [1, 2]


def test_functions_apply_to_each_element_of_a_list() -> None:
    assert ev("#{plusMonths(myDates, 1)}") == [datetime(2011, 2, 28, tzinfo=UTC), datetime(2012, 3, 29, 6, tzinfo=UTC)]
    assert ev("#{format(myDates, 'YYYY-MM-dd')}") == ["2011-01-31", "2012-02-29"]
    assert ev("#{year(myDates)}") == [2011, 2012]
    assert ev("#{plusDays(myDateTime, myList1)}") == [MAY24 + timedelta(days=1), MAY24 + timedelta(days=2)]
    assert ev("#{myDates.format('MMM')}") == ["Jan", "Feb"]


def test_two_lists_pair_element_by_element() -> None:
    assert ev("#{myList1 + myList2}") == [4, 6]
    assert ev("#{myList + myList1}") == ["one1", "two2"]
    assert ev("#{makeDate(2011, myList1, myList2)}") == [datetime(2011, 1, 3, tzinfo=UTC), datetime(2011, 2, 4, tzinfo=UTC)]


def test_lists_of_different_lengths_are_an_error() -> None:
    scope = MappingScope({"a": [1, 2], "b": [1, 2, 3]})
    err = error("#{a + b}", scope)
    assert err.message == "lists of different lengths (2 and 3) combined at column 5"


def test_empty_list_stays_empty() -> None:
    scope = MappingScope({"none": []})
    assert ev("#{plusDays(none, 1)}", scope) == []
    assert render("[#{none}]", scope) == "[]"


def test_a_list_inside_text_renders_comma_separated() -> None:
    assert render("items: #{myList}") == "items: one,two"
    assert ev("items: #{myList}") == "items: one,two"


def test_list_elements_are_type_checked_one_by_one() -> None:
    scope = MappingScope({"mixed": [MAY24, "nope"]})
    err = error("#{plusDays(mixed, 1)}", scope)
    assert err.message == 'plusDays expects a DateTime as argument 1, got String "nope" at column 12'


# ------------------------------------------------------------ functions: argument conversion


def test_datetime_strings_are_accepted_as_datetimes() -> None:
    assert ev("#{plusDays(myDateString, 1)}") == MAY24 + timedelta(days=1)
    assert ev("#{format('2011-05-24T0:00:00z', 'HH:mm')}") == "00:00"
    assert ev("#{day('2011-05-24')}") == 24


def test_integer_strings_and_integral_doubles_are_accepted_as_integers() -> None:
    assert ev("#{plusDays(myDateTime, myDays)}") == MAY24 + timedelta(days=3)
    assert ev("#{plusDays(myDateTime, ' -3 ')}") == MAY24 - timedelta(days=3)
    assert ev("#{plusDays(myDateTime, 2.0)}") == MAY24 + timedelta(days=2)
    assert ev("#{plusHours(myDateTime, 1 + 1)}") == MAY24 + timedelta(hours=2)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("#{plusDays('abc', 1)}", 'plusDays expects a DateTime as argument 1, got String "abc" at column 12'),
        ("#{plusDays(myDateTime, 1.5)}", "plusDays expects an Integer as argument 2, got Double 1.5 at column 24"),
        ("#{plusDays(myDateTime, 'x')}", 'plusDays expects an Integer as argument 2, got String "x" at column 24'),
        ("#{plusDays(myDateTime, myDateTime)}",
         "plusDays expects an Integer as argument 2, got DateTime 2011-05-24T17:10:00 at column 24"),
        ("#{format(myDateTime, 5)}", "format expects a String as argument 2, got Integer 5 at column 22"),
        ("#{day(42)}", "day expects a DateTime as argument 1, got Integer 42 at column 7"),
        ("#{makeDate('a', 1, 1)}", 'makeDate expects an Integer as argument 1, got String "a" at column 12'),
        ("#{myBucket.format('YYYY')}",
         'format expects a DateTime as argument 1, got String "my-bucket" at column 3'),
        ("#{day('" + "x" * 50 + "')}",
         'day expects a DateTime as argument 1, got String "' + "x" * 37 + '..." at column 7'),
    ],
)
def test_argument_type_errors(template: str, message: str) -> None:
    assert error(template).message == message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("#{makeDate(2011, 2, 30)}",
         "makeDate at column 3: 2011-02-30 00:00 is not a valid date and time (day is out of range for month)"),
        ("#{makeDateTime(2011, 5, 24, 24, 0)}",
         "makeDateTime at column 3: 2011-05-24 24:00 is not a valid date and time (hour must be in 0..23)"),
        ("#{makeDate(2011, 13, 1)}",
         "makeDate at column 3: 2011-13-01 00:00 is not a valid date and time (month must be in 1..12)"),
        ("#{plusYears(myDateTime, 8000)}", "plusYears at column 3: the result is outside the supported years 1-9999"),
        ("#{minusMonths(myDateTime, 30000)}",
         "minusMonths at column 3: the result is outside the supported years 1-9999"),
        ("#{plusDays(myDateTime, 9999999)}", "plusDays at column 3: the result is outside the supported years 1-9999"),
        ("#{plusMinutes(myDateTime, 99999999999999999999)}",
         "plusMinutes at column 3: the result is outside the supported years 1-9999"),
        ("#{yesterday(makeDate(1, 1, 1))}", "yesterday at column 3: the result is outside the supported years 1-9999"),
        ("#{format(myDateTime, myBucket)}",
         'format at column 3: illegal pattern letter "b" at position 4 of pattern "my-bucket" '
         "(quote literal text, e.g. 'T')"),
    ],
)
def test_function_failures(template: str, message: str) -> None:
    assert error(template).message == message


# ------------------------------------------------------------ functions: calendar edge cases


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("plusMonths(makeDate(2011,1,31), 1)", datetime(2011, 2, 28, tzinfo=UTC)),
        ("plusMonths(makeDate(2012,1,31), 1)", datetime(2012, 2, 29, tzinfo=UTC)),
        ("plusMonths(makeDate(2011,1,31), 2)", datetime(2011, 3, 31, tzinfo=UTC)),
        ("plusMonths(makeDate(2011,3,31), -1)", datetime(2011, 2, 28, tzinfo=UTC)),
        ("minusMonths(makeDate(2011,3,31), 1)", datetime(2011, 2, 28, tzinfo=UTC)),
        ("minusMonths(makeDate(2011,1,15), 13)", datetime(2009, 12, 15, tzinfo=UTC)),
        ("plusMonths(makeDate(2011,12,31), 1)", datetime(2012, 1, 31, tzinfo=UTC)),
        ("plusYears(makeDate(2012,2,29), 1)", datetime(2013, 2, 28, tzinfo=UTC)),
        ("plusYears(makeDate(2012,2,29), 4)", datetime(2016, 2, 29, tzinfo=UTC)),
        ("minusYears(makeDate(2012,2,29), 1)", datetime(2011, 2, 28, tzinfo=UTC)),
        ("plusMonths(plusMonths(makeDate(2011,1,31), 1), 1)", datetime(2011, 3, 28, tzinfo=UTC)),
        ("plusDays(makeDate(2012,2,28), 1)", datetime(2012, 2, 29, tzinfo=UTC)),
        ("plusHours(makeDateTime(2011,12,31,23,0), 1)", datetime(2012, 1, 1, tzinfo=UTC)),
        ("plusMinutes(myDateTime, -70)", datetime(2011, 5, 24, 16, 0, tzinfo=UTC)),
        ("sunday(makeDateTime(2011,5,22,8,30))", datetime(2011, 5, 22, 8, 30, tzinfo=UTC)),
        ("sunday(makeDate(2011,5,28))", datetime(2011, 5, 22, tzinfo=UTC)),
        ("sunday(makeDate(2011,5,23))", datetime(2011, 5, 22, tzinfo=UTC)),
        ("sunday(makeDate(2011,1,1))", datetime(2010, 12, 26, tzinfo=UTC)),
        ("yesterday(makeDate(2012,3,1))", datetime(2012, 2, 29, tzinfo=UTC)),
        ("firstOfMonth(makeDateTime(2012,2,29,23,59))", datetime(2012, 2, 1, 23, 59, tzinfo=UTC)),
        ("midnight(makeDateTime(2012,2,29,23,59))", datetime(2012, 2, 29, tzinfo=UTC)),
        ("dayOfYear(makeDate(2012,12,31))", 366),
        ("dayOfYear(makeDate(2011,12,31))", 365),
        ("hour(midnight(myDateTime))", 0),
    ],
)
def test_calendar_edge_cases(expression: str, expected: Value) -> None:
    assert ev("#{" + expression + "}") == expected


def test_midnight_drops_sub_second_parts() -> None:
    scope = MappingScope({"t": MAY24.replace(second=5, microsecond=7)})
    assert ev("#{midnight(t)}", scope) == datetime(2011, 5, 24, tzinfo=UTC)


def test_results_are_utc() -> None:
    for name in ("plusDays(myDateTime,1)", "makeDate(2011,5,24)", "sunday(myDateTime)", "midnight(myDateTime)"):
        result = ev("#{" + name + "}")
        assert isinstance(result, datetime)
        assert result.tzinfo is UTC


# ------------------------------------------------------------ method form and nesting


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("@scheduledStartTime.format('YYYY-MM-dd HH:mm:ss')", "2011-05-24 17:10:00"),
        ("node.@scheduledStartTime.format('YYYY')", "2020"),
        ("myDateTime.plusDays(1)", datetime(2011, 5, 25, 17, 10, tzinfo=UTC)),
        ("myDateTime.plusDays(1).format('EEE')", "Wed"),
        ("plusDays(myDateTime, 1).format('dd')", "25"),
        ("makeDate(2011, 5, 24).year()", 2011),
        ("(myDateTime).day()", 24),
        ("myDateTime.firstOfMonth().plusMonths(1).minusDays(1).day()", 31),
        ("format(plusHours(midnight(plusDays(myDateTime, 1)), 2), 'YYYY-MM-dd HH:mm')", "2011-05-25 02:00"),
        ("'day ' + day(myDateTime) * 2", "day 48"),
        ("year(myDateTime) - 1", 2010),
        ("format(plusMinutes(myDateTime, hour(myDateTime) * 60), 'HH')", "10"),
    ],
)
def test_method_form_and_nesting(expression: str, expected: Value) -> None:
    assert ev("#{" + expression + "}") == expected


def test_method_form_reads_the_receiver_as_a_reference() -> None:
    template = parse_template("#{node.@scheduledStartTime.format('YYYY')}")
    assert template.references() == {"node.@scheduledStartTime"}
    assert template.functions() == {"format"}


# ------------------------------------------------------------ syntax errors (at parse time)


@pytest.mark.parametrize(
    ("template", "message", "position"),
    [
        ("#{fromat(x, 'y')}", 'unknown function "fromat" at column 3; did you mean "format"?', 2),
        ("ab #{Format(x, 'y')}", 'unknown function "Format" at column 6; did you mean "format"?', 5),
        ("#{plusDay(x, 1)}", 'unknown function "plusDay" at column 3; did you mean "plusDays"?', 2),
        ("#{frobnicate(x)}", 'unknown function "frobnicate" at column 3', 2),
        ("#{x.fromat('y')}", 'unknown function "fromat" at column 5; did you mean "format"?', 4),
        ("#{format(x)}", "format takes 2 arguments (DateTime, String), got 1 at column 3", 2),
        ("#{day()}", "day takes 1 argument (DateTime), got 0 at column 3", 2),
        ("#{makeDate(1,2,3,4)}", "makeDate takes 3 arguments (Integer, Integer, Integer), got 4 at column 3", 2),
        ("#{x.format()}",
         'format takes 2 arguments (DateTime, String), got 1 (counting the value before ".format") at column 5', 4),
        ("#{x.day(1)}", 'day takes 1 argument (DateTime), got 2 (counting the value before ".day") at column 5', 4),
        ("s3://#{x", 'unterminated expression: "#{" at column 6 has no closing "}"', 5),
        ("#{x} #{y", 'unterminated expression: "#{" at column 6 has no closing "}"', 5),
        ("#{format(x, 'YYYY)}", "unterminated string: the ' at column 13 is never closed", 12),
        ('#{"abc}', 'unterminated string: the " at column 3 is never closed', 2),
        ("#{}", 'empty expression "#{}" at column 1', 0),
        ("a #{  }", 'empty expression "#{}" at column 3', 2),
        ("#{1 +}", "expected a value at column 6, found the end of the expression", 5),
        ("#{(1 + 2}", 'expected ")" at column 9 to close the "(" at column 3, found the end of the expression', 8),
        ("#{1 + 2)}", 'unexpected ")" at column 8; expected an operator or "}"', 7),
        ("#{a b}", 'unexpected "b" at column 5; expected an operator or "}"', 4),
        ("#{1 2}", 'unexpected "2" at column 5; expected an operator or "}"', 4),
        ("#{* 2}", 'expected a value at column 3, found "*"', 2),
        ("#{,}", 'expected a value at column 3, found ","', 2),
        ("#{day(x,)}", 'expected a value at column 9, found ")"', 8),
        ("#{day(x y)}", 'expected "," or ")" in the call of day (opened at column 6) at column 9, found "y"', 8),
        ("#{day(x}", 'expected "," or ")" in the call of day (opened at column 6) at column 8, found '
                     "the end of the expression", 7),
        ("#{1 $ 2}", 'unexpected character "$" at column 5 in an expression', 4),
        ("#{x.5}", 'expected a function call after the "." at column 4, found "5"', 4),
        ("#{x.}", 'expected a function call after the "." at column 4, found the end of the expression', 4),
        ("#{day(x).y}", 'expected a function call after the "." at column 9, found "y"', 9),
        ("#{day(x).y.z()}", 'expected a function call after the "." at column 9, found "y.z"', 9),
        ("#{ #{x} }", '"#{" at column 4 opens an expression inside the expression opened at column 1; '
                      'expressions do not nest: write the inner one without "#{" and "}"', 3),
        ("#{format(x, 'yyyy-qq')}", 'format pattern at column 13: illegal pattern letter "q" at position 6 '
                                    "of pattern \"yyyy-qq\" (quote literal text, e.g. 'T')", 12),
        ("#{x.format('T')}", 'format pattern at column 12: illegal pattern letter "T" at position 1 '
                             "of pattern \"T\" (quote literal text, e.g. 'T')", 11),
    ],
)
def test_syntax_errors(template: str, message: str, position: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_template(template)
    assert caught.value.message == message
    assert caught.value.position == position


def test_expression_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown function"):
        parse_template("#{nope()}")


def test_unknown_reference_suggests_a_close_name() -> None:
    err = error("x#{myBuckt}")
    assert err.message == 'unknown reference "myBuckt" at column 4; did you mean "myBucket"?'
    assert err.position == 3
    assert error("#{zzzzzz}").message == 'unknown reference "zzzzzz" at column 3'


def test_unknown_reference_in_an_unevaluated_branch_is_still_an_error() -> None:
    # Both operands are always evaluated: there is no short circuit in the language.
    assert "unknown reference" in error("#{'a' + missing}").message


# ------------------------------------------------------------ templates


def test_template_without_expressions() -> None:
    template = parse_template("plain text, with # and { and } and $")
    assert template.is_constant
    assert template.render(SCOPE) == "plain text, with # and { and } and $"
    assert template.evaluate(SCOPE) == "plain text, with # and { and } and $"
    assert template.references() == frozenset()
    assert template.functions() == frozenset()


def test_evaluate_returns_the_raw_value_only_for_a_lone_expression() -> None:
    assert parse_template("#{plusDays(myDateTime, 1)}").evaluate(SCOPE) == MAY24 + timedelta(days=1)
    assert parse_template("#{myCount}").evaluate(SCOPE) == 7
    assert parse_template(" #{myCount}").evaluate(SCOPE) == " 7"
    assert parse_template("#{myCount}#{myCount}").evaluate(SCOPE) == "77"
    assert parse_template("#{plusDays(myDateTime, 1)}").render(SCOPE) == "2011-05-25T17:10:00"


def test_adjacent_and_surrounding_text() -> None:
    assert render("#{1}#{2}-#{3}") == "12-3"
    assert render("a#{'}'}b") == "a}b"
    assert render("#{'#{'}") == "#{"
    assert render("}#{1}{") == "}1{"
    assert render("##{1}#") == "#1#"


def test_multiline_expressions() -> None:
    assert ev("#{format(\n  myDateTime,\n  'YYYY'\n)}") == "2011"


def test_backslash_escapes_an_expression() -> None:
    template = parse_template("echo \\#{notAnExpression} #{myCount}")
    assert template.render(SCOPE) == "echo #{notAnExpression} 7"
    assert template.references() == {"myCount"}
    assert parse_template("\\#{").render(SCOPE) == "#{"
    assert parse_template("a\\b").render(SCOPE) == "a\\b"  # other backslashes are text


def test_references_and_functions() -> None:
    template = parse_template(
        "#{format(minusMinutes(node.@scheduledStartTime, myOffset), 'YYYY')}/#{parent.@id}/#{*myPassword}"
        "/#{day(@scheduledEndTime) + myCount}"
    )
    assert template.references() == {"node.@scheduledStartTime", "myOffset", "parent.@id", "*myPassword",
                                     "@scheduledEndTime", "myCount"}
    assert template.functions() == {"format", "minusMinutes", "day"}


def test_template_value_semantics() -> None:
    a, b = Template("#{x}"), Template("#{x}")
    assert a == b
    assert hash(a) == hash(b)
    assert a != Template("#{y}")
    assert "#{x}" in repr(a)
    with pytest.raises(ExpressionError):
        Template("#{x")


def test_parse_template_caches() -> None:
    assert parse_template("#{myCount + 1}") is parse_template("#{myCount + 1}")


def test_scope_errors_surface_unchanged() -> None:
    class Failing:
        def lookup(self, name: str) -> Value:
            raise ExpressionError(f'field "{name}" holds a bad expression', None)

    with pytest.raises(ExpressionError, match='field "x" holds a bad expression'):
        parse_template("#{x}").evaluate(Failing())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#{x}", True),
        ("s3://#{x}/y", True),
        ("plain", False),
        ("# {x}", False),
        ("{x}", False),
        ("${INPUT1_STAGING_DIR}", False),
        ("\\#{x}", False),
        ("\\#{x} #{y}", True),
        ("#{", True),
        ("", False),
    ],
)
def test_has_expression(text: str, expected: bool) -> None:
    assert has_expression(text) is expected


# ------------------------------------------------------------ parse_datetime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2012-01-15T23:59:00", datetime(2012, 1, 15, 23, 59, tzinfo=UTC)),
        ("2011-05-24T0:00:00z", datetime(2011, 5, 24, tzinfo=UTC)),
        ("2011-05-24 17:11:00z", datetime(2011, 5, 24, 17, 11, tzinfo=UTC)),
        ("2011-05-22 17:10:00 UTC", datetime(2011, 5, 22, 17, 10, tzinfo=UTC)),
        ("2011-05-24T17:10:00Z", MAY24),
        ("2011-05-24t17:10:00GMT", MAY24),
        ("2011-05-24T17:10", MAY24),
        ("2011-05-24T17:10:00.5Z", MAY24.replace(microsecond=500000)),
        ("2011-05-24T17:10:00,123456789", MAY24.replace(microsecond=123456)),
        ("2011-05-24T19:10:00+02:00", MAY24),
        ("2011-05-24T10:10:00-0700", MAY24),
        ("2011-05-24T22:10:00+05", MAY24),
        ("2011-05-24", datetime(2011, 5, 24, tzinfo=UTC)),
        ("2011-5-4", datetime(2011, 5, 4, tzinfo=UTC)),
        ("  2011-05-24T17:10:00  ", MAY24),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    result = parse_datetime(text)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", 'invalid DateTime "yesterday": expected a form like 2011-05-24T17:10:00'),
        ("2011-05-24T17", 'invalid DateTime "2011-05-24T17": expected a form like 2011-05-24T17:10:00'),
        ("11-05-24", 'invalid DateTime "11-05-24": expected a form like 2011-05-24T17:10:00'),
        ("2011-02-30", 'invalid DateTime "2011-02-30": day is out of range for month'),
        ("2011-05-24T25:00:00", 'invalid DateTime "2011-05-24T25:00:00": hour must be in 0..23'),
        ("", 'invalid DateTime "": expected a form like 2011-05-24T17:10:00'),
    ],
)
def test_parse_datetime_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_datetime(text)
    assert caught.value.message == message
    assert caught.value.position is None


# ------------------------------------------------------------ properties: dates against Python's calendar


def call(expression: str, **values: Value) -> Value:
    return parse_template("#{" + expression + "}").evaluate(MappingScope(values))


def months_later(dt: datetime, months: int) -> datetime:
    """A reference month addition with Joda's clamping, written independently of the module's."""
    month_index = dt.month - 1 + months
    year = dt.year + month_index // 12
    month = month_index % 12 + 1
    return dt.replace(year=year, month=month, day=min(dt.day, calendar.monthrange(year, month)[1]))


@FAST
@given(utc_datetimes, st.integers(-20000, 20000))
def test_plus_and_minus_days_match_timedelta(dt: datetime, days: int) -> None:
    assert call("plusDays(t, n)", t=dt, n=days) == dt + timedelta(days=days)
    assert call("minusDays(t, n)", t=dt, n=days) == dt - timedelta(days=days)


@FAST
@given(utc_datetimes, st.integers(-10**6, 10**6))
def test_fixed_units_match_timedelta(dt: datetime, n: int) -> None:
    assert call("plusMinutes(t, n)", t=dt, n=n) == dt + timedelta(minutes=n)
    assert call("minusMinutes(t, n)", t=dt, n=n) == dt - timedelta(minutes=n)
    assert call("plusHours(t, n)", t=dt, n=n // 60) == dt + timedelta(hours=n // 60)
    assert call("minusHours(t, n)", t=dt, n=n // 60) == dt - timedelta(hours=n // 60)
    assert call("plusWeeks(t, n)", t=dt, n=n // 10000) == dt + timedelta(weeks=n // 10000)
    assert call("minusWeeks(t, n)", t=dt, n=n // 10000) == dt - timedelta(weeks=n // 10000)


@FAST
@given(utc_datetimes, st.integers(-1200, 1200))
def test_plus_months_matches_a_reference_with_clamping(dt: datetime, months: int) -> None:
    expected = months_later(dt, months)
    assert call("plusMonths(t, n)", t=dt, n=months) == expected
    assert call("minusMonths(t, n)", t=dt, n=-months) == expected
    result = call("plusMonths(t, n)", t=dt, n=months)
    assert isinstance(result, datetime)
    assert result.day <= dt.day
    assert result.time() == dt.time()


@FAST
@given(utc_datetimes, st.integers(-100, 100))
def test_plus_years_is_twelve_months(dt: datetime, years: int) -> None:
    assert call("plusYears(t, n)", t=dt, n=years) == months_later(dt, 12 * years)
    assert call("minusYears(t, n)", t=dt, n=years) == months_later(dt, -12 * years)


@FAST
@given(utc_datetimes, st.integers(-500, 500), st.integers(-500, 500))
def test_day_arithmetic_composes(dt: datetime, a: int, b: int) -> None:
    assert call("plusDays(plusDays(t, a), b)", t=dt, a=a, b=b) == call("plusDays(t, a + b)", t=dt, a=a, b=b)
    assert call("minusDays(plusDays(t, a), a)", t=dt, a=a) == dt


@FAST
@given(utc_datetimes)
def test_field_getters_match_datetime_attributes(dt: datetime) -> None:
    getters = ("year", "month", "day", "hour", "minute", "dayOfYear")
    fields = tuple(call(f"{getter}(t)", t=dt) for getter in getters)
    assert fields == (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.timetuple().tm_yday)


@FAST
@given(utc_datetimes)
def test_midnight_firstofmonth_yesterday_invariants(dt: datetime) -> None:
    midnight = call("midnight(t)", t=dt)
    assert midnight == datetime(dt.year, dt.month, dt.day, tzinfo=UTC)
    assert timedelta(0) <= dt - midnight < timedelta(days=1)  # type: ignore[operator]
    assert call("midnight(midnight(t))", t=dt) == midnight
    first = call("firstOfMonth(t)", t=dt)
    assert first == dt.replace(day=1)
    assert call("day(firstOfMonth(t))", t=dt) == 1
    assert call("yesterday(t)", t=dt) == dt - timedelta(days=1)


@FAST
@given(utc_datetimes)
def test_sunday_is_the_most_recent_sunday_at_the_same_time(dt: datetime) -> None:
    sunday = call("sunday(t)", t=dt)
    assert isinstance(sunday, datetime)
    assert sunday.weekday() == 6
    assert sunday.time() == dt.time()
    assert timedelta(0) <= dt - sunday < timedelta(days=7)
    assert call("sunday(sunday(t))", t=dt) == sunday


@FAST
@given(st.integers(1, 9999), st.integers(1, 12), st.integers(1, 31), st.integers(0, 23), st.integers(0, 59))
def test_make_datetime_agrees_with_datetime(year: int, month: int, day: int, hour: int, minute: int) -> None:
    assume(day <= calendar.monthrange(year, month)[1])
    expected = datetime(year, month, day, hour, minute, tzinfo=UTC)
    assert call("makeDateTime(y, mo, d, h, mi)", y=year, mo=month, d=day, h=hour, mi=minute) == expected
    assert call("makeDate(y, mo, d)", y=year, mo=month, d=day) == expected.replace(hour=0, minute=0)


@FAST
@given(utc_datetimes)
def test_format_round_trips_through_parse_datetime(dt: datetime) -> None:
    text = call("format(t, 'yyyy-MM-dd HH:mm:ss')", t=dt)
    assert text == dt.strftime("%Y-%m-%d %H:%M:%S")
    assert parse_datetime(str(text)) == dt.replace(microsecond=0)
    assert parse_datetime(to_string(dt)) == dt.replace(microsecond=0)
    assert call("format(t, \"YYYY-MM-dd'T'HH:mm:ss\")", t=to_string(dt)) == to_string(dt)
    assert call("format(t, 'YYYY-MM-dd\\'T\\'HH:mm:ss')", t=to_string(dt)) == to_string(dt)


# ------------------------------------------------------------ properties: arithmetic and robustness


@FAST
@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_integer_arithmetic_matches_java(a: int, b: int) -> None:
    assert call("a + b", a=a, b=b) == a + b
    assert call("a - b", a=a, b=b) == a - b
    assert call("a * b", a=a, b=b) == a * b
    if b != 0:
        quotient = call("a / b", a=a, b=b)
        assert isinstance(quotient, int)
        assert quotient == math.trunc(a / b)  # exact: |a| < 2**53
        assert quotient * b + math.fmod(a, b) == a  # Java's remainder keeps the dividend's sign


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_double_to_string_reads_back(value: float) -> None:
    assert float(to_string(value)) == value


@FAST
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_expression_error(text: str) -> None:
    try:
        template = parse_template(text)
    except ExpressionError as err:
        assert err.message
        assert err.position is None or 0 <= err.position <= len(text)
        return
    assert isinstance(template.references(), frozenset)


@FAST
@given(st.text(max_size=40).filter(lambda s: "#{" not in s))
def test_text_without_expressions_renders_unchanged(text: str) -> None:
    assert parse_template(text).render(MappingScope({})) == text


@FAST
@given(st.text(alphabet=st.characters(blacklist_characters="'\\", codec="utf-8"), max_size=30))
def test_string_literals_round_trip(text: str) -> None:
    assert parse_template("#{'" + text + "'}").evaluate(MappingScope({})) == text
