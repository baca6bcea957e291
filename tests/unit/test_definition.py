"""Parsing a Pipeline spec: every catalogue type and field, inheritance, references, the graph, parameters."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datapipeline.core import catalog
from datapipeline.core.catalog import SECTIONS, TYPES, FieldSpec, Kind, TypeSpec
from datapipeline.core.definition import UNSUPPORTED_TYPES, parse_instant, parse_manifest, parse_pipeline
from datapipeline.core.durations import Period
from datapipeline.core.model import DEFAULT_MAXIMUM_RETRIES, DEFAULT_RETRY_DELAY, PipelineDefinition
from datapipeline.core.problems import DefinitionError

# ---------------------------------------------------------------------------------------------- helpers

# One object of each section that other objects can refer to.
SUPPORT: dict[str, list[dict[str, Any]]] = {
    "databases": [{"name": "db", "type": "JdbcDatabase", "connectionString": "jdbc:postgresql://db:5432/app"}],
    "dataFormats": [{"name": "fmt", "type": "CSV", "column": ["id", "name"]}],
    "preconditions": [{"name": "pre", "type": "S3KeyExists", "s3Key": "s3://in/_SUCCESS"}],
    "computeProfiles": [{"name": "cp", "image": "busybox:1.36"}],
    "clusterProfiles": [{"name": "cluster", "image": "apache/spark:3.5.1"}],
    "actions": [{"name": "act", "type": "Webhook", "url": "http://hooks/x", "message": "#{node.@id} failed"}],
    "dataNodes": [
        {"name": "s3in", "type": "S3DataNode", "filePath": "s3://in/data.csv"},
        {"name": "s3out", "type": "S3DataNode", "directoryPath": "s3://out/"},
        {"name": "wh", "type": "RedshiftDataNode", "database": "db", "tableName": "t", "primaryKeys": ["id"]},
    ],
    "activities": [{"name": "base", "type": "ShellCommandActivity", "command": "echo base"}],
}
REF_TARGET = {"databases": "db", "dataFormats": "fmt", "preconditions": "pre", "computeProfiles": "cp",
              "clusterProfiles": "cluster", "actions": "act", "dataNodes": "s3in", "activities": "base"}
BIG_DATA = {"EmrActivity", "HiveActivity", "HiveCopyActivity", "PigActivity", "HadoopActivity"}
ALL_TYPES = sorted(TYPES)


def spec_with(**sections: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"schedule": {"period": "1 day", "startDateTime": "2026-01-01T00:00:00Z"},
                            "workerGroups": {"wg": {"mode": "poll"}}}
    spec.update(copy.deepcopy(SUPPORT))
    spec.update(sections)
    return spec


def problems_of(spec: dict[str, Any]) -> list[str]:
    try:
        parse_pipeline(spec)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


def parse_ok(spec: dict[str, Any]) -> PipelineDefinition:
    try:
        return parse_pipeline(spec)
    except DefinitionError as error:
        pytest.fail("unexpected problems:\n" + "\n".join(str(p) for p in error.problems))


def parse_ok_unless_unsupported(spec: dict[str, Any], type_name: str) -> PipelineDefinition | None:
    """parse_ok; for a type validation rejects (PigActivity), None once its one problem is checked."""
    if type_name not in UNSUPPORTED_TYPES:
        return parse_ok(spec)
    (problem,) = problems_of(spec)
    assert f"{type_name} is not supported" in problem and "HiveActivity" in problem, problem
    return None


def sample(field: FieldSpec, type_name: str) -> Any:
    """A valid value of a field, by kind."""
    if field.name == "step":  # EMR's form, which validation parses
        return ["command-runner.jar,spark-submit,s3://jobs/app.py"]
    if field.name == "workerGroup":  # declared in spec_with's workerGroups
        return "wg"
    if field.kind is Kind.STRING:
        kube = {"cpu": "500m", "memory": "512Mi", "driverCpu": "1", "driverMemory": "1Gi", "executorCpu": "1",
                "executorMemory": "1Gi", "serviceAccountName": "runner", "image": "registry.example/img:1"}
        if type_name in ("ComputeProfile", "ClusterProfile") and field.name in kube:
            return kube[field.name]
        if field.name == "schedule":
            return "default"  # a schedule's name
        return field.enum[0] if field.enum else f"value of {field.name}"
    if field.kind is Kind.INT:
        return 3
    if field.kind is Kind.BOOL:
        return True
    if field.kind is Kind.DURATION:
        return "10 minutes"
    if field.kind is Kind.STRINGS:
        return ["creds-a", "creds-b"] if field.name == "envFromSecrets" else ["a=1", "b=2"]
    if field.kind in (Kind.REF, Kind.REFS):
        section = field.ref_sections[0]
        if field.name == "runsOn" and type_name in BIG_DATA:
            section = "clusterProfiles"
        name = REF_TARGET[section]
        if field.name == "output":
            name = "wh" if type_name == "RedshiftCopyActivity" else "s3out"
        return name if field.kind is Kind.REF else [name]
    if field.kind is Kind.SECRET_REF:
        return {"name": "creds", "key": "password"}
    if field.kind is Kind.MAP:
        return {"key": "value"}
    if field.kind is Kind.OBJECTS:
        return [{"key": "value"}]
    return {"key": "value"}


def wrong(field: FieldSpec) -> Any:
    """A value of the wrong kind for a field."""
    return {
        Kind.STRING: 5, Kind.REF: ["a", "b"], Kind.INT: "three", Kind.BOOL: "yes", Kind.DURATION: "soon",
        Kind.STRINGS: 5, Kind.REFS: "single", Kind.SECRET_REF: "hunter2", Kind.MAP: ["x"],
        Kind.OBJECTS: "x", Kind.OBJECT: "x",
    }[field.kind]


def minimal(type_spec: TypeSpec, name: str = "subject") -> dict[str, Any]:
    """The smallest valid object of a type: its required fields, the first of each one-of group, and what
    the activity semantics need (a cluster profile, one input and output)."""
    obj: dict[str, Any] = {"name": name, "type": type_spec.name}
    needed = {f.name for f in type_spec.fields if f.required} | {group[0] for group in type_spec.one_of}
    if type_spec.name in BIG_DATA:
        needed.add("runsOn")
    if type_spec.name in ("CopyActivity", "RedshiftCopyActivity"):
        needed |= {"input", "output"}
    for field in type_spec.fields:
        if field.name in needed:
            obj[field.name] = sample(field, type_spec.name)
    return obj


def maximal(type_spec: TypeSpec, name: str = "subject") -> dict[str, Any]:
    """Every field of a type set (but only the first of each one-of group)."""
    skipped = {g for group in (*type_spec.one_of, *type_spec.at_most_one_of) for g in group[1:]}
    obj: dict[str, Any] = {"name": name, "type": type_spec.name}
    for field in type_spec.fields:
        if field.name not in skipped:
            obj[field.name] = sample(field, type_spec.name)
    return obj


def with_object(obj: dict[str, Any], section: str) -> dict[str, Any]:
    spec = spec_with()
    spec[section] = [*spec.get(section, []), obj]
    return spec


def index_in(spec: dict[str, Any], section: str) -> int:
    return len(spec[section]) - 1


# ---------------------------------------------------------------------------------------------- every type


def test_the_catalogue_covers_the_issue() -> None:
    expected = {
        "ShellCommandActivity", "CopyActivity", "SqlActivity", "EmrActivity", "HiveActivity", "HiveCopyActivity",
        "PigActivity", "HadoopActivity", "RedshiftCopyActivity", "S3DataNode", "SqlDataNode", "MySqlDataNode",
        "DynamoDBDataNode", "RedshiftDataNode", "CSV", "TSV", "Custom", "RegEx", "JdbcDatabase", "RdsDatabase",
        "RedshiftDatabase", "S3KeyExists", "S3PrefixNotEmpty", "ShellCommandPrecondition", "Exists",
        "DynamoDBTableExists", "DynamoDBDataExists", "SqlQueryPrecondition", "ComputeProfile", "ClusterProfile",
        "SnsAlarm", "Webhook", "Terminate"}
    assert expected <= set(TYPES)
    assert {t.section for t in TYPES.values()} == set(SECTIONS)


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_a_minimal_object_of_every_type_parses(type_name: str) -> None:
    type_spec = TYPES[type_name]
    spec = with_object(minimal(type_spec), type_spec.section)
    definition = parse_ok_unless_unsupported(spec, type_name)
    if definition is None:
        return
    obj = definition.object(type_spec.section, "subject")
    assert obj.type == type_name
    assert obj.path == f"spec.{type_spec.section}[{index_in(spec, type_spec.section)}]"


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_every_field_of_every_type_parses_and_is_normalised(type_name: str) -> None:
    type_spec = TYPES[type_name]
    obj = maximal(type_spec)
    definition = parse_ok_unless_unsupported(with_object(obj, type_spec.section), type_name)
    if definition is None:
        return
    parsed = definition.object(type_spec.section, "subject")
    for field in type_spec.fields:
        if field.name not in obj:
            continue
        value = parsed.fields[field.name]
        if field.kind is Kind.DURATION:
            assert value == timedelta(minutes=10), field.name
        elif field.kind in (Kind.STRINGS, Kind.REFS, Kind.OBJECTS):
            assert value == tuple(obj[field.name]), field.name
        else:
            assert value == obj[field.name], field.name


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_a_wrong_value_in_any_field_names_that_field(type_name: str) -> None:
    type_spec = TYPES[type_name]
    section = type_spec.section
    for field in type_spec.fields:
        obj = minimal(type_spec)
        obj[field.name] = wrong(field)
        spec = with_object(obj, section)
        path = f"spec.{section}[{index_in(spec, section)}].{field.name}"
        found = problems_of(spec)
        assert any(p.startswith(f"{path}: ") for p in found), (field.name, found)


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_a_missing_required_field_is_named(type_name: str) -> None:
    type_spec = TYPES[type_name]
    section = type_spec.section
    for field in type_spec.fields:
        if not field.required:
            continue
        obj = minimal(type_spec)
        del obj[field.name]
        spec = with_object(obj, section)
        assert f"spec.{section}[{index_in(spec, section)}].{field.name}: is required for {type_name}" \
            in problems_of(spec)


@pytest.mark.parametrize("type_name", [t for t in ALL_TYPES if TYPES[t].one_of])
def test_one_of_groups(type_name: str) -> None:
    type_spec = TYPES[type_name]
    section = type_spec.section
    for group in type_spec.one_of:
        for choice in group:  # each member alone is fine
            obj = minimal(type_spec)
            for other in group:
                obj.pop(other, None)
            obj[choice] = sample(type_spec.field_map[choice], type_name)
            parse_ok_unless_unsupported(with_object(obj, section), type_name)
        obj = minimal(type_spec)
        obj[group[1]] = sample(type_spec.field_map[group[1]], type_name)
        spec = with_object(obj, section)
        assert any(f".{group[1]}: {type_name} takes only one of" in p for p in problems_of(spec))
        for member in group:
            obj.pop(member, None)
        assert any(f".{group[0]}: {type_name} needs one of" in p for p in problems_of(with_object(obj, section)))


@pytest.mark.parametrize("section", SECTIONS)
def test_an_unknown_type_lists_the_section_types(section: str) -> None:
    spec = with_object({"name": "odd", "type": "NoSuchType"}, section)
    found = problems_of(spec)
    choices = ", ".join(t.name for t in catalog.types_in(section))
    assert f'spec.{section}[{index_in(spec, section)}].type: unknown {_word(section)} type "NoSuchType"; one of ' \
           f"{choices}" in found


def _word(section: str) -> str:
    return {"activities": "activity", "dataNodes": "data node", "dataFormats": "data format",
            "databases": "database", "preconditions": "precondition", "computeProfiles": "compute profile",
            "clusterProfiles": "cluster profile", "actions": "action"}[section]


def test_sections_with_one_type_need_no_type() -> None:
    for section in SECTIONS:
        if catalog.default_type(section):
            assert len(catalog.types_in(section)) == 1
    definition = parse_ok(spec_with())
    assert definition.objects["computeProfiles"]["cp"].type == "ComputeProfile"
    assert definition.objects["clusterProfiles"]["cluster"].type == "ClusterProfile"


def test_an_unknown_field_suggests_the_right_one() -> None:
    spec = spec_with(activities=[{"name": "a", "type": "ShellCommandActivity", "command": "x", "retryDelya": "1m"}])
    assert problems_of(spec) == ['spec.activities[0].retryDelya: ShellCommandActivity has no field "retryDelya"; '
                                 'did you mean "retryDelay"?']


def test_a_user_field_outside_vars_points_to_vars() -> None:
    spec = spec_with(activities=[{"name": "a", "type": "ShellCommandActivity", "command": "x", "myTable": "t"}])
    assert "user-defined fields go under vars" in problems_of(spec)[0]


# ---------------------------------------------------------------------------------------------- defaults


def test_defaults_fill_what_an_activity_leaves_out() -> None:
    spec = spec_with(
        defaults={"maximumRetries": 5, "retryDelay": "3 minutes", "onFail": ["act"], "runsOn": "cp",
                  "failureAndRerunMode": "cascade", "vars": {"myBucket": "landing"}},
        activities=[
            {"name": "a", "type": "ShellCommandActivity", "command": "echo #{myBucket}"},
            {"name": "b", "type": "ShellCommandActivity", "command": "x", "maximumRetries": 0,
             "vars": {"myBucket": "other"}},
        ])
    definition = parse_ok(spec)
    a, b = definition.activities["a"], definition.activities["b"]
    assert (a.maximum_retries, a.retry_delay, a.on_fail, a.runs_on) == (5, timedelta(minutes=3), ("act",), "cp")
    assert a.failure_and_rerun_mode == "cascade"
    assert b.maximum_retries == 0  # its own value wins, even a falsy one
    assert a.vars == {"myBucket": "landing"} and b.vars == {"myBucket": "other"}
    assert definition.vars == {"myBucket": "landing"}


def test_without_defaults_the_aws_defaults_apply() -> None:
    activity = parse_ok(spec_with()).activities["base"]
    assert activity.maximum_retries == DEFAULT_MAXIMUM_RETRIES == 2
    assert activity.retry_delay == DEFAULT_RETRY_DELAY == timedelta(minutes=10)
    assert activity.failure_and_rerun_mode == "none"
    assert activity.attempt_timeout is None and activity.max_active_instances is None


def test_defaults_take_only_activity_fields_and_check_their_references() -> None:
    found = problems_of(spec_with(defaults={"command": "x", "onSuccess": ["nope"], "runsOn": "cluster"}))
    assert 'spec.defaults.command: unknown field "command" (defaults take activity fields)' in found
    assert 'spec.defaults.onSuccess[0]: no action named "nope"' in found
    # a shell activity may inherit a cluster profile (AWS runs it on the EmrCluster): it runs in its image
    assert not any(p.startswith("spec.activities[0].runsOn") for p in found)


def test_defaults_vars_must_be_my_fields() -> None:
    found = problems_of(spec_with(defaults={"vars": {"bucket": "x"}}))
    assert found == ['spec.defaults.vars.bucket: user-defined field "bucket" must start with my']


# ---------------------------------------------------------------------------------------------- parent


def test_parent_inheritance_within_a_section() -> None:
    spec = spec_with(dataNodes=[
        {"name": "base-node", "type": "S3DataNode", "directoryPath": "s3://logs/", "compression": "gzip",
         "dataFormat": "fmt", "vars": {"myPrefix": "logs", "myDay": "1"}},
        {"name": "middle", "parent": "base-node", "vars": {"myDay": "2"}},
        {"name": "leaf", "parent": "middle", "directoryPath": "s3://logs/leaf/", "compression": "none"},
    ], activities=[{"name": "a", "type": "ShellCommandActivity", "input": ["leaf"], "command": "x"}])
    nodes = parse_ok(spec).objects["dataNodes"]
    leaf = nodes["leaf"]
    assert leaf.type == "S3DataNode"  # the type is inherited too
    assert leaf.fields == {"directoryPath": "s3://logs/leaf/", "compression": "none", "dataFormat": "fmt"}
    assert leaf.vars == {"myPrefix": "logs", "myDay": "2"}
    assert nodes["middle"].fields["directoryPath"] == "s3://logs/"
    assert "parent" not in leaf.fields


def test_an_inherited_bad_value_is_reported_once_where_it_is_written() -> None:
    spec = spec_with(activities=[
        {"name": "template", "type": "ShellCommandActivity", "command": "x", "retryDelay": "soon"},
        {"name": "child", "parent": "template"},
        {"name": "grandchild", "parent": "child"},
    ])
    assert problems_of(spec) == ['spec.activities[0].retryDelay: "soon" is not a duration; write it like '
                                 '"15 minutes", "2 hours" or "1h30m"']


def test_a_field_the_child_type_lacks_names_the_child() -> None:
    spec = spec_with(activities=[
        {"name": "template", "type": "ShellCommandActivity", "command": "x"},
        {"name": "copy", "type": "CopyActivity", "parent": "template", "input": ["s3in"], "output": ["s3out"]},
    ])
    assert problems_of(spec) == ['spec.activities[0].command: CopyActivity has no field "command" '
                                 '(inherited by "copy")']


@pytest.mark.parametrize(("parents", "expected"), [
    ({"a": "a"}, "spec.activities[1].parent: parent cycle: a -> a"),
    ({"a": "b", "b": "a"}, "spec.activities[2].parent: parent cycle: a -> b -> a"),
    ({"a": "b", "b": "c", "c": "a"}, "spec.activities[3].parent: parent cycle: a -> b -> c -> a"),
    ({"a": ["b"]}, 'spec.activities[1].parent: must be the name of another activity, not a list'),
    ({"a": "act"}, 'spec.activities[1].parent: no activity named "act" in activities'),
])
def test_parent_problems(parents: dict[str, Any], expected: str) -> None:
    activities = [{"name": n, "type": "ShellCommandActivity", "command": "x",
                   **({"parent": parents[n]} if n in parents else {})} for n in ("a", "b", "c")]
    spec = spec_with(activities=[SUPPORT["activities"][0], *activities])
    assert expected in problems_of(spec)


# ---------------------------------------------------------------------------------------------- vars


def test_vars_are_referenced_like_aws_my_fields() -> None:
    spec = spec_with(dataNodes=[
        {"name": "drop", "type": "S3DataNode", "vars": {"myBucket": "landing", "myPath": "s3://#{myBucket}/x"},
         "directoryPath": "#{myPath}/#{format(@scheduledStartTime, 'YYYY-MM-dd')}"}],
        activities=[{"name": "a", "type": "ShellCommandActivity", "input": ["drop"], "stage": True,
                     "command": "ls #{input.directoryPath}"}])
    assert parse_ok(spec).objects["dataNodes"]["drop"].vars["myBucket"] == "landing"


@pytest.mark.parametrize(("vars_", "expected"), [
    ({"bucket": "x"}, 'spec.dataNodes[3].vars.bucket: user-defined field "bucket" must start with my'),
    ({"myCount": 3}, 'spec.dataNodes[3].vars.myCount: must be a string, not 3 (quote it: "3")'),
    ({"myPath": "#{myNothing}"}, 'spec.dataNodes[3].vars.myPath: #{myNothing} refers to nothing'),
    (["myA"], "spec.dataNodes[3].vars: must map my* names to strings"),
])
def test_bad_vars(vars_: Any, expected: str) -> None:
    node = {"name": "drop", "type": "S3DataNode", "directoryPath": "s3://x/", "vars": vars_}
    spec = spec_with(dataNodes=[*SUPPORT["dataNodes"], node])
    assert any(p.startswith(expected) for p in problems_of(spec)), problems_of(spec)


# ---------------------------------------------------------------------------------------------- references


def test_references_resolve_across_sections() -> None:
    spec = spec_with(activities=[
        {"name": "load", "type": "CopyActivity", "input": ["s3in"], "output": ["s3out"], "precondition": ["pre"],
         "runsOn": "cp", "onFail": ["act"], "onSuccess": ["act"], "onLateAction": ["act"],
         "lateAfterTimeout": "1 hour"},
        {"name": "sql", "type": "SqlActivity", "database": "db", "script": "select 1", "dependsOn": ["load"]},
    ])
    definition = parse_ok(spec)
    load = definition.activities["load"]
    assert (load.inputs, load.outputs, load.preconditions, load.runs_on) == (("s3in",), ("s3out",), ("pre",), "cp")
    assert definition.find("db", ("databases",)) is definition.objects["databases"]["db"]
    assert definition.find("db", ("dataNodes",)) is None
    assert definition.object("dataNodes", "wh").fields["database"] == "db"


@pytest.mark.parametrize(("activity", "expected"), [
    ({"dependsOn": ["lod"]}, 'spec.activities[1].dependsOn[0]: no activity named "lod"; did you mean "load"?'),
    ({"input": ["db"]}, 'spec.activities[1].input[0]: no data node named "db" ("db" is a database)'),
    ({"runsOn": "cpu"}, 'spec.activities[1].runsOn: no compute profile or cluster profile named "cpu"; '
                        'did you mean "cp"?'),
    ({"onFail": ["act", "act"]}, 'spec.activities[1].onFail[1]: "act" is listed twice'),
    ({"dependsOn": ["load"]}, 'spec.activities[1].dependsOn[0]: activity "load" cannot depend on itself'),
])
def test_reference_problems(activity: dict[str, Any], expected: str) -> None:
    spec = spec_with(activities=[SUPPORT["activities"][0],
                                 {"name": "load", "type": "ShellCommandActivity", "command": "x", **activity}])
    assert problems_of(spec) == [expected]


# ---------------------------------------------------------------------------------------------- graph


def chain_spec(edges: dict[str, list[str]]) -> dict[str, Any]:
    return spec_with(activities=[{"name": n, "type": "ShellCommandActivity", "command": "x", "dependsOn": deps}
                                 for n, deps in edges.items()])


def test_topological_order_keeps_written_order_for_ties() -> None:
    definition = parse_ok(chain_spec({"report": ["load", "audit"], "load": ["extract"], "audit": ["extract"],
                                      "extract": [], "cleanup": []}))
    order = definition.topological_order()
    assert order == ["extract", "load", "audit", "report", "cleanup"]
    for name, activity in definition.activities.items():
        assert all(order.index(dep) < order.index(name) for dep in activity.depends_on)


def test_topological_order_is_the_earliest_written_ready_activity_each_time() -> None:
    """The rule, checked on random graphs against its plain statement (the order runs and logs follow)."""
    import random

    rng = random.Random(12)
    for _ in range(200):
        names = [f"a{i}" for i in range(rng.randint(1, 12))]
        rng.shuffle(names)
        rank = {n: i for i, n in enumerate(sorted(names))}  # edges only from a lower rank: no cycle
        edges = {n: [d for d in names if rank[d] < rank[n] and rng.random() < 0.3] for n in names}
        expected: list[str] = []
        while len(expected) < len(names):
            expected.append(next(n for n in names if n not in expected
                                 and all(d in expected for d in edges[n])))
        assert parse_ok(chain_spec(edges)).topological_order() == expected, edges


def test_downstream_of() -> None:
    definition = parse_ok(chain_spec({"extract": [], "load": ["extract"], "audit": ["extract"],
                                      "report": ["load", "audit"], "cleanup": []}))
    assert definition.downstream_of("extract") == {"load", "audit", "report"}
    assert definition.downstream_of("load") == {"report"}
    assert definition.downstream_of("report") == set()
    assert definition.downstream_of("cleanup") == set()


@pytest.mark.parametrize(("edges", "cycle"), [
    ({"a": ["b"], "b": ["a"]}, "a -> b -> a"),
    ({"a": ["c"], "b": ["a"], "c": ["b"]}, "a -> c -> b -> a"),
    ({"x": [], "a": ["x", "b"], "b": ["c"], "c": ["a"]}, "a -> b -> c -> a"),
])
def test_cycles_print_the_cycle_once(edges: dict[str, list[str]], cycle: str) -> None:
    found = problems_of(chain_spec(edges))
    assert len(found) == 1 and found[0].endswith(f"dependency cycle: {cycle}"), found


def test_a_long_chain_needs_no_recursion() -> None:
    edges = {"a0": []} | {f"a{i}": [f"a{i - 1}"] for i in range(1, 1500)}
    definition = parse_ok(chain_spec(edges))
    assert definition.topological_order()[-1] == "a1499"
    cyclic = chain_spec({**edges, "a0": ["a1499"]})
    assert "dependency cycle: a0 -> a1499" in problems_of(cyclic)[0]


# ---------------------------------------------------------------------------------------------- activity rules


@pytest.mark.parametrize(("activity", "expected"), [
    ({"type": "CopyActivity", "input": ["s3in"], "output": []},
     "spec.activities[0].output: CopyActivity needs exactly one output data node, not 0"),
    ({"type": "CopyActivity", "input": ["s3in"], "output": ["wh"]},
     'spec.activities[0].output[0]: CopyActivity copies between S3DataNode, SqlDataNode and MySqlDataNode; '
     '"wh" is a RedshiftDataNode'),
    ({"type": "RedshiftCopyActivity", "input": ["s3in"], "output": ["s3out"], "insertMode": "APPEND"},
     "spec.activities[0].output: RedshiftCopyActivity needs one output: a RedshiftDataNode, or, from a "
     "RedshiftDataNode input, an S3DataNode or a SQL table"),
    ({"type": "HiveActivity", "hiveScript": "select 1", "runsOn": "cp"},
     'spec.activities[0].runsOn: HiveActivity runs on a cluster profile (the EmrCluster stand-in); name one from '
     'clusterProfiles, not the compute profile "cp"'),
    ({"type": "ShellCommandActivity", "command": "x", "maxActiveInstances": 0},
     "spec.activities[0].maxActiveInstances: must be at least 1"),
])
def test_activity_rules(activity: dict[str, Any], expected: str) -> None:
    assert problems_of(spec_with(activities=[{"name": "a", **activity}])) == [expected]


def test_copy_between_two_tables_needs_s3() -> None:
    spec = spec_with(dataNodes=[*SUPPORT["dataNodes"],
                                {"name": "src", "type": "SqlDataNode", "database": "db", "table": "a"},
                                {"name": "dst", "type": "MySqlDataNode", "database": "db", "table": "b"}],
                     activities=[{"name": "c", "type": "CopyActivity", "input": ["src"], "output": ["dst"]}])
    assert "one of input and output must be an S3DataNode" in problems_of(spec)[0]


# ---------------------------------------------------------------------------------------------- expressions


@pytest.mark.parametrize(("section", "text", "expected"), [
    ("activities", "echo #{myParam} #{@scheduledStartTime} #{@scheduledEndTime} #{@id} #{name}", None),
    ("activities", "#{format(minusMinutes(@scheduledStartTime, 30), 'YYYY-MM-dd hh:mm:ss')}", None),
    ("activities", "#{@scheduledStartTime.format('YYYY')} #{myParam + '-x'} #{1 + 2 * 3}", None),
    ("activities", "#{*myParam}", None),
    ("activities", "#{node.errorMessage}", "node.* is only known inside actions and preconditions"),
    ("activities", "#{myParm}", '#{myParm} refers to nothing: no field, parameter or runtime field "myParm"; '
                                'did you mean "myParam"?'),
    ("activities", "#{input.directoryPath}", '#{input.directoryPath}: this object sets no "input"'),
    ("activities", "#{database.x}", '#{database.x}: "database" is not a reference field of this object'),
    ("activities", "#{format(@scheduledStartTime)}", "bad expression: format takes 2 arguments"),
    ("activities", "#{nosuch(1)}", 'bad expression: unknown function "nosuch"'),
    ("activities", "#{1 +}", "bad expression:"),
    ("actions", "#{node.errorMessage} #{node.@scheduledStartTime} #{node.output.directoryPath}", None),
])
def test_expressions_are_checked(section: str, text: str, expected: str | None) -> None:
    spec = spec_with(parameters=[{"id": "myParam", "default": "p"}])
    if section == "activities":
        spec["activities"] = [{"name": "a", "type": "ShellCommandActivity", "command": text}]
        path = "spec.activities[0].command"
    else:
        spec["actions"] = [{"name": "n", "type": "SnsAlarm", "topicArn": "arn:x", "message": text}]
        path = "spec.actions[0].message"
    found = problems_of(spec)
    if expected is None:
        assert found == []
    else:
        assert any(p.startswith(f"{path}: ") and expected in p for p in found), found


def test_expressions_see_inherited_fields_and_defaults() -> None:
    spec = spec_with(defaults={"workerGroup": "wg", "vars": {"myRoot": "s3://r"}},
                     activities=[{"name": "a", "type": "ShellCommandActivity", "input": ["s3in"],
                                  "command": "run #{workerGroup} #{myRoot} #{input.filePath}"}])
    parse_ok(spec)


# ---------------------------------------------------------------------------------------------- parameters


def test_parameters_and_values() -> None:
    spec = spec_with(
        parameters=[
            {"id": "myBucket", "type": "String", "default": "landing", "description": "Where files land."},
            {"id": "myBatch", "type": "Integer", "default": "100"},
            {"id": "myRatio", "type": "Double", "default": 0.25},
            {"id": "myKey", "type": "AWS::S3::ObjectKey", "optional": True},
            {"id": "myTables", "isArray": True, "default": ["a", "b"], "allowedValues": ["a", "b", "c"]},
            {"id": "*myPassword", "optional": True, "helpText": "masked"},
        ],
        values={"myBatch": "250", "myTables": ["c"], "myKey": "s3://bucket/key"})
    definition = parse_ok(spec)
    params = definition.parameters
    assert set(params) == {"myBucket", "myBatch", "myRatio", "myKey", "myTables", "myPassword"}
    assert params["myRatio"].default == "0.25" and params["myRatio"].type == "Double"
    assert params["myTables"].is_array and params["myTables"].default == ["a", "b"]
    assert params["myTables"].allowed_values == ("a", "b", "c")
    assert params["myBucket"].type == "String" and params["myBucket"].description == "Where files land."
    assert params["myKey"].optional and params["myPassword"].optional
    assert definition.values == {"myBatch": "250", "myTables": ["c"], "myKey": "s3://bucket/key"}


@pytest.mark.parametrize(("parameter", "values", "expected"), [
    ({"id": "bucket"}, {}, 'spec.parameters[0].id: "bucket" must start with my'),
    ({"id": "myX", "type": "Float"}, {}, "spec.parameters[0].type: must be one of String, Integer, Double, "
                                         'AWS::S3::ObjectKey, not "Float"'),
    ({"id": "myX", "type": "Integer", "default": "1.5"}, {}, 'spec.parameters[0].default: "1.5" is not an Integer'),
    ({"id": "myX", "type": "Double", "default": "fast"}, {}, 'spec.parameters[0].default: "fast" is not a Double'),
    ({"id": "myX", "default": "c", "allowedValues": ["a", "b"]}, {},
     'spec.parameters[0].default: "c" is not allowed; one of a, b'),
    ({"id": "myX", "default": ["a"]}, {}, 'spec.parameters[0].default: is a list but parameter "myX" is not an array'),
    ({"id": "myX", "allowedValues": "a"}, {"myX": "a"}, "spec.parameters[0].allowedValues: must be a list of strings"),
    ({"id": "myX", "optional": "no"}, {}, 'spec.parameters[0].optional: must be true or false, not "no"'),
    ({"id": "myX", "name": "x", "default": "a"}, {}, 'spec.parameters[0].name: unknown field "name"'),
    ({"id": "myX"}, {"myX": None}, "spec.values.myX: must be a string (or a list for isArray), not nothing"),
    ({"id": "myX"}, {"myX": {"a": "b"}}, "spec.values.myX: must be a string (or a list for isArray), not an object"),
    ({"id": "myX", "isArray": True}, {"myX": [["a"]]}, "spec.values.myX: must be a list of strings"),
    ({"id": "myX"}, {}, 'spec.values.myX: parameter "myX" needs a value (it has no default and is not optional)'),
])
def test_parameter_problems(parameter: dict[str, Any], values: dict[str, Any], expected: str) -> None:
    found = problems_of(spec_with(parameters=[parameter], values=values))
    assert any(p.startswith(expected) for p in found), found


def test_a_parameter_defined_twice() -> None:
    found = problems_of(spec_with(parameters=[{"id": "myX", "default": "a"}, {"id": "*myX", "valueFromSecret": {"name": "s", "key": "k"}}]))
    assert found == ['spec.parameters[1].id: parameter "myX" is defined twice']


# ---------------------------------------------------------------------------------------------- schedule


def test_period_schedule() -> None:
    spec = spec_with(schedule={"period": "15 minutes", "startDateTime": "2026-01-01T02:00:00+02:00",
                               "endDateTime": "2026-02-01T00:00:00Z"}, scheduleType="timeseries")
    definition = parse_ok(spec)
    schedule = definition.schedule
    assert schedule is not None and definition.schedule_type == "timeseries"
    assert schedule.period == Period(15, "minutes") and schedule.cron is None
    assert schedule.start == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert schedule.end == datetime(2026, 2, 1, tzinfo=UTC)
    assert schedule.time_zone == "UTC" and schedule.occurrences is None


def test_cron_schedule_with_time_zone_and_occurrences() -> None:
    spec = spec_with(schedule={"cron": "0 3 * * MON-FRI", "timeZone": "Europe/Berlin", "occurrences": 10,
                               "startAt": "FIRST_ACTIVATION_DATE_TIME"})
    schedule = parse_ok(spec).schedule
    assert schedule is not None
    assert (schedule.cron, schedule.time_zone, schedule.occurrences, schedule.start) == \
        ("0 3 * * MON-FRI", "Europe/Berlin", 10, None)


@pytest.mark.parametrize("cron", ["*/5 * * * *", "0 0 1 * *", "30 0 3 * * *", "@daily", "0 0 29 2 *"])
def test_valid_crons(cron: str) -> None:
    parse_ok(spec_with(schedule={"cron": cron}))


def test_ondemand_has_no_schedule() -> None:
    spec = spec_with(scheduleType="ondemand")
    del spec["schedule"]
    definition = parse_ok(spec)
    assert definition.schedule is None and definition.schedule_type == "ondemand"


@pytest.mark.parametrize(("schedule", "expected"), [
    ({"cron": "0 3 * *"}, 'spec.schedule.cron: "0 3 * *" is not a valid cron expression'),
    ({"cron": 5}, "spec.schedule.cron: 5 is not a valid cron expression"),
    ({"cron": "0 0 31 4 *"}, 'spec.schedule.cron: "0 0 31 4 *" never fires'),
    ({"period": "0 days"}, 'spec.schedule.period: "0 days" must be greater than zero'),
    ({"period": 15}, 'spec.schedule.period: must be a string like "1 day", not 15'),
    ({"period": "1 day", "timeZone": "Mars/Olympus"}, 'spec.schedule.timeZone: unknown time zone "Mars/Olympus"'),
    ({"period": "1 day", "timeZone": ""}, 'spec.schedule.timeZone: unknown time zone ""'),
    ({"period": "1 day", "timeZone": "America"}, 'spec.schedule.timeZone: unknown time zone "America"'),
    ({"period": "1 day", "startAt": "NOW"}, 'spec.schedule.startAt: must be "FIRST_ACTIVATION_DATE_TIME"'),
    ({"period": "1 day", "startAt": "FIRST_ACTIVATION_DATE_TIME", "startDateTime": "2026-01-01T00:00:00Z"},
     "spec.schedule: set at most one of startDateTime and startAt"),
    ({"period": "1 day", "occurrences": 0}, "spec.schedule.occurrences: must be at least 1, not 0"),
    ({"period": "1 day", "occurrences": "5"}, 'spec.schedule.occurrences: must be a whole number, not "5"'),
    ({"period": "1 day", "endDateTime": "tomorrow"}, 'spec.schedule.endDateTime: "tomorrow" is not a date-time'),
    ({"period": "1 day", "every": "day"}, 'spec.schedule.every: unknown field "every"'),
    ({}, "spec.schedule: set exactly one of cron and period"),
    ("daily", "spec.schedule: must be an object with cron or period"),
])
def test_schedule_problems(schedule: Any, expected: str) -> None:
    found = problems_of(spec_with(schedule=schedule))
    assert any(p.startswith(expected) for p in found), found


def test_parse_instant() -> None:
    utc = datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_instant("2026-01-31T00:00:00Z") == utc
    assert parse_instant("2026-01-31T00:00:00") == utc
    assert parse_instant("2026-01-31T01:00:00+01:00") == utc
    assert parse_instant(datetime(2026, 1, 31)) == utc
    assert parse_instant(datetime(2026, 1, 31).date()) == utc
    with pytest.raises(ValueError):
        parse_instant(20260131)


# ---------------------------------------------------------------------------------------------- spec and manifest


def test_spec_level_settings() -> None:
    spec = spec_with(activated=True, missedRunPolicy="RunLatest", maxActiveRuns=3, successfulRunsHistoryLimit=0,
                     failedRunsHistoryLimit=5, pipelineLogUri="s3://logs/", runnerImage="runner:1",
                     description="demo",
                     aws={"region": "eu-west-1", "s3EndpointUrl": "http://minio:9000", "s3PathStyle": True,
                          "credentialsSecret": "s3"})
    definition = parse_ok(spec)
    assert definition.activated and definition.missed_run_policy == "RunLatest"
    assert (definition.max_active_runs, definition.successful_runs_history_limit,
            definition.failed_runs_history_limit) == (3, 0, 5)
    assert definition.aws.region == "eu-west-1" and definition.aws.s3_path_style
    assert definition.aws.credentials_secret == "s3" and definition.pipeline_log_uri == "s3://logs/"


@pytest.mark.parametrize(("changes", "expected"), [
    ({"activated": "yes"}, 'spec.activated: must be true or false, not "yes"'),
    ({"maxActiveRuns": None}, None),
    ({"maxActiveRuns": True}, "spec.maxActiveRuns: must be a whole number, not true"),
    ({"failedRunsHistoryLimit": -1}, "spec.failedRunsHistoryLimit: must be at least 0, not -1"),
    ({"aws": {"regoin": "x"}}, 'spec.aws.regoin: unknown field "regoin"; did you mean "region"?'),
    ({"aws": "us-east-1"}, "spec.aws: must be an object"),
    ({"activities": {"name": "a"}}, "spec.activities: must be a list, not an object"),
    ({"activities": ["a"]}, "spec.activities[0]: must be an object with a name and a type"),
    ({"activities": [{"type": "ShellCommandActivity", "command": "x"}]}, "spec.activities[0].name: is required"),
])
def test_spec_problems(changes: dict[str, Any], expected: str | None) -> None:
    found = problems_of(spec_with(**changes))
    if expected is None:
        assert found == []
    else:
        assert any(p.startswith(expected) for p in found), found


def test_parse_manifest() -> None:
    manifest = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "demo"},
                "spec": spec_with()}
    assert parse_manifest(manifest).activities["base"].type == "ShellCommandActivity"
    with pytest.raises(DefinitionError) as error:
        parse_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x" * 60}})
    assert [str(p) for p in error.value.problems] == [
        'apiVersion: must be "datapipeline.io/v1alpha1", not "v1"',
        'kind: must be "Pipeline", not "Pod"',
        f'metadata.name: "{"x" * 60}" must be a DNS label of at most 53 characters: lower case letters, digits and '
        "'-' (run names add a suffix)",
        "spec: is required and must be an object",
    ]


def test_problems_come_all_at_once() -> None:
    spec = spec_with(maxActiveRuns=0, activities=[
        {"name": "a", "type": "ShellCommandActivity", "command": "x", "dependsOn": ["zz"]},
        {"name": "b", "type": "NoSuch"}])
    assert len(problems_of(spec)) == 3


# ---------------------------------------------------------------------------------------------- robustness

junk = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["s3in", "db", "cp", "1 day", "#{", "#{x}", "ShellCommandActivity", "my", "*my"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)
paths = st.lists(st.sampled_from(["schedule", "parameters", "values", "defaults", "activities", "dataNodes",
                                  "databases", "actions", 0, 1, 2, "name", "type", "parent", "vars", "command",
                                  "dependsOn", "input", "passwordSecret", "period", "cron", "id", "default"]),
                 min_size=1, max_size=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths, junk)
def test_any_junk_anywhere_is_a_definition_error_never_a_crash(path: list[Any], value: Any) -> None:
    spec = spec_with(parameters=[{"id": "myX", "default": "1"}])
    target: Any = spec
    for step in path[:-1]:
        if isinstance(target, dict) and isinstance(step, str):
            target = target.setdefault(step, {})
        elif isinstance(target, list) and isinstance(step, int) and step < len(target):
            target = target[step]
        else:
            return
    last = path[-1]
    settable = isinstance(target, dict) and isinstance(last, str)
    if settable or (isinstance(target, list) and isinstance(last, int) and last < len(target)):
        target[last] = value
    try:
        parse_pipeline(spec)
    except DefinitionError as error:
        assert all(p.message for p in error.problems)
