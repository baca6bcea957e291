"""The EMR family's pure parts (docs/spark.md): steps as launch plans, a ClusterProfile as Spark settings,
a Hive script's variables and statements, and what validation and resolution say about them."""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.emrsteps import (
    Command,
    JarMain,
    Script,
    SparkSubmit,
    StepError,
    describe,
    hadoop_jar,
    parse_step,
    split_step,
)
from datapipeline.core.hivescript import ScriptError, script_variables, split_statements, substitute
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import ResolveError, RunContext, resolve_command
from datapipeline.core.sparkconf import (
    SparkConfError,
    heap_mib,
    quantity,
    s3a_properties,
    spark_settings,
    table_options,
    table_schema,
)
from datapipeline.core.task import AwsSpec, DataFormatSpec, TaskSpec

# ---------------------------------------------------------------------------------------------- steps


@pytest.mark.parametrize(("text", "expected"), [
    ("s3://example-bucket/MyWork.jar,arg1,arg2,arg3", ["s3://example-bucket/MyWork.jar", "arg1", "arg2", "arg3"]),
    # The Developer Guide's script-runner example: "a\\\\,b\\\\,c" in JSON is one argument a,b,c.
    ("script-runner.jar,s3://datapipeline/echo.sh,a\\\\,b\\\\,c", ["script-runner.jar", "s3://datapipeline/echo.sh",
                                                                "a,b,c"]),
    # "File\\\\\\\\.gz" in JSON keeps one backslash; "File\\\\.gz" loses it (the first escape is discarded).
    ("x.jar,File\\\\\\\\.gz", ["x.jar", "File\\.gz"]),
    ("x.jar,File\\\\.gz", ["x.jar", "File.gz"]),
    ("x.jar,a\\,b", ["x.jar", "a", "b"]),  # one backslash is gone after round one: the comma splits
    ("x.jar,,", ["x.jar", "", ""]),  # empty arguments are arguments
    ("x.jar, spaced ", ["x.jar", " spaced "]),  # arguments are taken as written
])
def test_split_step_follows_the_guides_escapes(text: str, expected: list[str]) -> None:
    assert split_step(text) == expected


def test_spark_submit_step_drops_what_the_profile_decides() -> None:
    plan = parse_step("command-runner.jar,spark-submit,--deploy-mode,cluster,--master=yarn,--conf,"
                      "spark.sql.shuffle.partitions=4,-c,spark.master=yarn,--py-files,s3://b/lib.zip,--verbose,"
                      "s3://acme-jobs/export.py,2026-11-21,--flag-of-the-app")
    assert plan == SparkSubmit(
        "s3://acme-jobs/export.py", ("2026-11-21", "--flag-of-the-app"),
        (("--conf", "spark.sql.shuffle.partitions=4"), ("--py-files", "s3://b/lib.zip"), ("--verbose", None)),
        ("--deploy-mode cluster", "--master yarn", "--conf spark.master=yarn"))
    assert plan.main_class is None
    assert describe(plan) == "spark-submit s3://acme-jobs/export.py"


def test_spark_submit_of_a_jar_with_its_class() -> None:
    plan = parse_step("/usr/lib/command-runner.jar,spark-submit,--class,org.example.Pi,s3://b/pi.jar,10")
    assert isinstance(plan, SparkSubmit)
    assert (plan.application, plan.main_class, plan.arguments) == ("s3://b/pi.jar", "org.example.Pi", ("10",))
    assert describe(plan) == "spark-submit s3://b/pi.jar --class org.example.Pi"


@pytest.mark.parametrize(("text", "expected"), [
    ("s3://b/wc.jar,in,out", JarMain("s3://b/wc.jar", None, ("in", "out"))),
    ("s3://eu-west-1.elasticmapreduce/libs/script-runner/script-runner.jar,s3://b/x.sh,1",
     Script("s3://b/x.sh", ("1",))),
    ("command-runner.jar,aws,s3,ls,s3://b/", Command(("aws", "s3", "ls", "s3://b/"))),
])
def test_the_jar_decides_the_plan(text: str, expected: object) -> None:
    assert parse_step(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "the step is empty; write the jar followed by its arguments, comma separated"),
    ("/opt/spark/bin/spark-submit,--class,X,app.jar",
     "the step starts with '/opt/spark/bin/spark-submit', which is not a jar; write "
     "'command-runner.jar,spark-submit,...' to run a command"),
    ("command-runner.jar", "command-runner.jar needs a command as its first argument, e.g. "
                           "'command-runner.jar,spark-submit,app.py'"),
    ("command-runner.jar,hadoop-streaming,-mapper,m.py", "command-runner.jar,hadoop-streaming is one of EMR's "
     "cluster tools, not available here: Hadoop streaming needs YARN or a Hadoop installation; write the job as a "
     "Spark application"),
    ("command-runner.jar,hdfs,dfs,-rm,-r,/staging", "command-runner.jar,hdfs is one of EMR's cluster tools, not "
     "available here: there is no HDFS: read and write s3:// paths"),
    ("command-runner.jar,spark-submit,--class,X", "spark-submit needs an application (a .py file, or a jar with "
                                                  "--class) after its options"),
    ("command-runner.jar,spark-submit,--conf", "spark-submit option --conf needs a value"),
    ("command-runner.jar,spark-submit,--clas,X,app.jar", "spark-submit option '--clas' is not one spark-submit "
                                                          "knows"),
    ("script-runner.jar", "script-runner.jar needs the script to run as its first argument"),
])
def test_bad_steps_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(StepError) as error:
        parse_step(text)
    assert str(error.value) == message


def test_hadoop_jar_keeps_each_argument_whole() -> None:
    assert hadoop_jar(" s3://b/wc.jar ", "", ["a,b", "c"]) == JarMain("s3://b/wc.jar", None, ("a,b", "c"))
    assert hadoop_jar("wc.jar", "org.example.WordCount", []).main_class == "org.example.WordCount"
    with pytest.raises(StepError, match="jarUri is empty"):
        hadoop_jar(" ", None, [])


# ---------------------------------------------------------------------------------------------- profiles

MINIO = AwsSpec(region="eu-west-1", s3_endpoint_url="http://127.0.0.1:9000", s3_path_style=True)


@pytest.mark.parametrize(("text", "value"), [("500m", 0.5), ("2", 2), ("1Gi", 2**30), ("1G", 1e9), ("1.5Ki", 1536),
                                             ("1e3", 1000)])
def test_quantities(text: str, value: float) -> None:
    assert quantity(text, "x") == pytest.approx(value)


def test_heap_leaves_room_for_the_rest_of_the_pod() -> None:
    assert heap_mib("1Gi", 0.25, "w") == 1024 - 384
    assert heap_mib("4Gi", 0.25, "w") == 4096 - 1024
    with pytest.raises(SparkConfError, match=r"^w: 400Mi leaves no room for a JVM heap of at least 128 MiB"):
        heap_mib("400Mi", 0.25, "w")


def test_a_local_profile() -> None:
    settings = spark_settings({"image": "apache/spark:3.5.1", "driverCpu": "1500m", "driverMemory": "2Gi"}, MINIO)
    assert settings.master == "local[2]"
    assert settings.conf == {"spark.driver.memory": "1536m"}
    assert settings.driver_heap_mib == 1536
    assert settings.warnings == ()
    assert spark_settings({}, AwsSpec()).master == "local[*]"


def test_executors_mean_something_only_in_kubernetes_mode() -> None:
    profile = {"image": "registry.example/spark:1", "executorInstances": 3, "executorCpu": "1500m",
               "executorMemory": "2Gi", "serviceAccountName": "spark", "nodeSelector": {"pool": "big"}}
    local = spark_settings(profile, MINIO, "clusterProfiles[0]")
    assert local.master == "local[*]"
    assert local.warnings == ("clusterProfiles[0]: executorInstances, executorCpu and executorMemory apply in mode "
                              "kubernetes; in mode local Spark runs in the driver's pod (size it with driverCpu and "
                              "driverMemory)",)
    k8s = spark_settings({**profile, "mode": "kubernetes"}, MINIO)
    assert k8s.master == "k8s://https://kubernetes.default.svc"
    assert k8s.conf == {
        "spark.submit.deployMode": "client", "spark.kubernetes.container.image": "registry.example/spark:1",
        "spark.executor.instances": "3", "spark.executor.cores": "2",
        "spark.kubernetes.executor.request.cores": "1500m", "spark.executor.memory": "1664m",
        "spark.executor.memoryOverhead": "384m",
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        "spark.kubernetes.node.selector.pool": "big",
    }
    with pytest.raises(SparkConfError, match=r"cluster profile\.mode: 'yarn' is not local or kubernetes"):
        spark_settings({"mode": "yarn"}, MINIO)


def test_emr_configurations_by_classification() -> None:
    configuration: list[dict[str, Any]] = [
        {"classification": "spark-defaults", "properties": {"spark.sql.shuffle.partitions": "8",
                                                            "spark.master": "yarn"}},
        {"classification": "core-site", "properties": {"io.file.buffer.size": "65536"}},
        {"classification": "hive-site", "properties": {"hive.exec.dynamic.partition": "true"}},
        {"classification": "spark-env", "properties": {},
         "configurations": [{"classification": "export", "properties": {"PYSPARK_PYTHON": "python3"}},
                            {"classification": "other"}]},
        {"classification": "spark", "properties": {"maximizeResourceAllocation": "true"}},
        {"classification": "yarn-site", "properties": {"a": "1"}, "configurations": [{"classification": "x"}]},
    ]
    settings = spark_settings({"configuration": configuration}, MINIO, "p")
    assert settings.conf == {"spark.sql.shuffle.partitions": "8"}
    assert settings.hadoop == {**s3a_properties(MINIO), "io.file.buffer.size": "65536",
                               "hive.exec.dynamic.partition": "true", "a": "1"}
    assert settings.env == {"PYSPARK_PYTHON": "python3"}
    assert settings.warnings == (
        "p.configuration[0]: spark.master ignored: the cluster profile's mode decides where Spark runs",
        "p.configuration[3].configurations[1]: classification 'other' under spark-env ignored (only export is)",
        "p.configuration[4]: classification 'spark' has no meaning here and is ignored (spark-defaults, the Hadoop "
        "*-site files, spark-env and hadoop-env are applied)",
        "p.configuration[5]: nested configurations are applied only under spark-env and hadoop-env",
    )


@pytest.mark.parametrize(("configuration", "message"), [
    ("core-site", "p.configuration: must be a list of {classification, properties} objects"),
    ([{"properties": {}}], r"p.configuration\[0\]: must be an object with a classification"),
    ([{"classification": "core-site", "properties": ["a"]}], r"p.configuration\[0\].properties: must map keys"),
])
def test_malformed_configurations(configuration: Any, message: str) -> None:
    with pytest.raises(SparkConfError, match=message):
        spark_settings({"configuration": configuration}, MINIO, "p")


def test_s3a_serves_emrfs_paths_at_the_pipelines_endpoint() -> None:
    props = s3a_properties(MINIO)
    assert props["fs.s3.impl"] == props["fs.s3a.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert props["fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert props["fs.s3a.connection.ssl.enabled"] == "false"
    assert props["fs.s3a.path.style.access"] == "true"
    assert props["fs.s3a.endpoint.region"] == "eu-west-1"
    assert props["mapreduce.framework.name"] == "local"
    assert "fs.s3a.endpoint" not in s3a_properties(AwsSpec())


# ---------------------------------------------------------------------------------------------- Hive scripts


def test_script_variables() -> None:
    assert script_variables(["SAMPLE=s3://b/x", "FILTER_DATE=2026-11-21", "a.b=x=y", "SAMPLE=2"]) == {
        "SAMPLE": "2", "FILTER_DATE": "2026-11-21", "a.b": "x=y"}
    with pytest.raises(ScriptError, match=r"scriptVariable\[1\] 'no equals' is not NAME=VALUE"):
        script_variables(["a=1", "no equals"])
    with pytest.raises(ScriptError, match=r"scriptVariable\[0\] '1x=2'"):
        script_variables(["1x=2"])


def test_substitution_is_hives() -> None:
    script = "INSERT OVERWRITE TABLE ${output1} SELECT * FROM ${input1} WHERE d = '${hivevar:day}' AND x=${unknown}"
    variables = {"output1": "output1", "input1": "input1", "day": "${input1}"}
    assert substitute(script, variables) == ("INSERT OVERWRITE TABLE output1 SELECT * FROM input1 WHERE "
                                             "d = '${input1}' AND x=${unknown}")


def test_statements_split_outside_quotes_and_comments() -> None:
    script = """-- a comment; with a semicolon
SET spark.sql.shuffle.partitions=2;
SELECT 'a;b', "c;d", `e;f` FROM t; /* block; comment */ SELECT 'it\\'s;' ;
   ;
SELECT 1 -- trailing; comment
"""
    assert split_statements(script) == [
        "SET spark.sql.shuffle.partitions=2",
        "SELECT 'a;b', \"c;d\", `e;f` FROM t",
        "SELECT 'it\\'s;'",
        "SELECT 1",
    ]
    with pytest.raises(ScriptError, match=re.escape("the script ends inside a '...' quotation")):
        split_statements("SELECT 'unterminated; x")


# ---------------------------------------------------------------------------------------------- validation, resolution

START = datetime(2026, 11, 21, tzinfo=UTC)


def pipeline(activity: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"scheduleType": "ondemand", "clusterProfiles": [{"name": "spark", "image": "apache/spark:3.5.1",
                                                             "driverMemory": "2Gi"}],
            "activities": [{"name": "a", "runsOn": "spark", **activity}], **spec}


def problems(spec: dict[str, Any]) -> list[str]:
    try:
        parse_pipeline(spec)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


def test_pig_is_rejected_naming_the_field_and_pointing_to_hive() -> None:
    assert problems(pipeline({"type": "PigActivity", "scriptUri": "s3://b/x.pig"})) == [
        "spec.activities[0].scriptUri: PigActivity is not supported: Apache Pig has no runtime for Spark or Hadoop 3 "
        "here; write the script as a HiveActivity (Spark SQL: the input is the table ${input1}, GROUP and FOREACH "
        "become SELECT ... GROUP BY, STORE becomes INSERT OVERWRITE TABLE ${output1})"]


def test_a_step_that_cannot_run_here_fails_validation() -> None:
    steps = ["command-runner.jar,spark-submit,s3://b/app.py", "command-runner.jar,hdfs,dfs,-ls,/",
             "#{myJar},arg", "command-runner.jar,#{myTool},x"]  # expressions: checked when they run
    spec = pipeline({"type": "EmrActivity", "step": steps},
                    parameters=[{"id": "myJar", "default": "s3://b/x.jar"}, {"id": "myTool", "default": "hdfs"}])
    assert problems(spec) == ["spec.activities[0].step[1]: command-runner.jar,hdfs is one of EMR's cluster tools, "
                              "not available here: there is no HDFS: read and write s3:// paths"]


def test_kubernetes_mode_names_what_it_needs() -> None:
    spec = pipeline({"type": "EmrActivity", "step": ["command-runner.jar,spark-submit,app.py"]})
    spec["clusterProfiles"][0]["mode"] = "kubernetes"
    assert problems(spec) == [
        "spec.clusterProfiles[0].serviceAccountName: mode kubernetes needs a service account: the Spark driver in the "
        "activity's pod creates the executor pods with its token (the chart's sparkDriver.serviceAccount.create "
        "makes kdp-spark-driver, with exactly those rights; docs/spark.md)",
        "spec.clusterProfiles[0].executorInstances: mode kubernetes needs executorInstances: how many executor pods "
        "the driver starts (AWS coreInstanceCount), at least 1"]
    spec["clusterProfiles"][0].update(serviceAccountName="kdp-spark-driver", executorInstances=0)
    assert problems(spec) == ["spec.clusterProfiles[0].executorInstances: must be at least 1 in mode kubernetes, "
                              "not 0"]
    spec["clusterProfiles"][0].update(executorInstances=2, executorMemory="768Mi")
    assert problems(spec) == ["spec.clusterProfiles[0].executorMemory: 768Mi leaves no room for a JVM heap of at "
                              "least 450 MiB besides the 384 MiB overhead; give at least 834Mi"]
    spec["clusterProfiles"][0]["executorMemory"] = "1Gi"
    assert problems(spec) == []


def resolved(spec: dict[str, Any], values: dict[str, Any] | None = None) -> TaskSpec:
    run = RunContext("p", "p-1", START, START, overrides=values or {})
    return resolve_command(parse_pipeline(spec), run, "activity", "a", "a", 1).task


def test_the_task_carries_the_cluster_profile_as_written() -> None:
    configuration = [{"classification": "spark-defaults", "properties": {"spark.x": "#{not evaluated}"}}]
    spec = pipeline({"type": "EmrActivity", "step": ["command-runner.jar,spark-submit,app.py"]})
    spec["clusterProfiles"][0].update(configuration=configuration, terminateAfter="2 hours")
    task = resolved(spec)
    assert task.cluster == {"image": "apache/spark:3.5.1", "driverMemory": "2Gi", "configuration": configuration,
                            "terminateAfter": 7200}
    assert TaskSpec.from_json(task.to_json()) == task
    compute = {**spec, "computeProfiles": [{"name": "pod"}]}
    compute["activities"] = [{"name": "a", "type": "ShellCommandActivity", "command": "true", "runsOn": "pod"}]
    assert resolved(compute).cluster == {}


def test_a_run_supplied_script_variable_must_be_limited() -> None:
    """scriptVariable is pasted into SQL as text (Hive's ${name}): a control field."""
    hive = {"type": "HiveActivity", "hiveScript": "SELECT '${day}'", "scriptVariable": ["day=#{myDay}"]}
    loose = pipeline(hive, parameters=[{"id": "myDay", "default": "2026-11-21", "overridable": True}])
    with pytest.raises(ResolveError, match='parameter "myDay" is set by the run and would decide what runs'):
        resolved(loose, {"myDay": "x' OR '1'='1"})
    limited = pipeline(hive, parameters=[{"id": "myDay", "default": "2026-11-21", "overridable": True,
                                          "pattern": r"\d{4}-\d{2}-\d{2}"}])
    assert resolved(limited, {"myDay": "2026-11-22"}).fields["scriptVariable"] == ["day=2026-11-22"]


# ---------------------------------------------------------------------------------------------- data formats as tables


def fmt(type_: str, **fields: Any) -> DataFormatSpec:
    return DataFormatSpec(type_, fields)


def test_table_options_keep_the_projects_null_conventions() -> None:
    assert table_options(None, False, "w") == {"sep": ",", "quote": '"', "escape": '"', "header": "false",
                                               "nullValue": ""}
    assert table_options(fmt("CSV", headerRow="true", escapeChar="\\\\"), True, "w") == {
        "sep": ",", "quote": '"', "escape": "\\", "nullValue": "", "header": "true", "compression": "gzip"}
    assert table_options(fmt("TSV"), False, "w") == {"sep": "\t", "quote": "", "escape": "\\", "nullValue": "\\N",
                                                     "header": "false"}
    assert table_options(fmt("Custom", columnSeparator="|", recordSeparator="\\u0001"), False, "w") == {
        "sep": "|", "quote": "", "nullValue": "", "lineSep": "\x01", "header": "false"}


@pytest.mark.parametrize(("data_format", "message"), [
    (fmt("RegEx", inputRegEx="(.*)"), "w: data format RegEx cannot be a Hive table here (CSV, TSV, Custom can)"),
    (fmt("Custom"), "w: data format Custom needs columnSeparator"),
    (fmt("TSV", recordSeparator="\r\n"), "w: recordSeparator '\\r\\n' must be one character in a Hive table"),
    (fmt("CSV", escapeChar="ab"), "w: escapeChar must be one character, not 'ab'"),
])
def test_formats_a_table_cannot_have(data_format: DataFormatSpec, message: str) -> None:
    with pytest.raises(SparkConfError) as error:
        table_options(data_format, False, "w")
    assert str(error.value) == message


def test_table_schema_from_hive_columns() -> None:
    assert table_schema(fmt("CSV", column=["host STRING", "status INT", "odd`name", "price DECIMAL(10, 2)"])) == \
        "`host` STRING, `status` INT, `odd``name` STRING, `price` DECIMAL(10, 2)"
    assert table_schema(fmt("CSV", column="one")) == "`one` STRING"
    assert table_schema(fmt("CSV")) is None
    assert table_schema(None) is None


# ---------------------------------------------------------------------------------------------- a jar's main class


def jar_with(tmp_path: Path, manifest: str | None) -> str:
    path = tmp_path / "step.jar"
    with zipfile.ZipFile(path, "w") as jar:
        if manifest is not None:
            jar.writestr("META-INF/MANIFEST.MF", manifest)
        jar.writestr("org/example/Main.class", b"")
    return str(path)


def test_a_jars_main_class_is_found_as_hadoop_jar_finds_it(tmp_path: Path) -> None:
    from datapipeline.runner.errors import InvalidTask, TaskError
    from datapipeline.runner.spark import main_class, manifest_main_class

    long_name = "org.apache.hadoop.examples." + "X" * 60  # continued on the next line, as manifests wrap at 72
    wrapped = f"Manifest-Version: 1.0\r\nMain-Class: {long_name[:50]}\r\n {long_name[50:]}\r\n"
    assert manifest_main_class(jar_with(tmp_path, wrapped), "w") == long_name
    assert manifest_main_class(jar_with(tmp_path, "Manifest-Version: 1.0\n"), "w") is None
    assert manifest_main_class(jar_with(tmp_path, None), "w") is None
    (tmp_path / "not.jar").write_text("text")
    with pytest.raises(TaskError, match=r"^w: not.jar is not a jar \(File is not a zip file\)$"):
        manifest_main_class(str(tmp_path / "not.jar"), "w")
    plan = JarMain("x.jar", None, ("org.x.Export", "s3://b/out"))
    assert main_class(JarMain("x.jar", "org.x.Given", ("a",)), None, "w") == ("org.x.Given", ("a",))
    assert main_class(plan, "org.x.FromManifest", "w") == ("org.x.FromManifest", ("org.x.Export", "s3://b/out"))
    assert main_class(plan, None, "w") == ("org.x.Export", ("s3://b/out",))
    with pytest.raises(InvalidTask, match="the jar's manifest names no Main-Class and no main class is given"):
        main_class(JarMain("x.jar"), None, "w")


@pytest.mark.parametrize(("statements", "hive"), [
    (["INSERT OVERWRITE TABLE output1 SELECT region, count(*) FROM input1 GROUP BY region"], False),
    (["CREATE TABLE t USING csv LOCATION 's3://b/t/' AS SELECT 1", "SET spark.sql.shuffle.partitions=2"], False),
    (["CREATE TEMPORARY VIEW v AS SELECT 1"], False),
    (["CREATE EXTERNAL TABLE raw (a INT) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://b/r/'"], True),
    (["create table t (a int)"], True),  # no USING: a Hive table in Spark 3
    (["CREATE TABLE t (a INT) STORED AS PARQUET"], True),
    (["LOAD DATA INPATH 's3://b/x' INTO TABLE t"], True),
    (["CREATE TEMPORARY FUNCTION f AS 'com.example.Udf'"], True),
])
def test_hive_support_only_for_statements_that_need_it(statements: list[str], hive: bool) -> None:
    from datapipeline.core.hivescript import needs_hive_support

    assert needs_hive_support(statements) is hive


@pytest.mark.parametrize(("statements", "tables"), [
    (["INSERT OVERWRITE TABLE output1 SELECT region, count(*) FROM input1 GROUP BY region"], {"output1"}),
    (["insert overwrite output1 select 1"], {"output1"}),  # Spark's form, without TABLE
    (["INSERT INTO TABLE output1 SELECT 1"], set()),
    (["INSERT INTO output1 SELECT 'INSERT OVERWRITE TABLE output2'"], set()),  # text in quotes
    (["FROM input1 INSERT OVERWRITE TABLE `output1` SELECT a INSERT INTO TABLE output2 SELECT b"], {"output1"}),
    (["CREATE TABLE t AS SELECT 1", "INSERT OVERWRITE TABLE Output2 SELECT * FROM t"], {"output2"}),
])
def test_the_tables_a_script_overwrites(statements: list[str], tables: set[str]) -> None:
    from datapipeline.core.hivescript import overwritten_tables

    assert overwritten_tables(statements) == tables
