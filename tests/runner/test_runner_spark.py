"""The EMR family on Spark (docs/spark.md), run by the runner as a Job runs it, against MinIO: real Spark in
local mode, the real S3A connector, no mocks. One Spark JVM at a time; small data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fixtures.servers import MotoServer, S3Server, SqlServer
from runner_helpers import Run, Runner, assert_failed, s3_aws, s3_node, task

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]
PROFILE = {"image": "apache/spark:3.5.1", "driverCpu": "2", "driverMemory": "1536Mi"}

WORDS_APP = """
import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("words").getOrCreate()
words = spark.read.text(sys.argv[1]).selectExpr("explode(split(value, ' ')) AS word").where("word != ''")
words.groupBy("word").count().orderBy("word").coalesce(1).write.mode("overwrite").csv(sys.argv[2])
print("counted", words.count(), "words")
"""


def put(minio: S3Server, bucket: str, key: str, body: str | bytes) -> None:
    minio.client().put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)


def read_dir(minio: S3Server, bucket: str, prefix: str) -> str:
    """The data files under a prefix, concatenated in name order (Hadoop's _SUCCESS and hidden files left out)."""
    s3 = minio.client()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                  if not o["Key"].rsplit("/", 1)[-1].startswith(("_", ".")))
    return "".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys)


def spark_task(minio: S3Server, type_: str, fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return task("activity", type_, {"runsOn": "spark", **fields}, aws=s3_aws(minio), cluster=dict(PROFILE), **extra)


def run_spark(runner: Runner, minio: S3Server, spec: dict[str, Any]) -> Run:
    return runner(spec, minio.env(), timeout=300)


@pytest.fixture(scope="session")
def spark_cache() -> Path:
    """The S3A connector and the MapReduce examples, fetched once (a no-op when `make deps` did it)."""
    out = subprocess.run(["bash", str(ROOT / "tests" / "setup-spark.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip())


# ---------------------------------------------------------------------------------------------- EmrActivity


def test_emr_spark_submit_step_reads_and_writes_s3_paths(runner: Runner, minio: S3Server, bucket: str,
                                                        spark_cache: Path) -> None:
    put(minio, bucket, "jobs/words.py", WORDS_APP)
    put(minio, bucket, "in/a.txt", "b a c\na b\n")
    put(minio, bucket, "in/b.txt", "a\n")
    step = (f"command-runner.jar,spark-submit,--deploy-mode,cluster,--conf,spark.sql.shuffle.partitions=2,"
            f"s3://{bucket}/jobs/words.py,s3://{bucket}/in/,s3://{bucket}/out/")
    run = run_spark(runner, minio, spark_task(minio, "EmrActivity", {
        "step": [step], "preStepCommand": ["echo before the steps"], "postStepCommand": ["echo after the steps"]}))
    assert run.code == 0, run.output
    assert read_dir(minio, bucket, "out/") == "a,3\nb,2\nc,1\n"
    out = run.stdout
    assert out.index("before the steps") < out.index("counted 6 words") < out.index("after the steps")
    assert "step 1: --deploy-mode cluster ignored: the cluster profile decides where Spark runs" in out


# ---------------------------------------------------------------------------------------------- HiveActivity

ACCESS_LOG = "host,status,bytes\na.example,200,100\nb.example,404,7\na.example,200,50\nc.example,500,\nb.example,200,1\n"


def log_nodes(bucket: str) -> dict[str, Any]:
    fmt_in = {"type": "CSV", "fields": {"column": ["host STRING", "status INT", "bytes BIGINT"], "headerRow": "true"}}
    fmt_out = {"type": "CSV", "fields": {"column": ["status INT", "hits BIGINT", "bytes BIGINT"]}}
    return {"inputs": [{"name": "AccessLog", "type": "S3DataNode", "data_format": fmt_in,
                        "fields": {"directoryPath": f"s3://{bucket}/logs/"}}],
            "outputs": [{"name": "StatusReport", "type": "S3DataNode", "data_format": fmt_out,
                         "fields": {"directoryPath": f"s3://{bucket}/report/"}}]}


def test_hive_aggregates_a_csv_into_a_new_csv(runner: Runner, minio: S3Server, bucket: str,
                                              spark_cache: Path) -> None:
    put(minio, bucket, "logs/day1.csv", ACCESS_LOG)
    put(minio, bucket, "logs/_SUCCESS", "")
    put(minio, bucket, "report/stale.csv", "999,9,9\n")  # INSERT OVERWRITE replaces what was there
    put(minio, bucket, "raw/hits.csv", "a.example,200,10\nb.example,404,\na.example,200,5\n")
    script = """-- hits and bytes per status; the ; in this comment is not a statement's end
SET spark.sql.shuffle.partitions=2;
INSERT OVERWRITE TABLE ${output1}
SELECT status, count(*) AS hits, sum(bytes) FROM ${input1} WHERE status >= ${minStatus} GROUP BY status;
SELECT count(*) AS statuses FROM ${output1};
-- Hive's own DDL, as scripts written for EMR hold it
CREATE EXTERNAL TABLE raw_hits (host STRING, status INT, bytes BIGINT)
ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://${bucket}/raw/';
SELECT host, sum(bytes) FROM raw_hits GROUP BY host ORDER BY host
"""
    run = run_spark(runner, minio, spark_task(minio, "HiveActivity", {
        "hiveScript": script, "scriptVariable": ["minStatus=300", f"bucket={bucket}"]}, **log_nodes(bucket)))
    assert run.code == 0, run.output
    assert sorted(read_dir(minio, bucket, "report/").splitlines()) == ["404,1,7", "500,1,"]
    assert "statement 3 of 5: SELECT count(*) AS statuses FROM output1" in run.stdout
    assert "INFO shell: stdout: 2\n" in run.stdout  # the query's row, as Hive's CLI prints it
    assert "INFO shell: stdout: a.example\t15\n" in run.stdout and "stdout: b.example\tNULL\n" in run.stdout
    assert run.result.output_uris and all(u.startswith(f"s3://{bucket}/report/part-") for u in run.result.output_uris)


# ---------------------------------------------------------------------------------------------- HadoopActivity


def test_hadoop_word_count_from_the_examples_jar(runner: Runner, minio: S3Server, bucket: str,
                                                 spark_cache: Path) -> None:
    (jar,) = (spark_cache / "examples").glob("hadoop-mapreduce-examples-*.jar")
    put(minio, bucket, "jars/examples.jar", jar.read_bytes())
    put(minio, bucket, "text/a.txt", "to be or not to be\n")
    run = run_spark(runner, minio, spark_task(minio, "HadoopActivity", {
        "jarUri": f"s3://{bucket}/jars/examples.jar",  # no mainClass: the manifest's (ExampleDriver)
        "argument": ["wordcount", f"s3://{bucket}/text/", f"s3://{bucket}/counts"]}))
    assert run.code == 0, run.output
    assert read_dir(minio, bucket, "counts/") == "be\t2\nnot\t1\nor\t1\nto\t2\n"


def test_hive_copy_filters_rows_between_s3_nodes(runner: Runner, minio: S3Server, bucket: str,
                                                 spark_cache: Path) -> None:
    put(minio, bucket, "logs/day1.csv", ACCESS_LOG)
    nodes = log_nodes(bucket)
    nodes["outputs"][0]["data_format"] = {"type": "TSV", "fields": {}}  # the input's columns, written as TSV
    run = run_spark(runner, minio, spark_task(minio, "HiveCopyActivity", {"filterSql": "`status` = 200 OR bytes IS NULL"},
                                              **nodes))
    assert run.code == 0, run.output
    assert sorted(read_dir(minio, bucket, "report/").splitlines()) == [
        "a.example\t200\t100", "a.example\t200\t50", "b.example\t200\t1", "c.example\t500\t\\N"]


# ---------------------------------------------------------------------------------------------- DynamoDB


def dynamodb_table(moto: MotoServer, name: str, items: list[dict[str, Any]] | None = None) -> Any:
    ddb = moto.client("dynamodb")
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    for item in items or ():
        ddb.put_item(TableName=name, Item=item)
    return ddb


def scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    return sorted(ddb.scan(TableName=table)["Items"], key=lambda item: item["id"]["S"])


def dynamodb_aws(minio: S3Server, moto: MotoServer) -> dict[str, Any]:
    return {**s3_aws(minio), "dynamodb_endpoint_url": moto.endpoint}


def dynamodb_node(name: str, table: str, columns: list[str] | None, fmt: str = "DynamoDBExportDataFormat",
                  **fields: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"name": name, "type": "DynamoDBDataNode", "fields": {"tableName": table, **fields}}
    if columns is not None:
        node["data_format"] = {"type": fmt, "fields": {"column": columns} if columns else {}}
    return node


# Sparse items: only some carry every attribute; binary, sets, maps and lists travel whole.
ORDERS = [
    {"id": {"S": "a"}, "ts": {"N": "1700000100"}, "total": {"N": "12.5"}, "tags": {"SS": ["x", "y"]}},
    {"id": {"S": "b"}, "ts": {"N": "1700000200"}, "blob": {"B": b"\x00\x01"}, "meta": {"M": {"k": {"L": [
        {"N": "1"}, {"NULL": True}]}}}},
    {"id": {"S": "c"}, "ts": {"N": "1600000000"}, "total": {"N": "3"}},
    {"id": {"S": "d"}, "note": {"S": "no timestamp"}},
]


def test_hive_copy_filters_a_dynamodb_table_into_another_keeping_every_attribute(
        runner: Runner, minio: S3Server, moto: MotoServer, spark_cache: Path) -> None:
    """The guide's example: DynamoDBExportDataFormat names only the column it filters on; whole items move."""
    ddb = dynamodb_table(moto, "orders", ORDERS)
    dynamodb_table(moto, "orders_restore")
    spec = task("activity", "HiveCopyActivity", {"runsOn": "spark", "filterSql": "`ts` > 1650000000"},
                aws=dynamodb_aws(minio, moto), cluster=dict(PROFILE),
                inputs=[dynamodb_node("Orders", "orders", ["ts BIGINT"])],
                outputs=[dynamodb_node("Restore", "orders_restore", [], region="us_east_1")])
    run = runner(spec, minio.env(), timeout=300)
    assert run.code == 0, run.output
    assert scan(ddb, "orders_restore") == [ORDERS[0], ORDERS[1]]  # c is too old; d has no ts (NULL)
    assert "copy: put 2 item(s) into table orders_restore" in run.stdout


def test_hive_copy_exports_a_table_to_s3_and_imports_it_back(runner: Runner, minio: S3Server, moto: MotoServer,
                                                              bucket: str, spark_cache: Path) -> None:
    ddb = dynamodb_table(moto, "export_src", ORDERS)
    dynamodb_table(moto, "import_dst")
    lines_node = s3_node("Backup", {"type": "DynamoDBExportDataFormat", "fields": {}},
                         directoryPath=f"s3://{bucket}/backup/")
    export = runner(task("activity", "HiveCopyActivity", {"runsOn": "spark"}, aws=dynamodb_aws(minio, moto),
                         cluster=dict(PROFILE), inputs=[dynamodb_node("Src", "export_src", [])],
                         outputs=[lines_node]), minio.env(), timeout=300)
    assert export.code == 0, export.output
    lines = read_dir(minio, bucket, "backup/").splitlines()
    assert len(lines) == 4 and all(json.loads(line)["id"]["S"] in "abcd" for line in lines)
    # Back in, only the items that have a total, read from the lines.
    back = runner(task("activity", "HiveCopyActivity", {"runsOn": "spark", "filterSql": "total IS NOT NULL"},
                       aws=dynamodb_aws(minio, moto), cluster=dict(PROFILE),
                       inputs=[{**lines_node, "data_format": {"type": "DynamoDBExportDataFormat",
                                                              "fields": {"column": ["total DOUBLE"]}}}],
                       outputs=[dynamodb_node("Dst", "import_dst", None)]), minio.env(), timeout=300)
    assert back.code == 0, back.output
    assert scan(ddb, "import_dst") == [ORDERS[0], ORDERS[2]]


def test_hive_copy_makes_items_from_csv_columns(runner: Runner, minio: S3Server, moto: MotoServer, bucket: str,
                                                spark_cache: Path) -> None:
    ddb = dynamodb_table(moto, "hosts")
    put(minio, bucket, "hosts/a.csv", "a.example,200,100,true\nb.example,404,,false\n")
    csv = {"type": "CSV", "fields": {"column": ["id STRING", "status INT", "bytes BIGINT", "up BOOLEAN"]}}
    run = runner(task("activity", "HiveCopyActivity", {"runsOn": "spark", "filterSql": "status < 500"},
                      aws=dynamodb_aws(minio, moto), cluster=dict(PROFILE),
                      inputs=[s3_node("Hosts", csv, directoryPath=f"s3://{bucket}/hosts/")],
                      outputs=[dynamodb_node("Table", "hosts", None)]), minio.env(), timeout=300)
    assert run.code == 0, run.output
    assert scan(ddb, "hosts") == [  # a NULL column is no attribute
        {"id": {"S": "a.example"}, "status": {"N": "200"}, "bytes": {"N": "100"}, "up": {"BOOL": True}},
        {"id": {"S": "b.example"}, "status": {"N": "404"}, "up": {"BOOL": False}}]


def test_hive_reads_a_dynamodb_table_as_columns(runner: Runner, minio: S3Server, moto: MotoServer, bucket: str,
                                                spark_cache: Path) -> None:
    dynamodb_table(moto, "orders_hive", ORDERS)
    report = {"type": "CSV", "fields": {"column": ["tagged STRING", "orders BIGINT", "total DOUBLE"]}}
    script = ("INSERT OVERWRITE TABLE ${output1} SELECT CASE WHEN total IS NULL THEN 'none' ELSE 'some' END, "
              "count(*), sum(total) FROM ${input1} GROUP BY 1")
    run = runner(task("activity", "HiveActivity", {"runsOn": "spark", "hiveScript": script},
                      aws=dynamodb_aws(minio, moto), cluster=dict(PROFILE),
                      inputs=[dynamodb_node("Orders", "orders_hive", ["id STRING", "total DOUBLE"],
                                            fmt="DynamoDBDataFormat")],
                      outputs=[s3_node("Report", report, directoryPath=f"s3://{bucket}/by-total/")]),
                 minio.env(), timeout=300)
    assert run.code == 0, run.output
    assert sorted(read_dir(minio, bucket, "by-total/").splitlines()) == ["none,2,", "some,2,15.5"]


def test_dynamodb_nodes_that_cannot_work_say_why_before_spark(runner: Runner, minio: S3Server, moto: MotoServer,
                                                               bucket: str) -> None:
    aws = dynamodb_aws(minio, moto)
    csv_out = s3_node("Out", {"type": "CSV", "fields": {"column": ["id STRING"]}}, directoryPath=f"s3://{bucket}/o/")
    no_format = runner(task("activity", "HiveCopyActivity", {"runsOn": "spark"}, aws=aws, cluster=dict(PROFILE),
                            inputs=[dynamodb_node("Orders", "orders", None)], outputs=[csv_out]), minio.env())
    assert_failed(no_format, "Task.UnsupportedFormat", "input 'Orders' (${input1}): a DynamoDB table is read "
                  "through a DynamoDBDataFormat or DynamoDBExportDataFormat naming its columns: give the node one as "
                  "dataFormat", code=2)
    bad_type = runner(task("activity", "HiveCopyActivity", {"runsOn": "spark"}, aws=aws, cluster=dict(PROFILE),
                           inputs=[dynamodb_node("Orders", "orders", ["ts TIMESTAMP"])], outputs=[csv_out]),
                      minio.env())
    assert_failed(bad_type, "Task.UnsupportedFormat", "input 'Orders' (${input1}) data format "
                  "DynamoDBExportDataFormat: column[0] 'ts TIMESTAMP': a DynamoDB attribute fills only STRING, "
                  "VARCHAR(n), CHAR(n), TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p,s), BOOLEAN, "
                  "BINARY", code=2)
    hive_out = runner(task("activity", "HiveActivity", {"runsOn": "spark", "hiveScript": "SELECT 1"}, aws=aws,
                           cluster=dict(PROFILE), inputs=[csv_out], outputs=[dynamodb_node("T", "t", [])]),
                      minio.env())
    assert_failed(hive_out, "Task.UnsupportedNode", "output 'T' (${output1}): HiveActivity writes Hive tables "
                  "(CSV, TSV, Custom) on S3 here; to write a DynamoDB table or DynamoDB JSON, copy with a "
                  "HiveCopyActivity", code=2)
    two = runner(task("activity", "HiveCopyActivity", {"runsOn": "spark", "filterSql": "1=1; DROP TABLE x"},
                      aws=aws, cluster=dict(PROFILE), inputs=[csv_out], outputs=[csv_out]), minio.env())
    assert_failed(two, "Hive.BadScript", "HiveCopyActivity MyHiveCopyActivity: filterSql is one condition (what "
                  "follows WHERE), not several statements", code=2)


def test_a_line_that_is_not_an_item_names_its_file(runner: Runner, minio: S3Server, moto: MotoServer, bucket: str,
                                                   spark_cache: Path) -> None:
    dynamodb_table(moto, "from_lines")
    put(minio, bucket, "lines/part-1.json", '{"id": {"S": "a"}}\n{"id": "b"}\n')
    run = runner(task("activity", "HiveCopyActivity", {"runsOn": "spark"}, aws=dynamodb_aws(minio, moto),
                      cluster=dict(PROFILE),
                      inputs=[s3_node("Lines", {"type": "DynamoDBExportDataFormat", "fields": {}},
                                      directoryPath=f"s3://{bucket}/lines/")],
                      outputs=[dynamodb_node("T", "from_lines", None)]), minio.env(), timeout=300)
    assert_failed(run, "Hive.TableFailed", "HiveCopyActivity MyHiveCopyActivity: input 'Lines' (${input1}): "
                  "ValueError: part-1.json: not a DynamoDB JSON item (attribute id: \"b\" is not a DynamoDB JSON "
                  "attribute value): {\"id\": \"b\"}")
    assert moto.client("dynamodb").scan(TableName="from_lines")["Items"] == []  # nothing was half-written


# ---------------------------------------------------------------------------------------------- SQL inputs


@pytest.mark.parametrize("dialect", ["postgres", "mariadb"])
def test_hive_reads_a_sql_query_as_its_input_table(runner: Runner, minio: S3Server, bucket: str, spark_cache: Path,
                                                   dialect: str, request: pytest.FixtureRequest) -> None:
    """As AWS reads an RDS table: the node's selectQuery's columns become ${input1}'s; the password reaches Spark
    from the Secret's environment variable, never the plan or the log."""
    server: SqlServer = request.getfixturevalue(dialect)
    table = f"orders_{dialect}"
    server.sql(f"DROP TABLE IF EXISTS {table}")
    server.sql(f"CREATE TABLE {table} (region VARCHAR(10), amount INT, shipped INT)")
    server.sql(f"INSERT INTO {table} VALUES ('eu', 10, 1), ('us', 5, 1), ('eu', 7, 0), ('ap', 1, 1)")
    database = {"name": "Shop", "type": "JdbcDatabase", "connection_string": server.jdbc, "username": server.user,
                "password_env": "SHOP_PASSWORD"}
    node = {"name": "Orders", "type": "SqlDataNode", "database": database,
            "fields": {"selectQuery": f"SELECT region, amount FROM {table} WHERE shipped = 1"}}
    report = {"type": "CSV", "fields": {"column": ["region STRING", "total BIGINT"]}}
    script = "INSERT OVERWRITE TABLE ${output1} SELECT region, sum(amount) FROM ${input1} GROUP BY region"
    run = runner(task("activity", "HiveActivity", {"runsOn": "spark", "hiveScript": script}, aws=s3_aws(minio),
                      cluster=dict(PROFILE), inputs=[node],
                      outputs=[s3_node("Report", report, directoryPath=f"s3://{bucket}/shipped/")]),
                 {**minio.env(), "SHOP_PASSWORD": server.password}, timeout=300)
    assert run.code == 0, run.output
    assert sorted(read_dir(minio, bucket, "shipped/").splitlines()) == ["ap,1", "eu,10", "us,5"]
    assert server.password not in run.output
    wrong = runner(task("activity", "HiveActivity", {"runsOn": "spark", "hiveScript": script}, aws=s3_aws(minio),
                        cluster=dict(PROFILE), inputs=[node], outputs=[s3_node("Report", report, directoryPath=
                                                                              f"s3://{bucket}/never/")]),
                   {**minio.env(), "SHOP_PASSWORD": "not-it"}, timeout=300)
    assert_failed(wrong, "SQL.AuthenticationFailed")  # the runner's own check, before Spark starts
    assert "hive: running" not in wrong.output


@pytest.mark.parametrize("dialect", ["postgres", "mariadb"])
def test_hive_writes_a_sql_table_in_one_transaction(runner: Runner, minio: S3Server, bucket: str, spark_cache: Path,
                                                    dialect: str, request: pytest.FixtureRequest) -> None:
    """${output1} over a SQL table: INSERT OVERWRITE replaces its rows, INSERT INTO adds to them, a failing
    statement leaves them as they were; the table keeps its key, and no staging table is left behind."""
    server: SqlServer = request.getfixturevalue(dialect)
    table = f"totals_{dialect}"
    server.sql(f"DROP TABLE IF EXISTS {table}")
    server.sql(f"CREATE TABLE {table} (region VARCHAR(10) PRIMARY KEY, total BIGINT NOT NULL)")
    server.sql(f"INSERT INTO {table} VALUES ('old', 1)")
    put(minio, bucket, "orders/part-1.csv", "eu,10\nus,5\neu,7\n")
    orders = s3_node("Orders", {"type": "CSV", "fields": {"column": ["region STRING", "amount BIGINT"]}},
                     directoryPath=f"s3://{bucket}/orders/")
    database = {"name": "Shop", "type": "JdbcDatabase", "connection_string": server.jdbc, "username": server.user,
                "password_env": "SHOP_PASSWORD"}
    totals = {"name": "Totals", "type": "SqlDataNode", "database": database, "fields": {"table": table}}
    env = {**minio.env(), "SHOP_PASSWORD": server.password}

    def hive(script: str, output: dict[str, Any] = totals) -> Run:
        return runner(task("activity", "HiveActivity", {"runsOn": "spark", "hiveScript": script},
                           aws=s3_aws(minio), cluster=dict(PROFILE), inputs=[orders], outputs=[output]),
                      env, timeout=300)

    def rows() -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in server.sql(f"SELECT region, total FROM {table}"))

    def stages() -> list[Any]:
        return server.sql("SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'dp_stage_%'")

    run = hive("INSERT OVERWRITE TABLE ${output1} SELECT region, sum(amount) FROM ${input1} GROUP BY region")
    assert run.code == 0, run.output
    assert rows() == [("eu", 17), ("us", 5)]
    assert "2 row(s) into" in run.output and "in place of its 1 row(s)" in run.output
    assert server.password not in run.output
    run = hive("INSERT INTO TABLE ${output1} SELECT 'ap', 1")
    assert run.code == 0, run.output
    assert rows() == [("ap", 1), ("eu", 17), ("us", 5)]
    # The first statement fills the staging table; the second fails: the table is as it was.
    failed = hive("INSERT OVERWRITE TABLE ${output1} SELECT 'xx', 2; SELECT no_such_column FROM ${input1}")
    assert_failed(failed, "Hive.StatementFailed")
    assert "statement 2 of 2" in str(failed.result.error_message)
    assert rows() == [("ap", 1), ("eu", 17), ("us", 5)]
    # A duplicate key is refused by the table itself when the rows move: nothing of them is kept.
    duplicate = hive("INSERT INTO TABLE ${output1} SELECT 'zz', 1 UNION ALL SELECT 'eu', 2")
    assert_failed(duplicate, "SQL.BadRow")
    assert rows() == [("ap", 1), ("eu", 17), ("us", 5)]
    assert stages() == []
    missing = hive("INSERT INTO TABLE ${output1} SELECT 'ap', 1", {**totals, "fields": {"table": "no_such"}})
    assert_failed(missing, "SQL.NoSuchTable", "output 'Totals' (${output1}): table no_such does not exist in "
                  "database Shop (create it first: its columns are the output's)", code=2)
    assert "hive: running" not in missing.output


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("fields", "error_id", "message"), [
    ({"step": ["command-runner.jar,spark-submit,s3://b/ok.py", "/opt/spark/bin/spark-submit,--class,X,app.jar"]},
     "Emr.BadStep", "EmrActivity MyEmrActivity: step 2: the step starts with '/opt/spark/bin/spark-submit', which "
                    "is not a jar; write 'command-runner.jar,spark-submit,...' to run a command"),
    ({"step": ["command-runner.jar,hadoop-streaming,-mapper,m.py"]},
     "Emr.BadStep", "EmrActivity MyEmrActivity: step 1: command-runner.jar,hadoop-streaming is one of EMR's cluster "
                    "tools, not available here: Hadoop streaming needs YARN or a Hadoop installation; write the job "
                    "as a Spark application"),
])
def test_a_bad_step_fails_before_anything_runs(runner: Runner, minio: S3Server, fields: dict[str, Any], error_id: str,
                                               message: str) -> None:
    run = run_spark(runner, minio, spark_task(minio, "EmrActivity", {**fields, "preStepCommand": ["echo ran"]}))
    assert_failed(run, error_id, message, code=2)
    assert "ran" not in run.stdout


def test_missing_programs_name_the_field(runner: Runner, minio: S3Server, bucket: str, spark_cache: Path) -> None:
    hive = run_spark(runner, minio, spark_task(minio, "HiveActivity", {"scriptUri": f"s3://{bucket}/nope.q"},
                                               **log_nodes(bucket)))
    assert_failed(hive, "S3.NoSuchKey", f"HiveActivity MyHiveActivity scriptUri (s3://{bucket}/nope.q): object "
                                        f"s3://{bucket}/nope.q does not exist")
    step = f"command-runner.jar,spark-submit,s3://{bucket}/nope.py"
    emr = run_spark(runner, minio, spark_task(minio, "EmrActivity", {"step": [step]}))
    assert_failed(emr, "S3.NoSuchKey", f"EmrActivity MyEmrActivity step 1 application (s3://{bucket}/nope.py): "
                                       f"object s3://{bucket}/nope.py does not exist")
    hadoop = run_spark(runner, minio, spark_task(minio, "HadoopActivity", {"jarUri": "/home/hadoop/wc.jar"}))
    assert_failed(hadoop, "Emr.NoSuchFile", "HadoopActivity MyHadoopActivity jarUri jar: /home/hadoop/wc.jar does "
                                            "not exist in this image (give an s3:// URI or a path that exists in the "
                                            "cluster profile's image)", code=2)


def test_unsupported_nodes_and_tables_fail_before_spark(runner: Runner, minio: S3Server, bucket: str) -> None:
    nodes = log_nodes(bucket)
    nodes["outputs"][0] = {"name": "Warehouse", "type": "SqlDataNode", "fields": {"table": "t"}}
    copy = run_spark(runner, minio, spark_task(minio, "HiveCopyActivity", {}, **nodes))
    assert_failed(copy, "Task.UnsupportedNode", "output 'Warehouse' (${output1}): HiveCopyActivity copies S3 and "
                  "DynamoDB data; read or write a SQL table with a HiveActivity or a CopyActivity", code=2)
    nodes = log_nodes(bucket)
    nodes["outputs"][0]["fields"] = {"filePath": f"s3://{bucket}/report.csv"}
    hive = run_spark(runner, minio, spark_task(minio, "HiveActivity", {"hiveScript": "SELECT 1"}, **nodes))
    assert_failed(hive, "Task.Invalid", "output 'StatusReport' (${output1}): a Hive table is a directory: give the "
                  "node a directoryPath, not a filePath", code=2)
    bad_variable = run_spark(runner, minio, spark_task(minio, "HiveActivity", {
        "hiveScript": "SELECT 1", "scriptVariable": ["day"]}, **log_nodes(bucket)))
    assert_failed(bad_variable, "Hive.BadScript", "HiveActivity MyHiveActivity: scriptVariable[0] 'day' is not "
                  "NAME=VALUE (NAME: letters, digits, _ and ., not starting with a digit)", code=2)


def test_failing_sql_gives_sparks_message_not_a_traceback(runner: Runner, minio: S3Server, bucket: str,
                                                          spark_cache: Path) -> None:
    put(minio, bucket, "logs/day1.csv", ACCESS_LOG)
    script = "SELECT count(*) FROM ${input1};\nINSERT OVERWRITE TABLE ${output1} SELECT stauts, 1, 1 FROM ${input1}"
    run = run_spark(runner, minio, spark_task(minio, "HiveActivity", {"hiveScript": script}, **log_nodes(bucket)))
    assert_failed(run, "Hive.StatementFailed")
    message = run.result.error_message or ""
    assert message.startswith("HiveActivity MyHiveActivity: statement 2 of 2 (INSERT OVERWRITE TABLE output1 "
                              "SELECT stauts, 1, 1 FROM input1) failed: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A "
                              "column or function parameter with name `stauts` cannot be resolved. Did you mean one "
                              "of the following? ["), message
    assert message.endswith("; line 1 pos 38")  # not the query plan Spark appends
    assert "Relation" not in message and "\tat " not in message


def test_script_runner_and_command_runner_steps(runner: Runner, minio: S3Server, bucket: str,
                                                spark_cache: Path) -> None:
    """No Spark JVM: a script from S3 and a plain command, with the guide's escaped commas."""
    put(minio, bucket, "scripts/echo.sh", 'for a in "$@"; do echo "arg: $a"; done\n')
    steps = [f"s3://eu-west-1.elasticmapreduce/libs/script-runner/script-runner.jar,s3://{bucket}/scripts/echo.sh,"
             "a\\\\,b\\\\,c,d", "command-runner.jar,echo,x|y", "command-runner.jar,false"]
    run = run_spark(runner, minio, spark_task(minio, "EmrActivity", {"step": steps}))
    assert_failed(run, "Emr.StepFailed", "EmrActivity MyEmrActivity step 3: false exited with status 1")
    assert "stdout: arg: a,b,c\n" in run.stdout and "stdout: arg: d\n" in run.stdout
    assert "stdout: x|y\n" in run.stdout
