"""Hostile inputs against a normal input of the same kind, timed in the same run: what each limit costs and saves.

The unit tests (tests/unit/test_limits.py, tests/unit/test_fuzz.py) check that a hostile input is refused
before the expensive work by counting that work, never by timing it. This script gives the times: for each
kind of input (a YAML file, the CLI's validate, an AWS definition's JSON, a Pipeline spec, an expression, a
task's resolution, a scheduling pass, a parameter value), a normal input is the baseline and every hostile
one of that kind is shown as a ratio to it (the parameter values' patterns take a backtracking engine
exponential time; RE2 matches in linear time). Each input is run once first to check that it gets what the
limits promise (refused with its error, or accepted), and what it got is printed.

Timing: each case is calibrated to take at least --min-time per measurement (a loop of calls), then measured
--repeat times, the cases of a kind one after the other in every round (so a burst of load hits all of them
alike); the table shows the median time per call. Caches that would hide the work are cleared before each
call (parsed templates; a cron schedule's count of fire times, except in the case that shows the cache).

Not a test; nothing runs it but a person:
    PYTHONPATH=$PWD/operator python benchmarks/hostile_input_bench.py [--repeat 5] [--min-time 0.05]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from datapipeline.cli.validate import validate_files  # noqa: E402
from datapipeline.core import expressions, schedule  # noqa: E402
from datapipeline.core.definition import parse_pipeline  # noqa: E402
from datapipeline.core.durations import Period  # noqa: E402
from datapipeline.core.expressions import ExpressionError, parse_template  # noqa: E402
from datapipeline.core.limits import DEFAULT_LIMITS, clip  # noqa: E402
from datapipeline.core.loader import LoadError, load_json, load_yaml_documents  # noqa: E402
from datapipeline.core.model import PipelineDefinition, Schedule  # noqa: E402
from datapipeline.core.problems import DefinitionError  # noqa: E402
from datapipeline.core.resolve import ResolveError, RunContext, resolve_command  # noqa: E402
from datapipeline.core.values import value_problem  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
EXAMPLE = ROOT / "examples" / "s3-to-postgres.yaml"
AWS_EXAMPLE = ROOT / "tests" / "aws" / "getting-started-shell.json"
# The classic "billion laughs": nine lines that expand to 9**9 strings (about 1.85 GB once written out).
ALIAS_BOMB = "\n".join(
    [f'a: &a [{", ".join(["lol"] * 9)}]'] +
    [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]) + "\n"


@dataclass(frozen=True)
class Case:
    kind: str  # the first case of each kind is its baseline
    name: str
    call: Callable[[], object]
    refused_with: type[Exception] | None = None  # the error the limits promise; None: the input is accepted


def outcome(case: Case) -> str:
    """What the input gets, checked against what the limits promise (raises SystemExit when it differs)."""
    try:
        result = case.call()
    except Exception as error:
        if case.refused_with is None or not isinstance(error, case.refused_with):
            raise SystemExit(f"{case.kind}, {case.name}: unexpected {type(error).__name__}: {error}") from error
        return f"refused: {clip(str(error), 160)}"
    if case.refused_with is not None:
        raise SystemExit(f"{case.kind}, {case.name}: accepted; expected {case.refused_with.__name__}")
    return f"accepted: {clip(str(result), 160)}"


class Refused(ValueError):
    """A problem a function returns (a parameter value's) or prints (validate, exit 1), raised for ``outcome``."""


def quiet(call: Callable[[], object], *errors: type[Exception]) -> Callable[[], None]:
    """``call`` with its expected errors swallowed, for the timing loop."""
    def run() -> None:
        with contextlib.suppress(*errors):
            call()
    return run


def seconds(run: Callable[[], None], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        run()
    return time.perf_counter() - start


def calibrate(run: Callable[[], None], min_time: float) -> int:
    """Calls per measurement so that one measurement takes at least ``min_time``."""
    loops = 1
    while (took := seconds(run, loops)) < min_time:
        loops = max(loops * 2, int(loops * min_time / max(took, 1e-9) * 1.2))
    return loops


# ---------------------------------------------------------------------------------------------- the inputs
def fresh_templates() -> None:
    expressions._cached_template.cache_clear()


def yaml_cases() -> list[Case]:
    text = EXAMPLE.read_text(encoding="utf-8")
    indent = "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "x"
    kind = "YAML file"
    return [
        Case(kind, f"{EXAMPLE.relative_to(ROOT)} ({len(text):,} B, 3 documents)",
             lambda: f"{len(load_yaml_documents(text))} documents"),
        Case(kind, f"alias bomb: {len(ALIAS_BOMB)} B, 9**9 values", lambda: load_yaml_documents(ALIAS_BOMB), LoadError),
        Case(kind, '"[" x 5000: flow nesting', lambda: load_yaml_documents("a: " + "[" * 5000 + "]" * 5000), LoadError),
        Case(kind, "100 levels of indentation", lambda: load_yaml_documents(indent), LoadError),
        Case(kind, "a 5,000-digit number", lambda: load_yaml_documents("n: " + "1" * 5000), LoadError),
        Case(kind, "1 MiB + 1 byte", lambda: load_yaml_documents("x" * 1_048_577), LoadError),
    ]


def validate_cases(folder: Path) -> list[Case]:
    def file(name: str, text: str) -> Path:
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def validate(path: Path) -> Callable[[], str]:
        def run() -> str:
            out, err = io.StringIO(), io.StringIO()
            code = validate_files([path], out, err)
            printed = (out.getvalue() + err.getvalue()).replace(f"{path.parent}/", "").strip()
            if code:
                raise Refused(printed)
            return printed
        return run

    kind = "datapipeline validate"
    big = json.dumps({"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "big"},
                      "spec": {"scheduleType": "ondemand", "activities": [
                          {"name": f"a{i}", "type": "ShellCommandActivity", "command": "echo #{@scheduledStartTime}",
                           **({"dependsOn": [f"a{i - 1}"]} if i else {})} for i in range(2000)]}})
    return [
        Case(kind, f"{EXAMPLE.name}", validate(EXAMPLE)),
        Case(kind, "the alias bomb", validate(file("bomb.yaml", ALIAS_BOMB)), Refused),
        Case(kind, '"[" x 5000', validate(file("deep.yaml", "a: " + "[" * 5000 + "]" * 5000)), Refused),
        Case(kind, "2,000 activities (the most allowed; valid)", validate(file("big.yaml", big))),
    ]


def json_cases() -> list[Case]:
    text = AWS_EXAMPLE.read_text(encoding="utf-8")
    kind = "AWS definition (JSON)"
    return [
        Case(kind, f"{AWS_EXAMPLE.name} ({len(text):,} B)", lambda: f"{len(load_json(text)['objects'])} objects"),
        Case(kind, "450 levels of lists", lambda: load_json('{"objects": [' + "[" * 450 + "]" * 450 + "]}"),
             LoadError),
        Case(kind, '"[" x 100,000', lambda: load_json("[" * 100_000 + "]" * 100_000), LoadError),
        Case(kind, "a 5,000-digit number", lambda: load_json('{"objects": [], "n": ' + "1" * 5000 + "}"), LoadError),
        Case(kind, "a string of 70,000 characters", lambda: load_json(json.dumps({"s": "x" * 70_000})), LoadError),
    ]


def example_spec() -> dict[str, Any]:
    documents = load_yaml_documents(EXAMPLE.read_text(encoding="utf-8"))
    spec: dict[str, Any] = next(d for d in documents if d.get("kind") == "Pipeline")["spec"]
    return spec


def spec_cases() -> list[Case]:
    base = example_spec()
    shell = {"name": "a", "type": "ShellCommandActivity", "command": "#{myV0}"}
    level: Any = ["lol"] * 9
    for _ in range(8):
        level = [level] * 9  # an alias bomb once loaded: a small DAG of 9**9 leaves
    doubling = {f"myV{i}": f"#{{myV{i + 1}}}#{{myV{i + 1}}}" for i in range(40)} | {"myV40": "x"}
    many = [{"name": f"a{i}", "type": "ShellCommandActivity", "command": "echo #{@scheduledStartTime}",
             **({"dependsOn": [f"a{i - 1}"]} if i else {})} for i in range(2000)]

    def parse(spec: dict[str, Any]) -> Callable[[], str]:
        def run() -> str:
            fresh_templates()
            definition = parse_pipeline(spec)
            return f"{len(definition.activities)} activities"
        return run

    kind = "Pipeline spec"
    return [
        Case(kind, f"the Pipeline of {EXAMPLE.name}", parse(base)),
        Case(kind, "a description of 9**9 values (shared lists)", parse({**base, "description": level}),
             DefinitionError),
        Case(kind, "41 variables doubling each other (2**40)",
             parse({"scheduleType": "ondemand", "activities": [{**shell, "vars": doubling}]}), DefinitionError),
        Case(kind, "2,001 activities", parse({"scheduleType": "ondemand", "activities": [
            *many, {"name": "one-more", "type": "ShellCommandActivity", "command": "x"}]}), DefinitionError),
        Case(kind, "2,000 activities (the most allowed; valid)", parse({"scheduleType": "ondemand",
                                                                        "activities": many})),
        Case(kind, "a cron of 409 characters", parse({**base, "schedule": {"cron": "1," * 200 + "1 * * * *"}}),
             DefinitionError),
        Case(kind, "10**12 occurrences", parse({**base, "schedule": {
            "period": "1 day", "startDateTime": "2026-01-01T00:00:00Z", "occurrences": 10**12}}), DefinitionError),
    ]


def expression_cases() -> list[Case]:
    def parse(text: str) -> Callable[[], str]:
        def run() -> str:
            fresh_templates()
            return f"{len(parse_template(text).references())} references"
        return run

    kind = "expression"
    return [
        Case(kind, "a path with a reference and a format() call", parse("s3://#{myBucket}/#{format(@scheduledStartTime, 'YYYY-MM-dd')}.csv")),
        Case(kind, "40 nested parentheses", parse("#{" + "(" * 40 + "1" + ")" * 40 + "}"), ExpressionError),
        Case(kind, "40 chained additions", parse("#{" + "+".join(["1"] * 40) + "}"), ExpressionError),
        Case(kind, "40 nested calls", parse("#{" + "plusDays(" * 40 + "@scheduledStartTime" + ",1)" * 40 + "}"),
             ExpressionError),
        Case(kind, "an expression of 3,000 characters", parse("#{'" + "x" * 3000 + "'}"), ExpressionError),
        Case(kind, "a 5,000-digit number", parse("#{" + "1" * 5000 + "}"), ExpressionError),
    ]


def resolve_cases() -> list[Case]:
    def resolving(spec: dict[str, Any]) -> Callable[[], str]:
        definition: PipelineDefinition = parse_pipeline(spec)  # once: the operator keeps the parsed definition
        run = RunContext("p", "p-1", START, START + timedelta(days=1))

        def call() -> str:
            command = resolve_command(definition, run, "activity", "a", "a", 1).task.fields["command"]
            return f"{len(str(command)):,} characters"
        return call

    normal = {"scheduleType": "ondemand", "defaults": {"vars": {"myDay": "#{format(@scheduledStartTime, 'YYYY-MM-dd')}"}},
              "dataNodes": [{"name": "n0", "type": "S3DataNode", "directoryPath": "s3://b/#{myDay}/"}],
              "activities": [{"name": "a", "type": "ShellCommandActivity", "output": ["n0"],
                              "command": "aws s3 cp data.csv #{output.directoryPath} # #{myDay}"}]}
    growing = {"scheduleType": "ondemand",
               "dataNodes": [{"name": "n0", "type": "S3DataNode", "directoryPath": "#{myY}",
                              "vars": {"myY": "y" * 60_000}}],
               "activities": [{"name": "a", "type": "ShellCommandActivity", "output": ["n0"],
                               "command": "#{output.directoryPath}" * 20}]}
    fan: list[dict[str, Any]] = [{"name": "a", "type": "ShellCommandActivity", "command": "#{dependsOn.myX}",
                                  "dependsOn": [f"b{j}" for j in range(30)]}]
    for level in range(6):
        for j in range(30):
            activity: dict[str, Any] = {"name": f"{'b' * (level + 1)}{j}", "type": "ShellCommandActivity",
                                        "command": "x", "vars": {"myX": "#{dependsOn.myX}" if level < 5 else "x"}}
            if level < 5:
                activity["dependsOn"] = [f"{'b' * (level + 2)}{k}" for k in range(30)]
            fan.append(activity)
    kind = "task resolution"
    return [
        Case(kind, "a command reading a data node's field and a variable", resolving(normal)),
        Case(kind, "20 copies of a 60,000-character field (past 1 MiB)", resolving(growing), ResolveError),
        Case(kind, "references fanning out 30-fold, 6 deep (30**6 reads)",
             resolving({"scheduleType": "ondemand", "activities": fan}), ResolveError),
    ]


def schedule_cases() -> list[Case]:
    def planning(plan_schedule: Schedule, cursor: datetime | None, now: datetime, cached: bool = False,
                 **kwargs: Any) -> Callable[[], str]:
        def run() -> str:
            if not cached:
                schedule._nth_boundary.cache_clear()
            decision = schedule.plan(plan_schedule, "cron", start=plan_schedule.start or START, cursor=cursor,
                                     now=now, **kwargs)
            return f"{len(decision.create)} created, {len(decision.skipped)} skipped, {decision.waiting} waiting"
        return run

    daily = Schedule(period=Period(1, "days"), start=START)
    seconds_ = Schedule(period=Period(1, "seconds"), start=START)
    since_1970 = Schedule(period=Period(1, "minutes"), start=datetime(1970, 1, 1, tzinfo=UTC))
    most = DEFAULT_LIMITS.max_occurrences
    cron = Schedule(cron="* * * * *", start=START, occurrences=most)
    minutes = Schedule(period=Period(1, "minutes"), start=START, occurrences=100_000)
    kind = "scheduling pass"
    return [
        Case(kind, "daily, one interval due", planning(daily, START + timedelta(days=9), START + timedelta(days=10))),
        Case(kind, "every second, 29 days behind (RunLatest)",
             planning(seconds_, START + timedelta(days=1), START + timedelta(days=30), missed_run_policy="RunLatest")),
        Case(kind, "every minute since 1970, first activation",
             planning(since_1970, None, START, max_active_runs=5)),
        Case(kind, f"cron every minute, {most:,} occurrences: first pass",
             planning(cron, START + timedelta(minutes=most - 2), START + timedelta(days=30))),
        Case(kind, f"cron every minute, {most:,} occurrences: later pass",
             planning(cron, START + timedelta(minutes=most - 1), START + timedelta(days=30), cached=True)),
        Case(kind, "every minute, 100,000 occurrences",
             planning(minutes, START + timedelta(minutes=99_998), START + timedelta(days=365))),
    ]


def value_cases() -> list[Case]:
    def check(value: str, pattern: str) -> Callable[[], str]:
        def run() -> str:
            problem = value_problem("String", [], value, pattern)
            if problem:
                raise Refused(problem)
            return "matches"
        return run

    kind = "parameter value"
    return [
        Case(kind, r"2026-01-01 against \d{4}-\d{2}-\d{2}", check("2026-01-01", r"\d{4}-\d{2}-\d{2}")),
        Case(kind, "4,095 a's and a ! against (a+)+", check("a" * 4095 + "!", "(a+)+"), Refused),
        Case(kind, "4,095 a's and a ! against (a|aa)*b", check("a" * 4095 + "!", "(a|aa)*b"), Refused),
        Case(kind, "a value of 4,097 characters", check("a" * 4097, "a*"), Refused),
    ]


# ---------------------------------------------------------------------------------------------- the run
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="measurements of each case (default 5)")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds of one measurement at least")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        groups = [yaml_cases(), validate_cases(Path(folder)), json_cases(), spec_cases(), expression_cases(),
                  resolve_cases(), schedule_cases(), value_cases()]
        print(f"{dt.datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, {os.cpu_count()} "
              f"cores, load average {os.getloadavg()[0]:.2f}; median of {args.repeat} measurements of at least "
              f"{args.min_time} s each; ratio = time / the kind's first row (baseline)\n")
        got = [[outcome(case) for case in group] for group in groups]  # as promised, before anything is timed
        results = [measure(group, args) for group in groups]
        print(f"load average at the end {os.getloadavg()[0]:.2f}\n")
    print(f"{'kind':22} {'input':58} {'per call':>10} {'ratio':>9}")
    for group, medians in zip(groups, results, strict=True):
        for index, (case, median) in enumerate(zip(group, medians, strict=True)):
            ratio = "baseline" if index == 0 else f"{median / medians[0]:.{2 if median >= medians[0] / 100 else 4}f}x"
            print(f"{case.kind if index == 0 else '':22} {clip(case.name, 58):58} {shown(median):>10} {ratio:>9}")
    print("\nWhat each input got:")
    for group, outcomes in zip(groups, got, strict=True):
        for case, what in zip(group, outcomes, strict=True):
            print(f"- {case.kind}, {case.name}: {what}")
    return 0


def measure(group: list[Case], args: argparse.Namespace) -> list[float]:
    """Median seconds per call of each case; the cases of the group take turns in every round."""
    runs = [quiet(case.call, *(() if case.refused_with is None else (case.refused_with,))) for case in group]
    loops = [calibrate(run, args.min_time) for run in runs]
    times: list[list[float]] = [[] for _ in group]
    for _ in range(args.repeat):
        for index, run in enumerate(runs):
            times[index].append(seconds(run, loops[index]) / loops[index])
    return [statistics.median(t) for t in times]


def shown(median: float) -> str:
    if median >= 1:
        return f"{median:.2f} s"
    if median >= 1e-3:
        return f"{median * 1e3:.2f} ms"
    return f"{median * 1e6:.1f} us"


if __name__ == "__main__":
    sys.exit(main())
