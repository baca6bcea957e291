"""Property-based fuzzing of everything a user hands us: manifests (as data and as YAML text) and AWS definitions.

Each case mixes valid and hostile parts (deep nesting, huge numbers, long strings, wrong types, expressions
that nest or double, alias bombs, schedules at the edges of time). The properties:

* only the documented clean error escapes: LoadError (reading text), DefinitionError (checking a
  manifest), ResolveError (evaluating an expression for a run), ImportError_ (converting an AWS definition);
* no message says "internal error", and the CLI never prints a traceback;
* every case makes fewer than 3,000,000 Python function calls and raises the process's peak memory by less
  than 200 MB. Calls, not seconds: cProfile's count is the same on a loaded machine as on an idle one, where a
  time limit flaked. The heaviest case of the corpus makes about 250,000 (planning a cron schedule after a
  900-day outage), the costliest a limit allows about 750,000 (counting a cron schedule's 10,000 fire times);
  an expansion past a limit (2**40, 9**9, 30**6) would make orders of magnitude more.
  benchmarks/hostile_input_bench.py times hostile inputs against normal ones;
* a manifest that is accepted is usable by the operator's own functions: the schedule plans (first
  activation, then a pass after a long outage under each missed-run policy) and every activity of the
  first interval resolves (or fails with a ResolveError naming the field).

The budget is fixed and derandomized, so the run is deterministic and takes well under a minute;
``KDP_FUZZ_EXAMPLES=2000`` explores more, with random
examples, reporting failures unshrunk.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import resource
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from datapipeline.awsimport.convert import ImportError_, convert
from datapipeline.cli.validate import validate_files
from datapipeline.core.catalog import SECTIONS, TYPES, Kind
from datapipeline.core.definition import parse_manifest, parse_pipeline
from datapipeline.core.expressions import FUNCTIONS
from datapipeline.core.loader import LoadError, load_json, load_yaml_documents
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import ResolveError, RunContext, resolve_command
from datapipeline.core.schedule import effective_start, plan
from datapipeline.core.task import KIND_ACTIVITY

EXAMPLES = int(os.environ.get("KDP_FUZZ_EXAMPLES", "0"))
CLEAN = (LoadError, DefinitionError, ResolveError, ImportError_)
CALLS, MEGABYTES = 3_000_000, 200


def budget(examples: int) -> Any:
    explore = {"phases": [Phase.explicit, Phase.generate]} if EXAMPLES else {}  # report, do not shrink
    return settings(max_examples=EXAMPLES or examples, deadline=None, derandomize=not EXAMPLES, database=None,
                    suppress_health_check=list(HealthCheck), **explore)


def bounded(check: Callable[[], None]) -> None:
    """Run one case: only clean errors, no "internal error", under CALLS and MEGABYTES.

    Work is counted in Python function calls (cProfile's count: the same on every run); calls of C functions
    are left out, as counting them doubles the profiler's cost and what one can cost (a huge string or number)
    shows in memory. Memory is how far the case raises the process's peak resident size (tracemalloc would
    slow PyYAML tenfold).
    """
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    profile = cProfile.Profile(builtins=False)
    with profile:
        try:
            check()
        except CLEAN as error:
            assert "internal error" not in str(error)
    calls = sum(entry.callcount for entry in profile.getstats())
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert calls < CALLS, f"the case made {calls:,} Python function calls"
    assert grown < MEGABYTES, f"the case took the process {grown:.0f} MB past its peak"


# ---------------------------------------------------------------------------------------------- values
LONG = ["x" * 70_000, "#{myV0}" * 3000, "9" * 5000, "é" * 40_000]
REFERENCES = ["@scheduledStartTime", "@scheduledEndTime", "@id", "@runName", "myV0", "myV1", "myP", "myN", "myList",
              "*myP", "input.directoryPath", "output.directoryPath", "node.@id", "parent.name", "name", "type",
              "command", "nothing", "database.connectionString"]


def deep(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


numbers = st.one_of(st.integers(-10, 10**6), st.sampled_from([10**12, 10**99, 10**100, 10**400, -(10**150)]),
                    st.floats(allow_nan=True, allow_infinity=True))
junk = st.recursive(st.none() | st.booleans() | numbers | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=12)
hostile = st.one_of(junk, st.sampled_from(LONG), st.builds(deep, st.sampled_from([10, 63, 64, 65, 200, 450])))


def expressions() -> st.SearchStrategy[str]:
    atoms = st.one_of(
        st.integers(-5, 10**6).map(str), st.sampled_from(["1" * 101, "9" * 5000, "1.5", ".5e3", "1e999", "0"]),
        st.text(string.ascii_letters + " -'", max_size=8).map(lambda t: "'" + t.replace("'", "") + "'"),
        st.sampled_from(REFERENCES))

    def grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        calls = st.tuples(st.sampled_from(sorted(FUNCTIONS)), st.lists(inner, min_size=0, max_size=5)).map(
            lambda c: f"{c[0]}({','.join(c[1])})")
        operators = st.tuples(inner, st.sampled_from("+-*/^"), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})")
        methods = inner.map(lambda e: f"{e}.format('YYYY-MM-dd')")
        return st.one_of(calls, operators, methods, inner.map(lambda e: f"-{e}"))

    nested = st.sampled_from([n * "(" + "1" + n * ")" for n in (30, 31, 40, 500)] +
                             ["+".join(["1"] * n) for n in (31, 33, 1000)] + ["-" * 40 + "1", "2^" * 40 + "2"] +
                             ["plusDays(" * n + "@scheduledStartTime" + ",1)" * n for n in (10, 40)])
    return st.one_of(st.recursive(atoms, grow, max_leaves=8), nested)


templates = st.one_of(
    st.text(max_size=20),
    st.tuples(st.text(string.printable, max_size=6), expressions(), st.text(max_size=6)).map(
        lambda t: f"{t[0]}#{{{t[1]}}}{t[2]}"),
    st.sampled_from(["#{", "#{}", "#{(", "\\#{x}", "#{#{x}}", "#{'", "#{myV0", "}", *LONG]))


def value_for(kind: Kind) -> st.SearchStrategy[Any]:
    sane: dict[Kind, st.SearchStrategy[Any]] = {
        Kind.STRING: templates, Kind.INT: st.one_of(st.integers(0, 10), numbers),
        Kind.BOOL: st.booleans(),
        Kind.DURATION: st.sampled_from(["10 minutes", "1h30m", "90s", "0 s", "9" * 5000 + " days", "999999d", "1 month",
                                        3600, 10**30, float("inf"), float("nan"), -5]),
        Kind.STRINGS: st.lists(templates, max_size=3), Kind.REF: st.sampled_from(["a0", "a1", "n0", "db", "nope"]),
        Kind.REFS: st.lists(st.sampled_from(["a0", "a1", "n0", "n1", "p0", "act0", "cp"]), max_size=3),
        Kind.SECRET_REF: st.just({"name": "s", "key": "k"}),
        Kind.MAP: st.dictionaries(st.text(max_size=5), templates, max_size=3),
        Kind.OBJECTS: st.lists(st.dictionaries(st.text(max_size=5), junk, max_size=2), max_size=2),
        Kind.OBJECT: st.dictionaries(st.text(max_size=5), junk, max_size=3),
    }
    return st.one_of(sane[kind], sane[kind], sane[kind], hostile)


# ---------------------------------------------------------------------------------------------- manifests
def variables() -> st.SearchStrategy[dict[str, Any]]:
    doubling = st.integers(2, 40).map(lambda n: {**{f"myV{i}": f"#{{myV{i + 1}}}#{{myV{i + 1}}}" for i in range(n)},
                                                 f"myV{n}": "ab"})
    fan = st.integers(2, 20).map(lambda n: {**{f"myV{i}": "".join(f"#{{myV{i + 1}}}" for _ in range(10))
                                               for i in range(n)}, f"myV{n}": "abc"})
    square = st.integers(2, 20).map(lambda n: {**{f"myV{i}": f"#{{myV{i + 1} * myV{i + 1}}}" for i in range(n)},
                                               f"myV{n}": "99"})
    free = st.dictionaries(st.sampled_from(["myV0", "myV1", "myP", "bad", "*myX"]), st.one_of(templates, junk),
                           max_size=3)
    return st.one_of(doubling, fan, square, free)


@st.composite
def objects(draw: st.DrawFn, section: str, index: int) -> dict[str, Any]:
    choices = [t for t in TYPES.values() if t.section == section]
    type_spec = draw(st.sampled_from(choices))
    prefix = {"activities": "a", "dataNodes": "n", "preconditions": "p", "actions": "act", "databases": "db",
              "dataFormats": "f", "computeProfiles": "cp", "clusterProfiles": "cl"}[section]
    obj: dict[str, Any] = {"name": f"{prefix}{index}" if section != "databases" else "db", "type": type_spec.name}
    fields = st.lists(st.sampled_from(type_spec.fields), max_size=5, unique_by=lambda f: f.name) if type_spec.fields \
        else st.just([])
    for field in draw(fields):
        obj[field.name] = draw(value_for(field.kind))
    if section == "activities" and type_spec.name == "ShellCommandActivity":
        obj.setdefault("command", draw(templates))
    if draw(st.booleans()):
        obj["vars"] = draw(variables())
    if draw(st.integers(0, 9)) == 0:
        obj[draw(st.text(max_size=10))] = draw(hostile)
    return obj


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    if draw(st.booleans()):
        schedule["period"] = draw(st.sampled_from(["1 day", "15 minutes", "1 minute", "59 seconds", "1 second",
                                                   "1 month", "100 years", "3 weeks", "1h", "1", 5, "9" * 5000]))
    else:
        schedule["cron"] = draw(st.sampled_from(["0 3 * * *", "* * * * *", "* * * * * *", "*/30 * * * * *",
                                                 "0 0 29 2 *", "0 0 31 2 *", "0,59 0,23 * * *", "bad", "1," * 300,
                                                 "0 0 1 1 *", 7]))
    start = draw(st.sampled_from(["2026-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                                  "8999-12-31T00:00:00Z", "9999-12-31T23:59:59Z", "2026-13-01", "soon", None]))
    if start is not None:
        schedule["startDateTime"] = start
    else:
        schedule["startAt"] = "FIRST_ACTIVATION_DATE_TIME"
    if draw(st.booleans()):
        schedule["occurrences"] = draw(st.sampled_from([1, 3, 10_000, 10_001, 10**12, 0, -1, "2"]))
    elif draw(st.booleans()):
        schedule["endDateTime"] = draw(st.sampled_from(["2026-01-02T00:00:00Z", "8999-12-31T00:00:00Z"]))
    schedule["timeZone"] = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/St_Johns", "Nowhere/X",
                                                 "../etc/passwd", "\x00"]))
    return schedule


def base_spec() -> dict[str, Any]:
    """A valid pipeline that uses much of the model: every case starts from it and changes a few things."""
    return {
        "scheduleType": "cron", "missedRunPolicy": "RunAll",
        "schedule": {"period": "1 day", "startDateTime": "2026-01-01T00:00:00Z"},
        "parameters": [{"id": "myP", "type": "String", "default": "data"},
                       {"id": "myN", "type": "Integer", "default": "10"},
                       {"id": "myList", "type": "String", "isArray": True, "default": ["a", "b"]}],
        "defaults": {"vars": {"myV0": "base"}},
        "dataFormats": [{"name": "f0", "type": "CSV", "column": ["id INT"]}],
        "databases": [{"name": "db", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db/app"}],
        "dataNodes": [{"name": "n0", "type": "S3DataNode", "dataFormat": "f0",
                       "directoryPath": "s3://#{myP}/#{format(@scheduledStartTime,'YYYY-MM-dd')}/"},
                      {"name": "n1", "type": "SqlDataNode", "database": "db", "table": "t"}],
        "preconditions": [{"name": "p0", "type": "S3KeyExists", "s3Key": "s3://#{myP}/_SUCCESS"}],
        "actions": [{"name": "act0", "type": "SnsAlarm", "topicArn": "arn:aws:sns:x", "subject": "#{node.@id}",
                     "message": "failed"}],
        "activities": [
            {"name": "a0", "type": "ShellCommandActivity", "command": "echo #{myP} #{myN * 2} #{@scheduledStartTime}",
             "output": ["n0"], "onFail": ["act0"], "vars": {"myV1": "#{myV0}-#{myN + 1}"}},
            {"name": "a1", "type": "CopyActivity", "input": ["n1"], "output": ["n0"], "dependsOn": ["a0"],
             "precondition": ["p0"]},
        ],
    }


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid pipeline with up to four changes, each either sane or hostile."""
    spec = base_spec()
    for _ in range(draw(st.integers(0, 4))):
        change = draw(st.sampled_from(["schedule", "command", "vars", "defaults", "object", "field", "top",
                                       "type", "parameter"]))
        activity = spec["activities"][draw(st.integers(0, 1))]
        if change == "schedule":
            spec["scheduleType"] = draw(st.sampled_from(["cron", "timeseries", "ondemand", "Cron"]))
            spec["schedule"] = draw(schedules())
            if spec["scheduleType"] == "ondemand":
                del spec["schedule"]
        elif change == "command":
            spec["activities"][0]["command"] = draw(templates)
        elif change == "vars":
            activity["vars"] = draw(variables())
        elif change == "defaults":
            spec["defaults"] = {"vars": draw(variables())}
        elif change == "object":
            section = draw(st.sampled_from(SECTIONS))
            spec.setdefault(section, []).append(draw(objects(section, 5)))
        elif change == "field":
            section = draw(st.sampled_from([s for s in SECTIONS if spec.get(s)]))
            obj = draw(st.sampled_from(spec[section]))
            field = draw(st.sampled_from(TYPES[obj["type"]].fields)) if TYPES[obj["type"]].fields else None
            if field is not None:
                obj[field.name] = draw(value_for(field.kind))
        elif change == "top":
            spec[draw(st.sampled_from(["values", "maxActiveRuns", "aws", "description", "junk", "activated"]))] = \
                draw(hostile)
        elif change == "type":
            spec["missedRunPolicy"] = draw(st.sampled_from(["RunAll", "RunLatest", "Skip", "runall", 5]))
            spec["maxActiveRuns"] = draw(st.one_of(st.integers(1, 5), numbers))
        else:
            spec["parameters"][draw(st.integers(0, 1))]["default"] = draw(
                st.sampled_from(["30", "9" * 5000, "1" * 4000, "-1", "1e5", "x"]))
    return spec


def use(definition: PipelineDefinition) -> None:
    """What the operator does with an accepted pipeline: plan its schedule and resolve its first interval."""
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    schedule = definition.schedule
    if schedule is not None:
        first = effective_start(schedule, start)
        assert first is not None
        for cursor, now in ((None, first + timedelta(days=400)), (first + timedelta(days=1), first + timedelta(days=900))):
            for policy in ("RunAll", "RunLatest", "Skip"):
                decision = plan(schedule, definition.schedule_type, start=first, cursor=cursor, now=now,
                                missed_run_policy=policy, max_active_runs=definition.max_active_runs)
                assert len(decision.create) + len(decision.skipped) <= 1_000
                if decision.create:
                    start, end = decision.create[0].start, decision.create[0].end
    run = RunContext(pipeline="fuzz", run="fuzz-1", scheduled_start=start, scheduled_end=end)
    for name in definition.activities:
        try:
            resolve_command(definition, run, KIND_ACTIVITY, name, name, 1)
        except ResolveError as error:
            assert str(error) and "internal error" not in str(error)


def manifest(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "fuzz"}, "spec": spec}


@budget(300)
@given(specs())
def test_any_spec_is_accepted_and_usable_or_refused_cleanly(spec: dict[str, Any]) -> None:
    def check() -> None:
        definition = parse_pipeline(spec)
        use(definition)

    bounded(check)


# ---------------------------------------------------------------------------------------------- YAML text
def alias_bomb(levels: int, fan: int) -> str:
    lines = [f'l0: &l0 [{", ".join(["lol"] * fan)}]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["bomb", "bomb-in-spec", "deep", "dump", "mutated", "number"]))
    if kind == "bomb":
        return alias_bomb(draw(st.integers(2, 12)), draw(st.integers(2, 12)))
    if kind == "bomb-in-spec":
        bomb = alias_bomb(draw(st.integers(2, 10)), draw(st.integers(2, 10)))
        last = bomb.splitlines()[-1].split(":")[0]
        field = draw(st.sampled_from(["scriptArgument", "vars", "command", "description"]))
        return (bomb + "apiVersion: datapipeline.io/v1alpha1\nkind: Pipeline\nmetadata: {name: b}\nspec:\n"
                f"  scheduleType: ondemand\n  activities:\n  - name: a\n    type: ShellCommandActivity\n"
                f"    command: hi\n    {field}: *{last}\n")
    if kind == "deep":
        depth = draw(st.sampled_from([63, 64, 65, 450, 5000]))
        return "a: " + draw(st.sampled_from(["[" * depth + "]" * depth, "{a: " * depth + "}" * depth]))
    if kind == "number":
        return f"apiVersion: datapipeline.io/v1alpha1\nkind: Pipeline\nspec:\n  maxActiveRuns: {draw(numbers)}\n" \
               f"  x: {draw(st.sampled_from(['0x' + 'f' * 400, '1' * 5000, '1:' * 300 + '1', '.inf', '1e99999']))}\n"
    text = yaml.safe_dump_all([manifest(draw(specs()))], sort_keys=False)
    if kind == "mutated":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["&a ", "*a", "- ", ": ", "[", "{", "'", "\t", "\x00", "---\n",
                                                 "!!python/object:os.system ", "<<: *a\n"])) + text[at:]
    return text


@budget(100)
@given(text=yaml_texts())
def test_any_yaml_text_is_read_and_checked_cleanly(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    def check() -> None:
        for doc in load_yaml_documents(text):
            if isinstance(doc, dict) and doc.get("kind") == "Pipeline":
                use(parse_manifest(doc))

    bounded(check)
    path = tmp_path_factory.mktemp("yaml") / "manifest.yaml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    # Not counted: the CLI reads the text with the same loader and checks it with the same parse_manifest as
    # check() above, whose calls are; counting its PyYAML scanning again would double the test's time.
    # test_limits counts what it scans of hostile files.
    validate_files([path], out, err)
    printed = out.getvalue() + err.getvalue()
    assert "internal error" not in printed and "Traceback" not in printed


# ---------------------------------------------------------------------------------------------- AWS definitions
AWS_TYPES = ["ShellCommandActivity", "CopyActivity", "S3DataNode", "SqlDataNode", "MySqlDataNode", "Ec2Resource",
             "EmrCluster", "EmrActivity", "Schedule", "RdsDatabase", "JdbcDatabase", "SnsAlarm", "S3KeyExists",
             "EmrConfiguration", "Property", "CSV", "Bogus", None]
AWS_FIELDS = ["command", "input", "output", "runsOn", "schedule", "parent", "dependsOn", "period", "startDateTime",
              "occurrences", "endDateTime", "directoryPath", "connectionString", "*password", "myVar", "role",
              "configuration", "property", "key", "value", "maximumRetries", "stage", "scriptArgument", "database",
              "table", "onFail", "precondition", "workerGroup", "startAt", "scheduleType"]


AWS_BASE = json.loads((Path(__file__).resolve().parents[1] / "aws" / "getting-started-shell.json").read_text())


@st.composite
def aws_definitions(draw: st.DrawFn) -> Any:
    """The AWS getting-started definition with up to four changes, each either sane or hostile."""
    definition = json.loads(json.dumps(AWS_BASE))
    objects_ = definition["objects"]
    ids = [o["id"] for o in objects_]
    ref = st.sampled_from([*ids, "missing"]).map(lambda i: {"ref": i})
    field_value = st.one_of(templates, ref, st.lists(ref, max_size=3),
                            st.sampled_from(["1 day", "2026-01-01T00:00:00", "9" * 5000, "true", "15 Minutes",
                                             "0 Seconds", "1 Second", "10000000000000 Days"]), hostile)
    for _ in range(draw(st.integers(0, 4))):
        change = draw(st.sampled_from(["field", "object", "schedule", "parameters", "values", "whole"]))
        if change == "field":
            obj = draw(st.sampled_from([o for o in objects_ if isinstance(o, dict)]))
            obj[draw(st.sampled_from(AWS_FIELDS))] = draw(field_value)
        elif change == "object":
            obj = {"id": draw(st.sampled_from(["x1", "x2", "Default", "ApacheLogs"])), "name": "x"}
            type_name = draw(st.sampled_from(AWS_TYPES))
            if type_name is not None:
                obj["type"] = type_name
            for key in draw(st.lists(st.sampled_from(AWS_FIELDS), max_size=4, unique=True)):
                obj[key] = draw(field_value)
            objects_.append(obj if draw(st.integers(0, 5)) else draw(hostile))
        elif change == "schedule":
            schedule = next(o for o in objects_ if o.get("type") == "Schedule")
            schedule[draw(st.sampled_from(["period", "occurrences", "startDateTime", "endDateTime", "startAt"]))] = \
                draw(st.sampled_from(["1 Seconds", "1000000000000", "9999-12-31T23:59:59", "0001-01-01T00:00:00",
                                      "2026-01-01T00:00:00", "-3", "FIRST_ACTIVATION_DATE_TIME", "1 Minutes"]))
        elif change == "parameters":
            definition["parameters"] = [{"id": draw(st.sampled_from(["myShellCmd", "*myPass", "x", 5])),
                                         "type": "String", "default": draw(st.one_of(templates, hostile))}]
        elif change == "values":
            definition["values"] = draw(st.one_of(st.dictionaries(st.sampled_from(["myShellCmd", "*x"]), templates),
                                                  hostile))
        else:
            return draw(hostile)
    return definition


@budget(250)
@given(aws_definitions(), st.sampled_from(["", "mutate", "deep"]))
def test_any_aws_definition_converts_cleanly(definition: Any, how: str) -> None:
    try:
        text = json.dumps(definition)
    except ValueError:  # a value JSON cannot hold (nesting beyond the encoder): nothing to read
        return
    if how == "mutate":
        text = text[: len(text) // 2] + "}" + text[len(text) // 2:]
    elif how == "deep":
        text = '{"objects": [' + "[" * 450 + "]" * 450 + "]}"

    def check() -> None:
        result = convert(load_json(text), "fuzzed Pipeline!")
        out = yaml.safe_dump_all([*result.secrets, result.manifest], sort_keys=False)
        for doc in load_yaml_documents(out):
            if doc.get("kind") == "Pipeline":
                use(parse_manifest(doc))

    bounded(check)

