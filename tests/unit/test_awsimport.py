"""`datapipeline import-aws`: every AWS fixture becomes a manifest that `datapipeline validate` accepts; what
has no equivalent is a warning naming the object and field; what cannot be converted is a clear error."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datapipeline.awsimport import forms
from datapipeline.awsimport.convert import ImportError_, convert
from datapipeline.cli.main import main
from datapipeline.cli.validate import validate_files
from datapipeline.core import catalog
from datapipeline.core.definition import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "aws").glob("*.json"))
IDS = [p.stem for p in FIXTURES]
AWS_ONLY_TYPES = {"Ec2Resource", "EmrCluster", "EmrConfiguration", "Property", "Schedule", "ShellScriptConfig"}
OURS_ONLY_TYPES = {"ComputeProfile", "ClusterProfile", "Webhook", "SqlQueryPrecondition"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def user_files(path: Path) -> list[str | Path]:
    """The values (and separate parameter objects) a user would supply with this fixture, as CLI options."""
    args: list[str | Path] = []
    for option, folder in (("--values", "values"), ("--parameters", "parameters")):
        side = path.parent / folder / path.name
        if side.exists():
            args += [option, side]
    return args


def import_aws(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["import-aws", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pipeline_of(text: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    (pipeline,) = [d for d in docs if d["kind"] == "Pipeline"]
    return pipeline


# ---------------------------------------------------------------------------------------------- the fixtures


def test_the_fixtures_cover_every_object_type() -> None:
    types = {obj.get("type") for path in FIXTURES for obj in forms.normalise(load(path))["objects"]}
    expected = (set(catalog.TYPES) - OURS_ONLY_TYPES) | AWS_ONLY_TYPES
    assert expected <= types, f"no fixture has {sorted(expected - types)}"
    objects = [obj for path in FIXTURES for obj in forms.normalise(load(path))["objects"]]
    assert any(o["id"] == "Default" and "role" in o and "resourceRole" in o for o in objects)
    assert any(o.get("type") == "MySqlDataNode" and "connectionString" in o and "*password" in o for o in objects)
    assert any(o.get("type") == "SqlDataNode" and "connectionString" in o and "*password" in o for o in objects)
    assert any(o.get("type") == "RedshiftDatabase" and "*password" in o for o in objects)
    assert any(p["id"].startswith("*") for path in FIXTURES for p in load(path).get("parameters", []))
    assert any("pipelineObjects" in load(path) for path in FIXTURES)  # the API form
    assert any("type" not in o and o["id"] != "Default" for o in objects)  # an untyped parent
    assert any("parent" in o for o in objects)
    assert 8 <= len(FIXTURES) <= 25


def test_aws_fixtures_are_in_aws_form() -> None:
    """put-pipeline-definition JSON (CLI or API form): every value a string, a reference or a list of those."""
    for path in FIXTURES:
        data = forms.normalise(load(path))
        assert set(data) <= {"objects", "parameters", "values"}, path.name
        for obj in data["objects"]:
            for key, value in obj.items():
                for item in value if isinstance(value, list) else [value]:
                    assert isinstance(item, str) or (isinstance(item, dict) and set(item) == {"ref"}), \
                        f"{path.name}: {obj['id']}.{key}"


# Fixtures holding an activity type this project does not run: the field validation names.
UNSUPPORTED = {"web-log-hive-pig": "spec.activities[1] (HostHits).script",
               "emr-job": "spec.activities[0] (StreamingWordCount).step[0]",
               "emr-parameterised-cluster": "spec.activities[1] (RunExport).step[1]"}


@pytest.mark.parametrize("path", FIXTURES, ids=IDS)
def test_each_fixture_imports_to_a_valid_manifest(path: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = import_aws(capsys, path, *user_files(path))
    assert code == 0, err
    assert "Traceback" not in err and "error:" not in err
    assert all(line.startswith("warning: ") for line in err.splitlines())
    manifest = tmp_path / f"{path.stem}.yaml"
    manifest.write_text(out)
    report = io.StringIO()
    if path.stem in UNSUPPORTED:  # imported as written, with a warning; validation says what to rewrite
        assert validate_files([manifest], io.StringIO(), report) == 1
        assert [line.split(": ", 2)[1] for line in report.getvalue().splitlines()] == [UNSUPPORTED[path.stem]]
    else:
        assert validate_files([manifest], io.StringIO(), report) == 0, report.getvalue()
    pipeline = pipeline_of(out)
    assert pipeline["metadata"]["name"] == path.stem
    assert pipeline["spec"]["activated"] is False  # review it, then activate it
    # every AWS object but the folded ones is an object of the manifest
    names = {o["name"] for section in catalog.SECTIONS for o in pipeline["spec"].get(section, [])}
    kept = [o["id"] for o in forms.normalise(load(path))["objects"] if o.get("type") not in
            ("Schedule", "EmrConfiguration", "Property", "ShellScriptConfig", "EbsConfiguration",
             "EbsBlockDeviceConfig", "VolumeSpecification", None) and o["id"] != "Default"]
    assert len(names) >= len(kept)


def test_the_real_commands_chain(tmp_path: Path) -> None:
    """import-aws | validate, as a user would run them (the console script's module, in subprocesses)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "datapipeline.cli.main"]
    outputs = []
    for path in FIXTURES[:2]:
        result = subprocess.run([*command, "import-aws", str(path)], capture_output=True, text=True, timeout=60,
                                env=env)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        target = tmp_path / f"{path.stem}.yaml"
        target.write_text(result.stdout)
        outputs.append(str(target))
    result = subprocess.run([*command, "validate", *outputs], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": valid") == 2


# ---------------------------------------------------------------------------------------------- what it says


def warnings_of(path: Path) -> list[str]:
    return convert(load(path), path.stem).warnings


def test_warnings_name_the_object_and_the_field() -> None:
    shell = warnings_of(ROOT / "tests" / "aws" / "getting-started-shell.json")
    assert 'object "Default": field "role": IAM roles do not apply; give credentials with spec.aws.credentialsSecret ' \
           "or a service account" in shell
    assert 'object "Default": field "resourceRole": IAM roles do not apply; use a compute profile\'s ' \
           "serviceAccountName" in shell
    assert 'object "Ec2Instance": Ec2Resource field "keyPair": SSH key pairs do not apply to pods' in shell
    rds = warnings_of(ROOT / "tests" / "aws" / "rds-mysql-full-copy-to-s3.json")
    assert 'object "rds_mysql": field "*password" was not copied (its value came from parameter myRDSPassword): ' \
           'put the password in Secret "rds-mysql-full-copy-to-s3-rds-mysql" key "password" (referenced as ' \
           "passwordSecret)" in rds
    emr = warnings_of(ROOT / "tests" / "aws" / "dynamodb-export-to-s3.json")
    assert 'object "EmrClusterForBackup": EmrCluster field "keyPair": SSH key pairs do not apply to pods' in emr
    assert 'object "EmrClusterForBackup": EmrCluster field "region": the region comes from spec.aws.region' in emr


def test_passwords_become_secret_references() -> None:
    result = convert(load(ROOT / "tests" / "aws" / "rds-mysql-to-redshift-full.json"), "warehouse")
    databases = {d["name"]: d for d in result.manifest["spec"]["databases"]}
    assert databases["SourceMySql"]["passwordSecret"] == {"name": "warehouse-sourcemysql", "key": "password"}
    assert databases["TargetRedshift"]["passwordSecret"] == {"name": "warehouse-targetredshift", "key": "password"}
    assert [s["metadata"]["name"] for s in result.secrets] == ["warehouse-sourcemysql", "warehouse-targetredshift"]
    assert all(s["stringData"] == {"password": "FILL-ME-IN"} for s in result.secrets)
    text = json.dumps(result.manifest)
    assert "*password" not in text and "myRDSPassword" not in text  # the masked parameter is gone with it
    # RDS has no endpoint in AWS's definition: a connection string to fill in, from what is known
    assert databases["SourceMySql"]["connectionString"] == \
        "jdbc:mysql://inventory-prod.REGION.rds.amazonaws.com:3306/inventory"


def test_a_legacy_mysql_node_gets_its_own_database() -> None:
    result = convert(load(ROOT / "tests" / "aws" / "rds-mysql-incremental-copy-to-s3.json"), "incremental")
    spec = result.manifest["spec"]
    node = next(n for n in spec["dataNodes"] if n["name"] == "SourceRDSTable")
    assert node["database"] == "SourceRDSTable-database" and "connectionString" not in node
    (database,) = spec["databases"]
    assert database["type"] == "JdbcDatabase" and database["username"] == "#{myRDSUsername}"
    assert database["connectionString"].startswith("jdbc:mysql://orders-db.")
    assert database["passwordSecret"]["key"] == "password"
    assert 'object "SourceRDSTable": its connection became the database "SourceRDSTable-database"' in result.warnings


def test_schedule_default_and_fields_are_mapped() -> None:
    spec = convert(load(ROOT / "tests" / "aws" / "getting-started-shell.json"), "gs").manifest["spec"]
    assert spec["scheduleType"] == "cron"
    assert spec["schedule"] == {"period": "15 minutes", "startAt": "FIRST_ACTIVATION_DATE_TIME", "occurrences": 4}
    assert spec["defaults"] == {"failureAndRerunMode": "cascade"}
    assert spec["pipelineLogUri"] == "s3://acme-datapipeline-logs/getting-started/"
    (activity,) = spec["activities"]
    assert activity == {"name": "CountGetRequests", "type": "ShellCommandActivity", "runsOn": "Ec2Instance",
                        "input": ["ApacheLogs"], "output": ["GetCounts"], "stage": True,
                        "command": "#{myShellCmd}", "maximumRetries": 1}
    assert spec["computeProfiles"] == [{"name": "Ec2Instance", "type": "ComputeProfile", "instanceType": "t3.micro",
                                        "terminateAfter": "50 Minutes"}]
    assert spec["values"] == {"myS3OutputLoc": "s3://acme-analytics/get-counts"}
    assert [p["id"] for p in spec["parameters"]] == ["myShellCmd", "myS3InputLoc", "myS3OutputLoc"]


def test_start_times_are_utc() -> None:
    spec = convert(load(ROOT / "tests" / "aws" / "emr-job.json"), "emr").manifest["spec"]
    assert spec["schedule"] == {"period": "1 hours", "startDateTime": "2026-02-01T00:00:00Z",
                                "endDateTime": "2026-12-31T23:00:00Z"}
    spec = convert(load(ROOT / "tests" / "aws" / "s3-to-redshift.json"), "rs").manifest["spec"]
    assert spec["schedule"]["startDateTime"] == "2026-06-01T00:00:00+00:00"


def test_ondemand_pipelines_have_no_schedule() -> None:
    spec = convert(load(ROOT / "tests" / "aws" / "run-aws-cli-command.json"), "cli").manifest["spec"]
    assert spec["scheduleType"] == "ondemand" and "schedule" not in spec


def test_emr_clusters_keep_their_configuration() -> None:
    spec = convert(load(ROOT / "tests" / "aws" / "dynamodb-export-to-s3.json"), "ddb").manifest["spec"]
    (cluster,) = spec["clusterProfiles"]
    assert cluster["executorInstances"] == 2 and cluster["releaseLabel"] == "emr-5.36.0"
    assert cluster["configuration"] == [
        {"classification": "core-site", "properties": {"io.file.buffer.size": "65536",
                                                       "fs.s3.block.size": "134217728"}},
        {"classification": "hadoop-env", "properties": {},
         "configurations": [{"classification": "export", "properties": {"YARN_PROXYSERVER_HEAPSIZE": "2396"}}]},
    ]


def test_parents_are_flattened() -> None:
    spec = convert(load(ROOT / "tests" / "aws" / "web-log-hive-pig.json"), "logs").manifest["spec"]
    frontend = next(n for n in spec["dataNodes"] if n["name"] == "FrontendLogs")
    assert frontend["type"] == "S3DataNode" and frontend["compression"] == "gzip"
    assert frontend["dataFormat"] == "ApacheAccessLog" and "parent" not in frontend
    assert frontend["directoryPath"].startswith("#{myLogBucket}/raw/frontend/")
    assert spec["defaults"]["vars"] == {"myLogBucket": "s3://acme-web-logs"}


def test_fixed_value_fields_take_the_parameter_value() -> None:
    result = convert(load(ROOT / "tests" / "aws" / "s3-to-redshift.json"), "rs")
    activity = next(a for a in result.manifest["spec"]["activities"] if a["name"] == "RedshiftLoadActivity")
    assert activity["insertMode"] == "OVERWRITE_EXISTING"
    assert any('field "insertMode" takes one of' in w and 'parameter "myInsertMode"' in w for w in result.warnings)


def test_values_file_and_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"values": {"myS3OutputLoc": "s3://elsewhere/out", "myUnknown": "x",
                                             "*myRDSPassword": "secret"}}))
    code, out, err = import_aws(capsys, ROOT / "tests" / "aws" / "getting-started-shell.json", "--values", values,
                                "--name", "Counts_Prod")
    assert code == 0
    pipeline = pipeline_of(out)
    assert pipeline["metadata"]["name"] == "counts-prod"
    assert pipeline["spec"]["values"]["myS3OutputLoc"] == "s3://elsewhere/out"
    assert 'object "myUnknown": has a value but no parameter object: it became a String parameter' in err
    assert {"id": "myUnknown"} in pipeline["spec"]["parameters"] and pipeline["spec"]["values"]["myUnknown"] == "x"
    assert 'object "*myRDSPassword": value not copied: secrets go in Secrets' in err
    assert "secret" not in out
    assert 'the Pipeline is named "counts-prod"' in err


def test_a_masked_parameter_still_used_comes_from_a_secret() -> None:
    definition = {"objects": [
        {"id": "Default", "scheduleType": "ondemand"},
        {"id": "Call", "type": "ShellCommandActivity", "command": "curl -H 'X-Token: #{*myToken}' https://api"}],
        "parameters": [{"id": "*myToken", "type": "String", "description": "API token"}]}
    result = convert(definition, "api")
    assert result.manifest["spec"]["parameters"] == [{"id": "*myToken", "type": "String", "description": "API token",
                                                      "valueFromSecret": {"name": "api-parameters", "key": "myToken"}}]
    assert any('masked parameter: its value is not copied; put it in Secret "api-parameters" key "myToken". Only a '
               "shell command can read it, as #{*myToken} (the variable $DATAPIPELINE_PARAM_MYTOKEN)" in w
               for w in result.warnings)
    assert [s["stringData"] for s in result.secrets] == [{"myToken": "FILL-ME-IN"}]
    parse_manifest(result.manifest)


# ---------------------------------------------------------------------------------------------- errors


def base_definition() -> dict[str, Any]:
    return load(ROOT / "tests" / "aws" / "getting-started-shell.json")


def error_of(definition: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    path = tmp_path / "definition.json"
    path.write_text(definition if isinstance(definition, str) else json.dumps(definition))
    code, out, err = import_aws(capsys, path)
    assert code == 1 and out == ""
    assert "Traceback" not in err and "internal error" not in err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_an_unknown_type_names_the_object(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    definition = base_definition()
    definition["objects"].append({"id": "NightlyReport", "type": "ShellCommandActivty", "command": "x"})
    err = error_of(definition, capsys, tmp_path)
    assert 'object "NightlyReport" has type "ShellCommandActivty", which kube-datapipeline does not know; ' \
           'did you mean "ShellCommandActivity"?' in err


def test_each_object_keeps_its_own_schedule(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """#11: "Any activity, data node or resource may name its own schedule"; import-aws keeps each AWS object's
    own schedule (the Default's is spec.schedule; the others go to spec.schedules by name), and a resource's
    schedule is dropped with a warning (each attempt has its own pod)."""
    definition = base_definition()
    definition["objects"].append({"id": "Hourly_Report", "type": "Schedule", "period": "1 hour",
                                  "startAt": "FIRST_ACTIVATION_DATE_TIME"})
    counted = next(o for o in definition["objects"] if o["id"] == "CountGetRequests")
    counted["schedule"] = {"ref": "Hourly_Report"}
    resource = next(o for o in definition["objects"] if o.get("type") == "Ec2Resource")
    resource["schedule"] = {"ref": "Hourly_Report"}
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    code, out, err = import_aws(capsys, path)
    assert code == 0, err
    spec = pipeline_of(out)["spec"]
    assert spec["schedule"]["period"] == "15 minutes"
    assert spec["schedules"] == {"hourly-report": {"period": "1 hour", "startAt": "FIRST_ACTIVATION_DATE_TIME"}}
    (activity,) = [a for a in spec["activities"] if a["name"] == "CountGetRequests"]
    assert activity["schedule"] == "hourly-report"
    assert all("schedule" not in p for p in spec.get("computeProfiles", ()))
    assert f'object "{resource["id"]}": schedule "hourly-report" dropped: each attempt gets its own pod' in err
    parse_manifest(pipeline_of(out))


def test_invalid_json_names_line_and_column(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = (ROOT / "tests" / "aws" / "getting-started-shell.json").read_text()
    broken = text.replace('"type": "Schedule",', '"type": "Schedule"', 1)  # a missing comma
    err = error_of(broken, capsys, tmp_path)
    line = broken[:broken.index('"type": "Schedule"')].count("\n") + 2
    assert f"the definition: not valid JSON: line {line}, column 7: a comma is missing between two items " \
           "(expected ',').\n" in err


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(objects={}), 'not an AWS Data Pipeline definition: expected a JSON object with an "objects" '
                                     "list"),
    (lambda d: d["objects"].append({"type": "CSV"}), "objects[6]: every object needs an id (a string)"),
    (lambda d: d["objects"].append({"id": "Ec2Instance", "type": "CSV"}),
     'objects[6]: the id "Ec2Instance" is used twice'),
    (lambda d: d["objects"].append({"id": "Loose", "type": ["a", "b"]}),
     'object "Loose": field "type" must be a type name (a string), not a list'),
    (lambda d: d["objects"][5].update(input={"ref": "ApacheLog"}),
     'object "CountGetRequests": field "input" refers to "ApacheLog", which is not defined; did you mean '
     '"ApacheLogs"?'),
    (lambda d: d["objects"][5].update(runsOn="Ec2Instance"),
     'object "CountGetRequests": field "runsOn" must be a reference {"ref": "id"}, not "Ec2Instance"'),
    (lambda d: d["objects"][5].update(maximumRetries="two"),
     'object "CountGetRequests": field "maximumRetries" must be a whole number, not "two"'),
    (lambda d: d["objects"][5].update(stage="yes"), 'object "CountGetRequests": field "stage" must be "true" or '
                                                    '"false", not "yes"'),
    (lambda d: d["objects"][5].update(command={"a": "b"}),
     'object "CountGetRequests": field "command" must be a string, not an object'),
    (lambda d: d["objects"][1].update(occurrences="four"),
     'object "Every15Minutes": field "occurrences" must be a whole number, not "four"'),
    (lambda d: d["objects"][0].update(scheduleType="weekly"),
     'object "Default": scheduleType "weekly" is not cron, timeseries or ondemand'),
    (lambda d: d["objects"][0].update(schedule={"ref": "Ec2Instance"}),
     'object "Default": field "schedule" refers to "Ec2Instance", which is not a Schedule object'),
    (lambda d: d["objects"].pop(1) and d["objects"][0].pop("schedule"), 'object "Default": no Schedule found'),
    (lambda d: d["objects"][3].update(parent={"ref": "GetCounts"}) or d["objects"][4].update(
        parent={"ref": "ApacheLogs"}), 'parent "ApacheLogs" forms a cycle'),
    (lambda d: d["objects"][3].update(parent={"ref": "Nope"}), 'object "ApacheLogs": parent "Nope" does not exist'),
    (lambda d: d.update(parameters={"id": "myX"}), '"parameters" must be a JSON list of parameter objects'),
    (lambda d: d.update(parameters=5), '"parameters" must be a JSON list of parameter objects'),
    (lambda d: d.update(values=["a"]), '"values" must be a JSON object mapping parameter ids to values'),
    (lambda d: d["parameters"].append("myX"), "parameters[3]: every parameter needs an id (a string)"),
    (lambda d: d["objects"][5].update(runsOn=[]),
     'object "CountGetRequests": field "runsOn" must be a reference {"ref": "id"}, not an empty list'),
])
def test_conversion_errors(change: Any, expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    definition = base_definition()
    change(definition)
    assert expected in error_of(definition, capsys, tmp_path)


def test_file_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = import_aws(capsys, tmp_path / "missing.json")
    assert code == 1 and "cannot read the definition" in err
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00{")
    code, _, err = import_aws(capsys, binary)
    assert code == 1 and "is not UTF-8 text" in err
    values = tmp_path / "values.json"
    values.write_text('["a"]')
    code, _, err = import_aws(capsys, ROOT / "tests" / "aws" / "getting-started-shell.json", "--values", values)
    assert code == 1 and "the values file must be a JSON object" in err


# ---------------------------------------------------------------------------------------------- robustness

aws_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=6)
    | st.sampled_from(["true", "1 day", "#{x}", "Default", "Ec2Instance", "ApacheLogs", "Schedule", "CSV"])
    | st.fixed_dictionaries({"ref": st.sampled_from(["Ec2Instance", "ApacheLogs", "Every15Minutes", "Nope"])}),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 5), st.sampled_from(["id", "type", "parent", "schedule", "runsOn", "input", "command",
                                           "stage", "period", "occurrences", "*password", "myVar", "configuration",
                                           "property", "dataFormat", "scheduleType", "startDateTime"]), aws_junk)
def test_junk_in_any_field_is_an_import_error_never_a_crash(index: int, key: str, value: Any) -> None:
    definition = copy.deepcopy(base_definition())
    definition["objects"][index][key] = value
    try:
        result = convert(definition, "fuzz")
    except ImportError_ as error:
        assert str(error)
        return
    yaml.safe_dump(result.manifest)  # whatever comes out can be printed
