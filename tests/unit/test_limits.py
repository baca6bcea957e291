"""Every limit of datapipeline.core.limits, each refused with a message naming the field or the place.

That the refusal comes before the expensive work is checked by counting the work (tokens scanned, values
walked, intervals or fire times looked at, evaluations), never by timing it: a timed assertion flakes on a
loaded machine. benchmarks/hostile_input_bench.py has the times, as ratios to normal inputs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from datapipeline.cli.validate import validate_files
from datapipeline.core import schedule as schedule_module
from datapipeline.core.definition import parse_manifest, parse_pipeline
from datapipeline.core.durations import DurationError, Period, parse_duration, parse_period
from datapipeline.core.expressions import ExpressionError, MappingScope, Template, _Evaluator, parse_template
from datapipeline.core.limits import (
    DEFAULT_LIMITS,
    Limits,
    _Expansion,
    _Walk,
    cron_shortest_gap,
    schedule_problems,
    spec_problems,
)
from datapipeline.core.loader import BoundedLoader, LoadError, load_json, load_yaml_documents
from datapipeline.core.model import Schedule
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import ObjectScope, ResolveError, RunContext, resolve_command
from datapipeline.core.schedule import DEFAULT_BATCH, intervals, plan

START = datetime(2026, 1, 1, tzinfo=UTC)
# The classic "billion laughs": nine lines that expand to 9**9 strings (about 1.85 GB once written out).
ALIAS_BOMB = "\n".join(
    [f'a: &a [{", ".join(["lol"] * 9)}]'] +
    [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]) + "\n"


def spec(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"schedule": {"period": "1 day", "startDateTime": "2026-01-01T00:00:00Z"},
                            "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "echo hi"}]}
    base.update(extra)
    return base


def problems(value: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> list[str]:
    try:
        parse_pipeline(value, limits=limits)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


def command(text: str, **vars_: str) -> dict[str, Any]:
    activity: dict[str, Any] = {"name": "a", "type": "ShellCommandActivity", "command": text}
    if vars_:
        activity["vars"] = vars_
    return spec(activities=[activity])


def resolve(value: dict[str, Any]) -> str:
    definition = parse_pipeline(value)
    run = RunContext("p", "p-1", START, START + timedelta(days=1))
    return str(resolve_command(definition, run, "activity", "a", "a", 1).task.fields["command"])


class Count:
    """How many times a step ran: the work a hostile input costs, the same on a busy machine as on an idle one."""

    def __init__(self) -> None:
        self.n = 0


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Count:
    """Counts calls of ``owner.name`` (a function of a module or a method of a class) for the test's length."""
    count, original = Count(), getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        count.n += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return count


def count_items(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Count:
    """Counts the items a generator function ``owner.name`` yields (what its callers pulled from it)."""
    count, original = Count(), getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for item in original(*args, **kwargs):
            count.n += 1
            yield item

    monkeypatch.setattr(owner, name, counting)
    return count


def forbid(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError(f"{name} must not run here")

    monkeypatch.setattr(owner, name, refused)


# ---------------------------------------------------------------------------------------------- the loader
def test_an_alias_bomb_is_refused_before_it_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(ALIAS_BOMB) < 600
    composed = count_calls(monkeypatch, BoundedLoader, "compose_node")
    measured = count_calls(monkeypatch, BoundedLoader, "_measure")
    forbid(monkeypatch, BoundedLoader, "construct_document")  # no Python value is built from it
    with pytest.raises(LoadError) as error:
        load_yaml_documents(ALIAS_BOMB)
    assert str(error.value) == ("line 6, column 8: the document holds more than 100,000 values once its YAML "
                                "aliases are expanded (an alias bomb?)")
    # Aliases are counted from a memo of what they name: work in proportion to the text, not to its 9**9 values.
    assert composed.n + measured.n < len(ALIAS_BOMB)


def test_aliases_within_the_limits_still_work() -> None:
    assert load_yaml_documents("a: &x {k: v}\nb: *x\nc: {<<: *x, j: w}\n") == [
        {"a": {"k": "v"}, "b": {"k": "v"}, "c": {"k": "v", "j": "w"}}]


@pytest.mark.parametrize(("text", "message"), [
    ("a: " + "[" * 5000 + "]" * 5000, "line 1, column 67: nested too deeply: more than 64 levels"),
    ("a: " + "{b: " * 100 + "}" * 100, "nested too deeply: more than 64 levels"),
    ("".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "x", "nested too deeply: more than 64 levels"),
    ("a: &x [1]\nb: " + "[" * 63 + "*x" + "]" * 63, "line 2, column 67: nested too deeply: more than 64 levels"),
    ("a: &x [*x]\n", "line 1, column 8: the alias *x is inside the value it names (a cycle)"),
    ("n: " + "1" * 5000, "line 1, column 4: a number of 5000 digits is too large; at most 100 digits"),
    ("n: 0x" + "f" * 200, "line 1, column 4: a number of 202 digits is too large; at most 100 digits"),
    ("n: " + "9" * 200 + ".5", "line 1, column 4: a number of 201 digits is too large; at most 100 digits"),
    ("a: 1\na: 2\n", 'not valid YAML: line 2, column 1: the key "a" is written twice (first on line 1)'),
    ("a: b\x00", "not valid YAML: unacceptable character #x0000: special characters are not allowed in "),
    ("x" * 1_048_577, "the file is larger than 1,048,576 bytes"),
])
def test_the_yaml_loader_refuses_with_the_place(text: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scanned = count_calls(monkeypatch, BoundedLoader, "fetch_more_tokens")
    with pytest.raises(LoadError) as error:
        load_yaml_documents(text)
    assert message in str(error.value)
    # The scanner stops where the limit is reached (a nesting level takes up to three tokens), however long the
    # text: its look-ahead over a run of "[[[[" costs more with every level, so the rest must not be scanned.
    assert scanned.n <= 4 * DEFAULT_LIMITS.max_depth


@pytest.mark.parametrize(("text", "message"), [
    ("a: " + "[" * 5000 + "]" * 5000, "line 1, column 67: nested too deeply: more than 64 levels"),
    ("a: " + "{b: " * 100 + "}" * 100, "line 1, column 253: nested too deeply: more than 64 levels"),
    ("".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "x", "line 64, column 64: nested too deeply"),
    (ALIAS_BOMB, "line 6, column 8: the document holds more than 100,000 values"),
])
def test_validate_reads_a_hostile_file_no_further_than_the_loader(text: str, message: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    scanned = count_calls(monkeypatch, BoundedLoader, "fetch_more_tokens")
    out, err = io.StringIO(), io.StringIO()
    assert validate_files([path], out, err) == 1
    assert err.getvalue().startswith(f"{path}: {message}") and out.getvalue() == ""
    # The CLI scans a file a second time, for expressions YAML reads as comments, but only once it loaded: a
    # refused file costs what the loader spent on it.
    assert scanned.n <= 4 * DEFAULT_LIMITS.max_depth


def test_date_times_stay_strings_as_kubectl_reads_them() -> None:
    assert load_yaml_documents("t: 2026-01-31T00:00:00Z\n") == [{"t": "2026-01-31T00:00:00Z"}]


@pytest.mark.parametrize(("text", "message"), [
    ('{"objects": [' + "[" * 450 + "]" * 450 + "]}", "objects" + "[0]" * 63 + ": is nested more than 64 levels deep"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply: more than 64 levels"),
    ('{"objects": [],\n "n": ' + "1" * 5000 + "}", "line 2, column 7: a number of 5000 digits is too large"),
    ('{"n": NaN}', "not valid JSON: NaN is not a JSON number"),
    ('{"objects": [\n  {"id": 1,}\n]}', "not valid JSON: line 2, column 12: a key must be a string in double "
                                         "quotes"),
    (json.dumps({"s": "x" * 70_000}), "s: is 70,000 characters long; at most 65,536"),
])
def test_the_json_loader_refuses_with_the_place(text: str, message: str) -> None:
    with pytest.raises(LoadError) as error:
        load_json(text)
    assert message in str(error.value)


# ---------------------------------------------------------------------------------------------- a spec's shape
def test_spec_limits_name_the_field() -> None:
    deep: Any = "x"
    for _ in range(70):
        deep = [deep]
    assert problems(spec(description=deep)) == ["spec.description" + "[0]" * 63 + ": is nested more than 64 levels "
                                                                                  "deep"]
    assert problems(command("x" * 70_000)) == ["spec.activities[0].command: is 70,000 characters long; at most 65,536"]
    assert problems(spec(maxActiveRuns=10**150)) == ["spec.maxActiveRuns: the number is too large; at most 100 digits"]
    assert problems(spec(description=["x" * 60_000] * 20)) == ["spec: is larger than 1,048,576 bytes"]
    assert problems(spec(description=[1] * 100_001)) == ["spec: holds more than 100,000 values (fields, list items "
                                                         "and scalars, YAML aliases counted as copies)"]
    many = [{"name": f"a{i}", "type": "ShellCommandActivity", "command": "x"} for i in range(2001)]
    assert problems(spec(activities=many)) == ["spec: holds 2,001 objects; at most 2,000 in all sections together"]
    assert problems(spec(schedule={"cron": "1," * 200 + "1 * * * *"})) == [
        "spec.schedule.cron: is 409 characters long; at most 256"]
    assert problems(spec(description={1, 2})) == ["spec.description: must be a mapping, list, string, number, "
                                                  "boolean or null, not set"]


def test_a_shared_value_counts_every_time_it_is_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    level: Any = ["lol"] * 9
    for _ in range(8):
        level = [level] * 9  # what an alias bomb becomes once loaded: a small DAG
    walks: list[_Walk] = []
    walk_run = _Walk.run

    def run(self: _Walk, root: Any, path: str) -> Any:
        walks.append(self)
        return walk_run(self, root, path)

    monkeypatch.setattr(_Walk, "run", run)
    assert spec_problems({"description": level})[0].message.startswith("holds more than 100,000 values")
    # The walk stops at the value past the limit, not after the 9**9 it reaches through the shared lists.
    assert [walk.nodes for walk in walks] == [DEFAULT_LIMITS.max_nodes + 1]


def test_long_values_are_clipped_in_messages() -> None:
    (message,) = problems(spec(scheduleType="x" * 1000))
    assert len(message) < 250 and "... (1000 characters)" in message
    with pytest.raises(DefinitionError, match=r"^metadata\.name: a number of too many digits must be a DNS label"):
        parse_manifest({"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": 10**5000},
                        "spec": spec()})


# ---------------------------------------------------------------------------------------------- schedules
def test_the_minimum_period_is_one_minute_and_configurable() -> None:
    assert problems(spec(schedule={"period": "30 seconds"})) == [
        'spec.schedule.period: "30 seconds" is shorter than the minimum period, 1 minute (set by the operator\'s '
        "administrator)"]
    assert problems(spec(schedule={"cron": "*/10 * * * * *"})) == [
        'spec.schedule.cron: "*/10 * * * * *" fires 10s apart; the minimum period is 1 minute (set by the '
        "operator's administrator)"]
    assert problems(spec(schedule={"period": "1 minute"})) == []
    assert problems(spec(schedule={"cron": "* * * * *"})) == []
    relaxed = Limits(min_schedule_period=timedelta(seconds=10))
    assert problems(spec(schedule={"period": "30 seconds"}), relaxed) == []
    assert problems(spec(schedule={"cron": "*/5 * * * * *"}), relaxed)[0].startswith("spec.schedule.cron: ")
    strict = Limits(min_schedule_period=timedelta(hours=1))
    assert problems(spec(schedule={"cron": "0,30 * * * *"}), strict)[0].startswith(
        'spec.schedule.cron: "0,30 * * * *" fires 30m apart; the minimum period is 1 hour')


def test_the_minimum_period_comes_from_the_environment() -> None:
    assert Limits.from_environ({}).min_schedule_period == timedelta(minutes=1)
    assert Limits.from_environ({"DATAPIPELINE_MIN_SCHEDULE_PERIOD": "5s"}).min_schedule_period == timedelta(seconds=5)
    assert Limits.from_environ({"DATAPIPELINE_MIN_SCHEDULE_PERIOD": "0"}).min_schedule_period == timedelta(0)
    with pytest.raises(ValueError, match='DATAPIPELINE_MIN_SCHEDULE_PERIOD: "soon" is not a duration'):
        Limits.from_environ({"DATAPIPELINE_MIN_SCHEDULE_PERIOD": "soon"})


@pytest.mark.parametrize(("cron", "gap"), [
    ("* * * * *", 60), ("*/5 * * * * *", 5), ("0 3 * * *", 86400), ("0,59 0,23 * * *", 60), ("0 0,23 * * *", 3600),
    ("30 0 * * * *", 3600), ("0 0 29 2 *", 86400), ("59 23 * * *", 86400), ("0,30 9-17 * * 1-5", 1800),
])
def test_the_shortest_cron_gap(cron: str, gap: int) -> None:
    assert cron_shortest_gap(cron) == timedelta(seconds=gap)


def test_occurrences_and_dates_are_bounded() -> None:
    assert problems(spec(schedule={"period": "1 day", "startDateTime": "2026-01-01T00:00:00Z",
                                   "occurrences": 10**12})) == [
        "spec.schedule.occurrences: 1,000,000,000,000 is too many; at most 10,000 (use endDateTime for longer)"]
    assert problems(spec(schedule={"period": "1 day", "startDateTime": "9999-12-31T00:00:00Z"})) == [
        "spec.schedule.startDateTime: 9999-12-31T00:00:00Z is out of range: it must be from 1970-01-01 and before "
        "9000-01-01"]
    assert problems(spec(schedule={"period": "1 day", "startDateTime": "0001-01-01T00:00:00Z",
                                   "endDateTime": "9500-01-01T00:00:00Z"}))[0].startswith(
        "spec.schedule.startDateTime: 1-01-01T00:00:00Z is out of range")
    period = Schedule(period=Period(1, "days"), start=START, occurrences=6)
    assert [str(p) for p in schedule_problems(period, "s", Limits(max_occurrences=5))] == [
        "s.occurrences: 6 is too many; at most 5 (use endDateTime for longer)"]


def test_huge_durations_are_too_long_not_a_crash() -> None:
    with pytest.raises(DurationError, match=r'^"9+\.\.\." \(5005 characters\) is too long; at most 100 years$'):
        parse_period("9" * 5000 + " days")
    with pytest.raises(DurationError, match="too long"):
        parse_duration("9" * 5000 + "d")
    assert parse_period("0" * 30 + "1 day") == Period(1, "days")


# ---------------------------------------------------------------------------------------------- planning
def test_a_backlog_is_worked_through_a_bounded_pass_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = Schedule(period=Period(1, "seconds"), start=START)
    now = START + timedelta(days=30)
    cursor: datetime | None = START + timedelta(days=1)
    looked_at = count_items(monkeypatch, schedule_module, "intervals")
    decision = plan(schedule, "cron", start=START, cursor=cursor, now=now, missed_run_policy="RunLatest")
    # Of the 2.5 million due intervals, the pass looks at its 1,000 and at the next, to know a backlog remains.
    assert looked_at.n == DEFAULT_LIMITS.max_intervals_per_pass + 1
    assert decision.create == () and len(decision.skipped) == 1_000 and decision.waiting == 0
    assert decision.cursor == cursor + timedelta(seconds=1_000)
    assert decision.next_run_time == cursor + timedelta(seconds=1_001) and not decision.finished
    # With the backlog gone, RunLatest creates the newest interval only.
    last = plan(schedule, "cron", start=START, cursor=now - timedelta(seconds=500), now=now,
                missed_run_policy="RunLatest")
    assert [i.start for i in last.create] == [now] and len(last.skipped) == 499
    skip = plan(schedule, "cron", start=START, cursor=cursor, now=now, missed_run_policy="Skip")
    assert len(skip.skipped) == 1_000 and skip.create == ()


def test_the_first_pass_of_a_long_backfill_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = Schedule(period=Period(1, "minutes"), start=datetime(1970, 1, 1, tzinfo=UTC))
    looked_at = count_items(monkeypatch, schedule_module, "intervals")
    decision = plan(schedule, "cron", start=datetime(1970, 1, 1, tzinfo=UTC), cursor=None, now=START,
                    max_active_runs=5)
    assert len(decision.create) == 5 and decision.waiting == 96
    assert looked_at.n == DEFAULT_BATCH + 1  # one batch and the next, of the 29 million minutes since 1970


def test_occurrences_of_a_period_cost_nothing_to_count(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = Schedule(period=Period(1, "minutes"), start=START, occurrences=100_000)
    forbid(monkeypatch, schedule_module, "_nth_boundary")  # the cron schedules' count of fire times
    computed = count_calls(monkeypatch, schedule_module, "period_start")
    decision = plan(schedule, "cron", start=START, cursor=START + timedelta(minutes=99_998),
                    now=START + timedelta(days=365))
    assert computed.n < 10  # the end is interval 100,000's start, computed directly; a few around the cursor
    assert [i.start for i in decision.create] == [START + timedelta(minutes=99_999)] and decision.finished


def test_the_most_occurrences_of_a_cron_schedule_are_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = Schedule(cron="* * * * *", start=START, occurrences=DEFAULT_LIMITS.max_occurrences)
    schedule_module._nth_boundary.cache_clear()  # another test may have counted this schedule already
    fired = count_items(monkeypatch, schedule_module, "cron_fire_times")
    first = plan(schedule, "cron", start=START, cursor=START + timedelta(minutes=9_998), now=START + timedelta(days=30))
    assert [i.start for i in first.create] == [START + timedelta(minutes=9_999)] and first.finished
    # The first pass counts the fire times up to the limit (once: that is the most occurrences cost) ...
    assert DEFAULT_LIMITS.max_occurrences < fired.n <= DEFAULT_LIMITS.max_occurrences + 10
    fired.n = 0
    plan(schedule, "cron", start=START, cursor=START + timedelta(minutes=9_999), now=START + timedelta(days=30))
    assert fired.n < 10  # ... and a later pass reads the count kept, and the few fire times around its cursor


@pytest.mark.parametrize("schedule", [
    Schedule(period=Period(100, "years")), Schedule(period=Period(1, "days")), Schedule(cron="0 0 * * *"),
    Schedule(period=Period(1, "months"), time_zone="Pacific/Kiritimati"), Schedule(cron="0 0 * * *", time_zone="Etc/GMT+12"),
])
def test_time_ends_in_the_year_9999_without_an_error(schedule: Schedule) -> None:
    start = datetime(9999, 12, 25, tzinfo=UTC)
    found = list(intervals(schedule, start))
    assert len(found) < 10
    decision = plan(schedule, "cron", start=start, cursor=None, now=datetime(9999, 12, 31, 23, tzinfo=UTC))
    assert decision.finished or decision.next_run_time is not None


# ---------------------------------------------------------------------------------------------- expressions
@pytest.mark.parametrize(("text", "message"), [
    ("#{" + "(" * 40 + "1" + ")" * 40 + "}", "the expression at column 1 nests parentheses, calls and operators more "
                                             "than 32 levels deep"),
    ("#{" + "+".join(["1"] * 40) + "}", "more than 32 levels deep"),
    ("#{" + "-" * 40 + "1}", "more than 32 levels deep"),
    ("#{" + "plusDays(" * 40 + "@scheduledStartTime" + ",1)" * 40 + "}", "more than 32 levels deep"),
    ("#{'" + "x" * 3000 + "'}", "the expression at column 1 is longer than 2,048 characters"),
    ("#{" + "1" * 5000 + "}", "number at column 3: a number of 5000 digits is too large; at most 100 digits"),
])
def test_expression_limits(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as error:
        parse_template(text)
    assert message in str(error.value)
    assert problems(command(text))[0].startswith("spec.activities[0].command: bad expression: ")


def test_evaluation_results_are_bounded() -> None:
    scope = MappingScope({"big": 10**60, "text": "x" * 600_000, "digits": "7" * 5000})
    with pytest.raises(ExpressionError, match="the result at column 7 has more than 100 digits"):
        parse_template("#{big * big}").evaluate(scope)
    with pytest.raises(ExpressionError, match="the result at column 8 is longer than 1,048,576 characters"):
        parse_template("#{text + text}").evaluate(scope)
    with pytest.raises(ExpressionError, match="once the expression at column 8 is evaluated"):
        parse_template("#{text}#{text}").render(scope)
    with pytest.raises(ExpressionError, match='operator "\\*" at column 10: a number of 5000 digits is too large'):
        parse_template("#{digits * 2}").evaluate(scope)
    with pytest.raises(ExpressionError, match="plusDays argument 2 at column 33: a number of 5000 digits"):
        parse_template("#{plusDays(@scheduledStartTime, digits)}").evaluate(
            MappingScope({"@scheduledStartTime": START, "digits": "7" * 5000}))


def test_variables_that_double_each_other_are_refused_before_any_run(monkeypatch: pytest.MonkeyPatch) -> None:
    doubling = {f"myV{i}": f"#{{myV{i + 1}}}#{{myV{i + 1}}}" for i in range(40)} | {"myV40": "x"}
    bounded = count_calls(monkeypatch, _Expansion, "_text")
    evaluated = [count_calls(monkeypatch, Template, "render_each"), count_calls(monkeypatch, _Evaluator, "evaluate")]
    assert problems(command("#{myV0}", **doubling)) == [
        "spec.activities[0].vars.myV19: would be longer than 1,048,576 characters once evaluated: it repeats fields "
        "or variables that repeat others"]
    # Each variable's length is bounded once (memoised), not once per path to it (2**40 paths), and nothing is
    # evaluated: the upper bound comes from the texts alone.
    assert bounded.n <= len(doubling) + 1  # the variables and the command
    fan = {f"myD{i}": f"#{{myD{i + 1}}}" * 50 for i in range(3)} | {"myD3": "x" * 1000}
    bounded.n = 0
    assert problems(spec(defaults={"vars": fan})) == [
        "spec.defaults.vars.myD1: would be longer than 1,048,576 characters once evaluated: it repeats fields or "
        "variables that repeat others"]
    assert bounded.n <= len(fan) + 1
    assert [count.n for count in evaluated] == [0, 0]
    script = {"name": "b", "type": "ShellCommandActivity", "command": "x" * 60_000 + "#{myX}" * 10,
              "vars": {"myX": "y" * 60_000}}
    assert problems(spec(activities=[script])) == []  # 660,000 characters: long, but within the limit


def test_text_that_grows_through_references_stops_at_the_limit_naming_the_field(
        monkeypatch: pytest.MonkeyPatch) -> None:
    value = spec(dataNodes=[{"name": "n0", "type": "S3DataNode", "directoryPath": "#{myY}", "vars": {"myY": "y" * 60_000}}],
                 activities=[{"name": "a", "type": "ShellCommandActivity", "output": ["n0"],
                              "command": "#{output.directoryPath}" * 20}])
    evaluations = count_calls(monkeypatch, ObjectScope, "_spend")
    with pytest.raises(ResolveError) as error:
        resolve(value)
    assert str(error.value).startswith("spec.activities[0].command: the text is longer than 1,048,576 characters")
    # The 18th copy of 60,000 characters takes the text past the limit: the last two are never evaluated (each
    # copy is two evaluations at most: the data node's field and the variable it reads).
    assert evaluations.n <= 2 * 18


def test_a_variable_read_many_times_is_evaluated_once() -> None:
    doubling = {f"myV{i}": f"#{{myV{i + 1}}}#{{myV{i + 1}}}" for i in range(12)} | {"myV12": "ab"}
    assert resolve(command("#{myV0}", **doubling)) == "ab" * 4096


def test_references_inside_each_other_are_bounded() -> None:
    chain = {f"myV{i}": f"#{{myV{i + 1}}}" for i in range(20)} | {"myV20": "end"}
    with pytest.raises(ResolveError, match='"myV16" is reached through more than 16 references inside each other'):
        resolve(command("#{myV0}", **chain))
    short = {f"myV{i}": f"#{{myV{i + 1}}}" for i in range(10)} | {"myV10": "end"}
    assert resolve(command("#{myV0}", **short)) == "end"


def test_fan_out_through_references_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    activities = [{"name": "a", "type": "ShellCommandActivity", "command": "#{dependsOn.myX}",
                   "dependsOn": [f"b{j}" for j in range(30)]}]
    for level in range(6):
        for j in range(30):
            activity: dict[str, Any] = {"name": f"{'b' * (level + 1)}{j}", "type": "ShellCommandActivity",
                                        "command": "x", "vars": {"myX": "#{dependsOn.myX}" if level < 5 else "x"}}
            if level < 5:
                activity["dependsOn"] = [f"{'b' * (level + 2)}{k}" for k in range(30)]
            activities.append(activity)
    evaluations = count_calls(monkeypatch, ObjectScope, "_spend")
    with pytest.raises(ResolveError, match="takes more than 10,000 steps"):
        resolve(spec(activities=activities))
    assert evaluations.n == DEFAULT_LIMITS.max_evaluation_steps + 1  # the one refused; of 30**6 reads


def test_a_manifest_at_the_limits_is_still_valid() -> None:
    doc = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "edge"},
           "spec": spec(schedule={"cron": "* * * * *", "startDateTime": "8999-12-31T00:00:00Z", "occurrences": 10_000},
                        description="x" * 65_536)}
    assert parse_manifest(doc).schedule is not None
