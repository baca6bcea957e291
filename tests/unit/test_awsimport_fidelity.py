"""Imported manifests say what the AWS definition said: schedule, dependencies, retries, timeouts,
preconditions, data nodes and expressions (not only "it validates"); and each import pattern AWS accepts
imports with its values, and resolves as AWS would."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from datapipeline.awsimport import forms
from datapipeline.awsimport.convert import ImportError_, convert
from datapipeline.cli.main import main
from datapipeline.core import catalog
from datapipeline.core.catalog import Kind
from datapipeline.core.definition import parse_manifest, parse_pipeline
from datapipeline.core.emrsteps import StepError, parse_step
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import Resolver, RunContext

ROOT = Path(__file__).resolve().parents[2]
AWS = ROOT / "tests" / "aws"
FIXTURES = sorted(AWS.glob("*.json"))
TIMING = ("maximumRetries", "retryDelay", "attemptTimeout", "lateAfterTimeout", "reportProgressTimeout")
START = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def user_input(path: Path) -> tuple[dict[str, Any], list[Any] | None]:
    values_file, params_file = AWS / "values" / path.name, AWS / "parameters" / path.name
    values = load(values_file)["values"] if values_file.exists() else {}
    params = load(params_file)["parameters"] if params_file.exists() else None
    return values, params


def imported(path: Path) -> tuple[dict[str, Any], list[str]]:
    values, params = user_input(path)
    result = convert(load(path), path.stem, values, params)
    return result.manifest, result.warnings


def flattened(path: Path) -> dict[str, dict[str, Any]]:
    """The source objects with their parents' fields, read independently of the importer."""
    objects = {o["id"]: o for o in forms.normalise(load(path))["objects"]}

    def merged(obj_id: str) -> dict[str, Any]:
        obj = objects[obj_id]
        parent = obj.get("parent", {}).get("ref") if isinstance(obj.get("parent"), dict) else None
        base = merged(parent) if parent and parent != "Default" else {}
        return {**{k: v for k, v in base.items() if k not in ("id", "name")}, **obj}

    return {obj_id: merged(obj_id) for obj_id in objects}


def refs(value: Any) -> list[str]:
    return [v["ref"] for v in (value if isinstance(value, list) else [value])]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def objects_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for section in catalog.SECTIONS for o in spec.get(section, [])}


def check_schedule(source: dict[str, dict[str, Any]], spec: dict[str, Any]) -> None:
    default = source.get("Default", {})
    if str(default.get("scheduleType", "cron")).lower() == "ondemand":
        assert spec["scheduleType"] == "ondemand" and "schedule" not in spec
        return
    assert spec["scheduleType"] == str(default.get("scheduleType", "cron")).lower()
    used = {r for o in source.values() if "schedule" in o for r in refs(o["schedule"])}
    named = dict(spec.get("schedules") or {})
    assert len(named) == max(0, len(used) - 1)  # each Schedule in use is kept: the default one, then by name
    (schedule_id,) = [refs(default["schedule"])[0]] if "schedule" in default else \
        [i for i in used if len(used) == 1] or [i for i, o in source.items() if o.get("type") == "Schedule"]
    raw, schedule = source[schedule_id], spec["schedule"]
    assert schedule["period"] == raw["period"].lower()
    if "occurrences" in raw:
        assert schedule["occurrences"] == int(raw["occurrences"])
    for key in ("startDateTime", "endDateTime"):
        if key in raw and "(" not in raw[key]:
            assert schedule[key].startswith(raw[key][:19])
    if "startAt" in raw:
        assert schedule["startAt"] == raw["startAt"]


def check_field(obj_id: str, key: str, value: Any, spec: catalog.FieldSpec, target: dict[str, Any]) -> None:
    where = f"{obj_id}.{key}"
    if key == "schedule":  # a name from spec.schedules, absent for the default one (check_schedule)
        return
    if spec.kind in (Kind.REF, Kind.REFS):
        if key == "runsOn" and target.get("runsOn") is None:
            raise AssertionError(f"{where}: runsOn lost")
        expected = refs(value)
        assert as_list(target[key]) == (expected[:1] if spec.kind is Kind.REF else expected), where
    elif "#{" in json.dumps(value) and (spec.kind in (Kind.INT, Kind.DURATION, Kind.BOOL) or spec.enum):
        assert key in target, where  # a fixed-value field: evaluated at import (checked by the pattern tests)
    elif spec.kind is Kind.INT:
        assert target[key] == int(value), where
    elif spec.kind is Kind.BOOL:
        assert target[key] == (str(value).lower() == "true"), where
    elif spec.kind is Kind.DURATION:
        assert str(target[key]).split()[0] == str(value).split()[0], where
    elif spec.kind is Kind.STRINGS:
        assert target[key] == as_list(value), where
    elif spec.kind is Kind.STRING and key != "workerGroup":
        expected = value[0] if isinstance(value, list) else value
        assert str(target[key]).lower() == str(expected).lower() if spec.enum else target[key] == expected, where


def parsed(manifest: dict[str, Any]) -> PipelineDefinition:
    """The imported manifest parsed. What validation rejects though it imports as written (docs/spark.md: a
    PigActivity, a step running one of EMR's own tools) is parsed as what it must become (a HiveActivity, a
    spark-submit step), so the rest of the definition is still checked."""
    try:
        return parse_manifest(manifest)
    except DefinitionError as error:
        assert all(p.message.startswith("PigActivity is not supported") or ".step[" in p.path
                   for p in error.problems), error
    activities = []
    for activity in manifest["spec"]["activities"]:
        activity = dict(activity)
        if activity.get("type") == "PigActivity":
            activity.update(type="HiveActivity", hiveScript=activity.pop("script", ""))
        steps = activity.get("step")
        if steps:
            activity["step"] = [s if runnable(s) else "command-runner.jar,spark-submit,app.py" for s in steps]
        activities.append(activity)
    return parse_manifest({**manifest, "spec": {**manifest["spec"], "activities": activities}})


def runnable(step: str) -> bool:
    try:
        parse_step(step)
    except StepError:
        return False
    return True


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_the_manifest_says_what_the_definition_said(path: Path) -> None:
    manifest, _ = imported(path)
    spec = manifest["spec"]
    parsed(manifest)
    source = flattened(path)
    check_schedule(source, spec)
    targets = objects_of(spec)
    for obj_id, obj in source.items():
        type_spec = catalog.TYPES.get(obj.get("type", ""))
        if type_spec is None:
            continue
        target = targets[obj_id]
        for key, value in obj.items():
            if key in type_spec.field_map and not (key == "database" and "connectionString" in obj):
                check_field(obj_id, key, value, type_spec.field_map[key], target)
            elif key.startswith("my") and not isinstance(value, list):
                assert target["vars"][key] == value, f"{obj_id}.{key}"
    default = source.get("Default", {})
    for key in ("failureAndRerunMode", *TIMING):
        if key in default:
            assert str(spec["defaults"][key]).lower() == str(default[key]).lower()


def test_every_fixture_keeps_dependencies_preconditions_and_data_nodes() -> None:
    """The graph as a whole: every dependsOn, input, output and precondition edge survives."""
    for path in FIXTURES:
        manifest, _ = imported(path)
        definition = parsed(manifest)
        source = flattened(path)
        for obj_id, obj in source.items():
            if catalog.TYPES.get(obj.get("type", "")) is None or catalog.TYPES[obj["type"]].section != "activities":
                continue
            activity = definition.activities[obj_id]
            assert list(activity.depends_on) == refs(obj.get("dependsOn", [])), f"{path.name}: {obj_id}"
            assert list(activity.inputs) == refs(obj.get("input", [])), f"{path.name}: {obj_id}"
            assert list(activity.outputs) == refs(obj.get("output", [])), f"{path.name}: {obj_id}"
            assert list(activity.preconditions) == refs(obj.get("precondition", [])), f"{path.name}: {obj_id}"


# ---------------------------------------------------------------------------------------------- the patterns


def resolver(manifest: dict[str, Any], start: datetime = START) -> Resolver:
    definition = parse_manifest(manifest)
    return Resolver(definition, RunContext(pipeline=manifest["metadata"]["name"], run="r1", scheduled_start=start,
                                           scheduled_end=start))


def test_whole_number_and_duration_fields_take_parameter_values() -> None:
    manifest, warnings = imported(AWS / "emr-parameterised-cluster.json")
    spec = manifest["spec"]
    (cluster,) = spec["clusterProfiles"]
    assert cluster["executorInstances"] == 5  # the value given, over the default 2
    assert cluster["terminateAfter"] == "4 hours"  # a number of hours, from a parameter
    prepare = objects_of(spec)["PrepareExport"]
    assert prepare["maximumRetries"] == 3 and prepare["attemptTimeout"] == "45 minutes"
    assert prepare["runsOn"] == "ExportCluster"  # a shell command on the cluster profile, in its image
    assert 'object "ExportCluster": field "coreInstanceCount": "#{myCoreNodes}" was evaluated at import to "5" ' \
           "(whole-number fields take no expressions here; a value given at run time does not change it)" in warnings
    for ebs in ("CoreVolumes", "Gp3Volume", "Gp3Spec"):
        assert any(w.startswith(f'object "{ebs}": ') and "dropped: EBS volumes do not apply" in w for w in warnings)


def test_a_fixed_value_field_without_a_value_names_the_parameter() -> None:
    definition = load(AWS / "emr-parameterised-cluster.json")
    with pytest.raises(ImportError_) as error:
        convert(definition, "x", {"myLogUri": "s3://l/"})
    assert str(error.value) == (
        'object "ExportCluster": field "terminateAfter" is "#{myClusterHours}"; a duration field holds a fixed value '
        'here, evaluated at import, and unknown reference "myClusterHours" at column 3 (give myClusterHours a value '
        "with --values)")


def test_stage_without_nodes_and_worker_groups() -> None:
    manifest, warnings = imported(AWS / "efs-style-backup.json")
    targets = objects_of(manifest["spec"])
    assert targets["SnapshotFiles"]["stage"] is True and "input" not in targets["SnapshotFiles"]
    assert targets["BackupHost"]["terminateAfter"] == "2 hours"
    assert targets["PruneOldCopies"]["workerGroup"] == "nfs-hosts"
    # On AWS a workerGroup is a Task Runner on the user's machines: here a poll group (docs/worker-groups.md).
    assert manifest["spec"]["workerGroups"] == {"nfs-hosts": {"mode": "poll"}}
    assert 'object "PruneOldCopies": workerGroup "nfs-hosts" is declared in spec.workerGroups with mode poll: its ' \
           "attempts wait for a poller on the group's machines, as for AWS's Task Runner: run " \
           "`datapipeline-runner poll --worker-group nfs-hosts` there (docs/worker-groups.md); or set mode " \
           "nodeSelector to run its pods on nodes labelled datapipeline.io/worker-group=nfs-hosts" in warnings
    parse_pipeline(manifest["spec"])  # valid as imported


def test_emr_family_activities_with_a_worker_group_get_a_cluster_profile() -> None:
    manifest, warnings = imported(AWS / "emr-worker-group.json")
    spec = manifest["spec"]
    targets = objects_of(spec)
    assert targets["Sessionize"]["runsOn"] == "workerGroup-analytics-runners"  # from Default's workerGroup
    assert targets["CountSessions"]["runsOn"] == "workerGroup-big-jobs"
    assert [p["name"] for p in spec["clusterProfiles"]] == ["workerGroup-analytics-runners", "workerGroup-big-jobs"]
    assert spec["defaults"]["workerGroup"] == "analytics-runners"  # the shell activity keeps it: a poll group
    assert spec["workerGroups"] == {"analytics-runners": {"mode": "poll"}}
    assert any(w.startswith('object "Default": workerGroup "analytics-runners" is declared in spec.workerGroups with '
                            "mode poll") for w in warnings)


def test_a_worker_group_that_is_no_dns_label_is_renamed_once_and_said() -> None:
    objects = [{"id": "Default", "name": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE"},
               {"id": "A", "name": "A", "type": "ShellCommandActivity", "command": "true",
                "workerGroup": "wg_OnPrem.1"},
               {"id": "B", "name": "B", "type": "ShellCommandActivity", "command": "true",
                "workerGroup": "wg_OnPrem.1"}]
    result = convert({"objects": objects}, "renamed")
    manifest, warnings = result.manifest, result.warnings
    targets = objects_of(manifest["spec"])
    assert targets["A"]["workerGroup"] == targets["B"]["workerGroup"] == "wg-onprem-1"
    assert manifest["spec"]["workerGroups"] == {"wg-onprem-1": {"mode": "poll"}}
    said = [w for w in warnings if "wg_OnPrem.1" in w]
    assert len(said) == 1 and '(renamed "wg-onprem-1": a poll group is a DNS label)' in said[0]
    parse_pipeline(manifest["spec"])


def test_redshift_in_three_directions_and_passwords_from_parameters() -> None:
    path = AWS / "redshift-three-directions.json"
    values, _ = user_input(path)
    result = convert(load(path), "rs", values)
    text = yaml.safe_dump_all([*result.secrets, result.manifest])
    assert "s3cr3t" not in text  # no supplied secret value is printed, not even into the Secrets
    spec = result.manifest["spec"]
    parse_manifest(result.manifest)
    assert [p["id"] for p in spec["parameters"]] == ["myRedshiftUser", "myIncoming", "myExport"]
    assert "values" not in spec  # the password values fed only *password fields
    databases = {d["name"]: d for d in spec["databases"]}
    assert databases["Reporting"]["passwordSecret"] == {"name": "rs-reporting", "key": "password"}
    assert 'object "myReportingPassword": parameter dropped: its only uses were *password fields, which became ' \
           "Secret references (its value is not copied)" in result.warnings
    targets = objects_of(spec)
    assert targets["MergeOrders"]["insertMode"] == "OVERWRITE_EXISTING"  # keys: the table's own, read at run time
    assert "primaryKeys" not in targets["OrdersTable"]
    assert targets["UnloadOrders"]["output"] == ["OrdersExport"] and targets["CopyToReporting"]["output"] == \
        ["ReportingOrders"]


def test_the_api_form_imports_like_the_cli_form() -> None:
    manifest, _ = imported(AWS / "api-form-dump.json")
    spec = manifest["spec"]
    dump = objects_of(spec)["Dump"]
    assert dump["scriptArgument"] == ["--region", "#{myRegion}"]  # a key given twice is a list
    assert dump["runsOn"] == "Worker" and dump["output"] == ["Target"] and dump["precondition"] == ["TableThere"]
    assert spec["values"] == {"myTable": "customers"}
    assert {p["id"] for p in spec["parameters"]} == {"myTable", "myLogs", "myRegion"}
    task = resolver(manifest).activity("Dump", 1, START).task
    assert task.fields["scriptArgument"] == ["--region", "us-east-1"]


def test_separate_parameter_and_values_files(capsys: pytest.CaptureFixture[str]) -> None:
    path = AWS / "params-apart.json"
    code = main(["import-aws", str(path), "--parameter-objects", str(AWS / "parameters" / path.name),
                 "--parameter-values-uri", str(AWS / "values" / path.name), "--parameter-value", "myOracleHost=db2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    spec = next(d for d in yaml.safe_load_all(out) if d["kind"] == "Pipeline")["spec"]
    assert spec["values"]["myOracleHost"] == "db2"  # the command line wins over the file
    assert objects_of(spec)["OracleHost"]["terminateAfter"] == "6 hours"
    params = {p["id"]: p for p in spec["parameters"]}
    assert params["myBackupLocation"]["type"] == "String"  # AWS accepts a plain key for AWS::S3::ObjectKey
    assert "myOraclePassword" not in params and "or-s3cr3t" not in out


def test_untyped_parents_makedate_and_list_expressions() -> None:
    manifest, warnings = imported(AWS / "schedule-from-parent.json")
    spec = manifest["spec"]
    assert spec["schedule"]["startDateTime"] == "2026-01-01T00:00:00Z"
    assert spec["schedule"]["endDateTime"] == "2026-12-31T23:00:00Z"
    assert 'object "DailyReportSettings": has no type: its fields were inherited by BuildReport, PublishReport' \
        in warnings
    assert "DailyReportSettings" not in objects_of(spec)
    task = resolver(manifest, datetime(2026, 1, 2, tzinfo=UTC)).activity("BuildReport", 1).task
    assert task.fields["command"] == ("build-report --name BuildReport --type ShellCommandActivity --id BuildReport "
                                      '--out s3://acme-reports/BuildReport/2026-01-02 "$@"')
    assert task.fields["scriptArgument"] == ["--region=eu", "--region=us", "--region=ap", "--pdf", "--csv"]
    publish = resolver(manifest).activity("PublishReport", 1).task
    assert publish.fields["command"].endswith("--to #reports")  # a value with no parameter object


def test_inline_sql_connections_and_array_parameters() -> None:
    manifest, warnings = imported(AWS / "sql-inline-connection.json")
    spec = manifest["spec"]
    targets = objects_of(spec)
    assert targets["ShopOrders"]["database"] == "ShopOrders-database"
    assert targets["ShopOrders-database"]["connectionString"] == "jdbc:mysql://shop-db.example.internal:3306/shop"
    assert "my-password-as-written" not in json.dumps(manifest)
    params = {p["id"]: p for p in spec["parameters"]}
    assert params["myExportKey"]["type"] == "String"  # a plain key default
    task = resolver(manifest).activity("PurgeRegions", 1).task
    assert task.fields["scriptArgument"] == ["eu", "us", "2026-03-02"]  # one ? per region, bound separately
    assert any(w == 'object "ShopOrders": its connection became the database "ShopOrders-database"'
               for w in warnings)


BROKEN = {
    "period-unit.json": (
        {"objects": [{"id": "Default", "schedule": {"ref": "Every"}},
                     {"id": "Every", "type": "Schedule", "period": "15 Period", "startAt": "FIRST_ACTIVATION_DATE_TIME"},
                     {"id": "Run", "type": "ShellCommandActivity", "command": "true"}]},
        'object "Every": field "period": unknown unit "Period" in "15 Period"; use seconds, minutes, hours, days, '
        "weeks, months or years"),
    "unknown-type.json": (
        {"objects": [{"id": "Default", "scheduleType": "ondemand"},
                     {"id": "Unload", "type": "RedshiftUnloadActivity"}]},
        'object "Unload" has type "RedshiftUnloadActivity", which kube-datapipeline does not know; the activity types '
        "it knows are CopyActivity, EmrActivity,"),
    "start-date-time.json": (
        {"objects": [{"id": "Default", "schedule": {"ref": "Daily"}},
                     {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "start_datetime"},
                     {"id": "Run", "type": "ShellCommandActivity", "command": "true"}]},
        'object "Daily": field "startDateTime": "start_datetime" is not a date-time; AWS writes them like '
        '"2026-01-31T00:00:00" (UTC)'),
    "api-field-without-value.json": (
        {"pipelineObjects": [{"id": "Default", "name": "Default", "fields": [{"key": "scheduleType"}]}]},
        'objects[0] ("Default"): field "scheduleType" has neither "stringValue" nor "refValue"'),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_definitions_broken_as_written_fail_with_a_message_naming_the_object(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    definition, expected = BROKEN[name]
    path = tmp_path / name
    path.write_text(json.dumps(definition))
    assert main(["import-aws", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith(f"error: {expected}"), err
