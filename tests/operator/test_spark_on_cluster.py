"""The EMR family on the real cluster (docs/spark.md): Spark image, mode local and mode kubernetes.

The operator runs on the host (the ``operator`` fixture); each activity's Job runs the Spark image
(spark-image/Dockerfile, built and imported by ``devcluster.py build-images --spark``, cached); data lives in
the S3 test server. In mode kubernetes the Job's pod is the Spark driver and creates executor pods with the
chart's kdp-spark-driver service account and Role, rendered from the chart as `helm install` would.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.servers import MotoServer, S3Server
from kdp_harness import ROOT, Operator, pipeline_doc

# Each test starts JVMs in pods on a small node: minutes, not seconds.
pytestmark = [pytest.mark.cluster, pytest.mark.servers, pytest.mark.timeout(900)]

SPARK_IMAGE = "localhost/kube-datapipeline-spark:dev"
EXECUTOR_SELECTOR = "datapipeline.io/spark-driver"
LOCAL = {"name": "spark", "image": SPARK_IMAGE, "driverCpu": "500m", "driverMemory": "1536Mi"}
KUBERNETES = {**LOCAL, "mode": "kubernetes", "serviceAccountName": "kdp-spark-driver", "executorInstances": 2,
              "executorCpu": "250m", "executorMemory": "900Mi",
              "configuration": [{"classification": "spark-defaults",
                                 "properties": {"spark.sql.shuffle.partitions": "4"}}]}

SALES = "region,amount\neu,10\nus,5\neu,7\nap,1\nus,20\neu,3\n"
AGGREGATE = """INSERT OVERWRITE TABLE ${output1}
SELECT region, count(*) AS orders, sum(amount) AS total FROM ${input1} GROUP BY region"""
EXPECTED = ["ap,1,1", "eu,3,20", "us,2,25"]

WORDS_APP = """
import sys
import threading
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("words").getOrCreate()
words = spark.read.text(sys.argv[1]).selectExpr("explode(split(value, ' ')) AS word").where("word != ''")
words.groupBy("word").count().orderBy("word").coalesce(1).write.mode("overwrite").csv(sys.argv[2])
print("counted", words.count(), "words")
"""

# Our own word count, compiled in the test against the Hadoop client that pyspark ships (no third-party jar).
WORDS_JAVA = """
import java.io.IOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.IntWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.Job;
import org.apache.hadoop.mapreduce.Mapper;
import org.apache.hadoop.mapreduce.Reducer;
import org.apache.hadoop.mapreduce.lib.input.FileInputFormat;
import org.apache.hadoop.mapreduce.lib.output.FileOutputFormat;

public class Words {
  public static class Split extends Mapper<Object, Text, Text, IntWritable> {
    private static final IntWritable ONE = new IntWritable(1);
    @Override
    protected void map(Object key, Text line, Context context) throws IOException, InterruptedException {
      for (String word : line.toString().split("\\\\s+")) {
        if (!word.isEmpty()) context.write(new Text(word), ONE);
      }
    }
  }

  public static class Sum extends Reducer<Text, IntWritable, Text, IntWritable> {
    @Override
    protected void reduce(Text word, Iterable<IntWritable> counts, Context context)
        throws IOException, InterruptedException {
      int total = 0;
      for (IntWritable c : counts) total += c.get();
      context.write(word, new IntWritable(total));
    }
  }

  public static void main(String[] args) throws Exception {
    Job job = Job.getInstance(new Configuration(), "words");
    job.setJarByClass(Words.class);
    job.setMapperClass(Split.class);
    job.setCombinerClass(Sum.class);
    job.setReducerClass(Sum.class);
    job.setOutputKeyClass(Text.class);
    job.setOutputValueClass(IntWritable.class);
    FileInputFormat.addInputPath(job, new Path(args[0]));
    FileOutputFormat.setOutputPath(job, new Path(args[1]));
    System.out.println("words: " + (job.waitForCompletion(false) ? "done" : "failed"));
  }
}
"""


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def spark_image(kube_cluster: Any) -> str:
    """The Spark image in the dev cluster's containerd, built (cached by content) the way `make test` builds it."""
    dev_kubeconfig = Path(os.environ.get("KDP_CACHE", Path.home() / ".cache" / "kube-datapipeline")) / "cluster"
    dev = kube_cluster.dev_cluster or Path(kube_cluster.kubeconfig) == Path(
        os.environ.get("KDP_CLUSTER_DIR", dev_kubeconfig)) / "kubeconfig"
    if not dev:
        pytest.skip("the Spark image is built into the dev cluster; with --use-current-context push "
                    f"{SPARK_IMAGE} to your cluster yourself (spark-image/Dockerfile)")
    try:
        import pyspark  # noqa: F401 - the build takes pyspark's Hadoop version and the Maven cache from the host
    except ImportError:
        pytest.skip("pyspark is not installed on the host: pip install 'kube-datapipeline[spark]' (make deps)")
    if shutil.which("mvn") is None:
        pytest.skip("mvn is not installed (Debian package maven; make deps): the Spark image needs the S3A jars")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "cluster" / "devcluster.py"), "build-images",
                           "--spark"], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, f"build-images --spark failed:\n{proc.stderr[-4000:]}"
    print(f"spark image ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return SPARK_IMAGE


@pytest.fixture()
def spark_ns(operator: Operator, spark_image: str, minio: S3Server) -> Iterator[Operator]:
    """The operator's namespace with the chart's Spark driver account and the S3 keys' Secret."""
    assert minio.pod_endpoint, "the cluster bridge is needed for pods to reach the S3 test server"
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not on PATH (eval \"$(python3 tests/cluster/devcluster.py env)\")")
    rendered = subprocess.run(
        [helm, "template", "kdp", str(ROOT / "charts" / "kube-datapipeline"), "--namespace", operator.namespace,
         "--show-only", "templates/spark-driver.yaml", "--set", "sparkDriver.serviceAccount.create=true",
         "--set", f"sparkDriver.namespaces={{{operator.namespace}}}"],
        capture_output=True, text=True, check=True).stdout
    operator.kubectl("apply", "-f", "-", stdin=rendered)
    operator.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-keys"},
                    "stringData": minio.env()})
    yield operator


@pytest.fixture()
def s3_bucket(minio: S3Server) -> str:
    return s3_bucket_name(minio)


def s3_bucket_name(minio: S3Server) -> str:
    """A new bucket (for the pipeline's logs and data)."""
    name = "spark-" + uuid.uuid4().hex[:10]
    minio.client().create_bucket(Bucket=name)
    return name


# ---------------------------------------------------------------------------------------------- helpers


def put(minio: S3Server, bucket: str, key: str, body: str | bytes) -> None:
    minio.client().put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)


def read_dir(minio: S3Server, bucket: str, prefix: str) -> str:
    s3 = minio.client()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                  if not o["Key"].rsplit("/", 1)[-1].startswith(("_", ".")))
    return "".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys)


def spark_pipeline(name: str, minio: S3Server, bucket: str, profile: dict[str, Any], activity: dict[str, Any],
                   **spec: Any) -> dict[str, Any]:
    return pipeline_doc(name, [{"name": "work", "runsOn": "spark", **activity}], scheduleType="ondemand",
                        activated=False, clusterProfiles=[profile],
                        aws={"s3EndpointUrl": minio.pod_endpoint, "s3PathStyle": True, "credentialsSecret": "s3-keys"},
                        pipelineLogUri=f"s3://{bucket}/logs/", defaults={"maximumRetries": 0}, **spec)


def hive_pipeline(name: str, minio: S3Server, bucket: str, profile: dict[str, Any], script: str) -> dict[str, Any]:
    return spark_pipeline(
        name, minio, bucket, profile,
        {"type": "HiveActivity", "input": ["sales"], "output": ["by-region"], "hiveScript": script},
        dataFormats=[{"name": "sales-csv", "type": "CSV", "column": ["region STRING", "amount BIGINT"],
                      "headerRow": True},
                     {"name": "report-csv", "type": "CSV", "column": ["region STRING", "orders BIGINT",
                                                                      "total BIGINT"]}],
        dataNodes=[{"name": "sales", "type": "S3DataNode", "directoryPath": f"s3://{bucket}/sales/",
                    "dataFormat": "sales-csv"},
                   {"name": "by-region", "type": "S3DataNode", "directoryPath": f"s3://{bucket}/by-region/",
                    "dataFormat": "report-csv"}])


def spark_ui_applications(op: Operator, pod: str) -> list[dict[str, Any]]:
    """The Spark UI's REST API, through ``kubectl port-forward`` to port 4040 of the driver pod's loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    forward = subprocess.Popen(["kubectl", "--kubeconfig", op.kubeconfig, "-n", op.namespace, "port-forward",
                                f"pod/{pod}", f"{port}:4040"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/applications", timeout=5) as answer:
                    return list(json.loads(answer.read()))
            except (OSError, ValueError):
                time.sleep(0.5)
        return []
    finally:
        forward.terminate()
        forward.wait(10)


def executors(op: Operator) -> list[dict[str, Any]]:
    return list(op.get("pods", selector=EXECUTOR_SELECTOR)["items"])


def driver_pod(op: Operator, run: str) -> dict[str, Any] | None:
    pods = op.get("pods", selector=f"datapipeline.io/run={run},datapipeline.io/kind=activity")["items"]
    return pods[0] if pods else None


def start(op: Operator, doc: dict[str, Any], run: str) -> None:
    op.apply(doc)
    op.cli("run", doc["metadata"]["name"], "--name", run)


def finished(op: Operator, run: str, timeout: float = 420) -> dict[str, Any]:
    status = op.wait_phase(run, ("Succeeded", "Failed"), timeout)
    if status["status"]["phase"] != "Succeeded":
        logs = op.cli("logs", run, "--activity", "work", check=False)
        raise AssertionError(f"run {run} ended {status['status']['phase']}: {json.dumps(status['status'])[:3000]}\n"
                             f"{logs[-6000:]}")
    return status


# ---------------------------------------------------------------------------------------------- HiveActivity


def test_hive_aggregates_a_csv_in_local_mode(spark_ns: Operator, minio: S3Server, s3_bucket: str) -> None:
    op = spark_ns
    put(minio, s3_bucket, "sales/day1.csv", SALES)
    start(op, hive_pipeline("hive-local", minio, s3_bucket, LOCAL, AGGREGATE), "hive-local-1")
    began = time.monotonic()
    finished(op, "hive-local-1")
    print(f"hive local: {time.monotonic() - began:.1f}s", file=sys.stderr)
    assert sorted(read_dir(minio, s3_bucket, "by-region/").splitlines()) == EXPECTED
    assert executors(op) == []  # mode local: Spark stays in the Job's pod


def test_hive_aggregates_a_csv_with_two_executor_pods(spark_ns: Operator, minio: S3Server, s3_bucket: str) -> None:
    op = spark_ns
    put(minio, s3_bucket, "sales/day1.csv", SALES)
    put(minio, s3_bucket, "sales/day2.csv", SALES)
    start(op, hive_pipeline("hive-k8s", minio, s3_bucket, KUBERNETES, AGGREGATE), "hive-k8s-1")
    began = time.monotonic()
    seen: dict[str, dict[str, Any]] = {}
    ui: list[list[dict[str, Any]]] = []
    probe: threading.Thread | None = None
    while op.run_phase("hive-k8s-1") not in ("Succeeded", "Failed") and time.monotonic() - began < 600:
        for pod in executors(op):
            seen[pod["metadata"]["name"]] = pod
        if seen and probe is None:  # the application runs: its web UI answers through a port-forward
            driver_name = next(iter(seen.values()))["metadata"]["ownerReferences"][0]["name"]
            probe = threading.Thread(target=lambda name: ui.append(spark_ui_applications(op, name)),
                                     args=(driver_name,))
            probe.start()
        time.sleep(0.5)
    finished(op, "hive-k8s-1")
    assert probe is not None
    probe.join(60)
    assert ui and [app["name"] for app in ui[0]] == ["HiveActivity work"], ui
    print(f"hive kubernetes: {time.monotonic() - began:.1f}s", file=sys.stderr)
    assert sorted(read_dir(minio, s3_bucket, "by-region/").splitlines()) == sorted(
        f"{r},{2 * int(n)},{2 * int(t)}" for r, n, t in (line.split(",") for line in EXPECTED))
    assert len(seen) == 2, f"expected two executor pods, saw {sorted(seen)}"
    driver = driver_pod(op, "hive-k8s-1")
    assert driver is not None
    for pod in seen.values():
        owners = pod["metadata"].get("ownerReferences") or []
        assert [(o["kind"], o["name"]) for o in owners] == [("Pod", driver["metadata"]["name"])]
        container = pod["spec"]["containers"][0]
        assert container["image"] == SPARK_IMAGE and container["command"] == ["datapipeline-spark-executor"]
        assert pod["spec"].get("automountServiceAccountToken") is False
        env = {e["name"]: e for e in container.get("env") or []}
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-keys",
                                                                             "key": "AWS_SECRET_ACCESS_KEY"}
    # The driver removed its executors when it stopped, with no call its Role refuses.
    log = op.cli("logs", "hive-k8s-1", "--activity", "work")
    refused = [line for line in log.splitlines() if "forbidden" in line.lower()]
    assert refused == []
    # The runner read each executor's log into the attempt's before deleting the pods.
    for name in seen:
        assert f"executor pod {name} (" in log, log[-5000:]
    try:
        op.wait(lambda: executors(op) == [], timeout=60)
    except AssertionError:
        raise AssertionError(f"executor pods left behind:\n{log[-5000:]}") from None


# ---------------------------------------------------------------------------------------------- EMR and Hadoop


def test_emr_activity_runs_a_spark_application_from_a_step(spark_ns: Operator, minio: S3Server,
                                                           s3_bucket: str) -> None:
    op = spark_ns
    put(minio, s3_bucket, "jobs/words.py", WORDS_APP)
    put(minio, s3_bucket, "in/a.txt", "b a c\na b\n")
    step = f"command-runner.jar,spark-submit,s3://{s3_bucket}/jobs/words.py,s3://{s3_bucket}/in/,s3://{s3_bucket}/out/"
    start(op, spark_pipeline("emr", minio, s3_bucket, LOCAL, {"type": "EmrActivity", "step": [step]}), "emr-1")
    began = time.monotonic()
    finished(op, "emr-1")
    print(f"emr step: {time.monotonic() - began:.1f}s", file=sys.stderr)
    assert read_dir(minio, s3_bucket, "out/") == "a,2\nb,2\nc,1\n"
    assert "counted 5 words" in op.cli("logs", "emr-1", "--activity", "work")


def words_jar(tmp_path: Path) -> bytes:
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("javac is not installed (Debian package openjdk-17-jdk-headless; make deps)")
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    source = tmp_path / "Words.java"
    source.write_text(WORDS_JAVA)
    classes = tmp_path / "classes"
    subprocess.run([javac, "--release", "17", "-nowarn", "-cp", str(jars / "*"), "-d", str(classes), str(source)],
                   check=True, capture_output=True, text=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: Words\r\n\r\n")
        for path in sorted(classes.rglob("*.class")):
            jar.write(path, path.relative_to(classes).as_posix())
    return out.getvalue()


def test_hadoop_activity_runs_a_word_count_jar(spark_ns: Operator, minio: S3Server, s3_bucket: str,
                                               tmp_path: Path) -> None:
    op = spark_ns
    put(minio, s3_bucket, "jars/words.jar", words_jar(tmp_path))
    put(minio, s3_bucket, "text/a.txt", "to be or not to be\n")
    activity = {"type": "HadoopActivity", "jarUri": f"s3://{s3_bucket}/jars/words.jar",
                "argument": [f"s3a://{s3_bucket}/text/", f"s3a://{s3_bucket}/counts/"]}
    start(op, spark_pipeline("hadoop", minio, s3_bucket, LOCAL, activity), "hadoop-1")
    began = time.monotonic()
    finished(op, "hadoop-1")
    print(f"hadoop jar: {time.monotonic() - began:.1f}s", file=sys.stderr)
    assert sorted(read_dir(minio, s3_bucket, "counts/").splitlines()) == ["be\t2", "not\t1", "or\t1", "to\t2"]
    assert "words: done" in op.cli("logs", "hadoop-1", "--activity", "work")


# ---------------------------------------------------------------------------------------------- cancel


def test_the_flagship_daily_logs_and_a_weekly_hive_traffic_report(spark_ns: Operator, minio: S3Server,
                                                                   s3_bucket: str) -> None:
    """examples/weblogs-hive.yaml as written, pointed at the test server, a week in the past: seven daily runs
    archive a log each, and the week's HiveActivity, waiting for the seventh day, reports that week only."""
    op = spark_ns
    docs = [d for d in yaml.safe_load_all((ROOT / "examples" / "weblogs-hive.yaml").read_text()) if d]
    doc = next(d for d in docs if d["kind"] == "Pipeline")
    week = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=8)
    days = [(week + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(7)]
    spec = doc["spec"]
    spec["schedule"] = {"period": "1 day", "startDateTime": week.isoformat(), "occurrences": 7}
    spec["schedules"]["weekly"] = {"period": "1 week", "startDateTime": week.isoformat(), "occurrences": 1}
    spec["aws"] = {"s3EndpointUrl": minio.pod_endpoint, "s3PathStyle": True, "credentialsSecret": "s3-keys"}
    spec["parameters"][0]["default"] = s3_bucket
    spec["clusterProfiles"][0]["image"] = SPARK_IMAGE
    spec["defaults"]["retryDelay"] = "10 seconds"
    spec["activated"] = True
    # Yesterday's log of another week is in the bucket too: the report must leave it out.
    put(minio, s3_bucket, f"logs/{days[0]}-old/access.log",
        "2020-01-01 GET /home 200 1\n2020-01-01 GET /home 200 1\n")
    op.apply(doc)

    def weekly_run() -> dict[str, Any] | None:
        runs = op.get("pipelineruns", selector="datapipeline.io/pipeline=weblogs-hive,datapipeline.io/schedule=weekly")
        return runs["items"][0] if runs["items"] else None

    op.wait(lambda: weekly_run() is not None, 120)
    weekly = (weekly_run() or {})["metadata"]["name"]
    status = op.wait_phase(weekly, ("Succeeded", "Failed"), 780)
    daily = [r for r in op.runs("weblogs-hive") if r["metadata"]["name"] != weekly]
    if status["status"]["phase"] != "Succeeded":
        logs = op.cli("logs", weekly, "--activity", "weekly-traffic-report", check=False)
        raise AssertionError(f"{weekly}: {json.dumps(status['status'])[:3000]}\n{logs[-6000:]}")
    assert len(daily) == 7 and {r["status"]["phase"] for r in daily} == {"Succeeded"}
    report = status["status"]["activities"]["weekly-traffic-report"]
    last_day_done = max(r["status"]["activities"]["archive-logs"]["endTime"] for r in daily)
    assert report["startTime"] >= last_day_done  # it waited for the week's final day
    rows = sorted(read_dir(minio, s3_bucket, f"reports/week-{days[0]}/").splitlines())
    assert rows == sorted(f"{day},/{page},1,1024" for day in days for page in ("home", "pricing", "docs"))
    assert "statement 1 of 1: INSERT OVERWRITE TABLE output1" in op.cli("logs", weekly, "--activity",
                                                                        "weekly-traffic-report")


def test_hive_copy_between_dynamodb_tables_with_two_executor_pods(spark_ns: Operator, minio: S3Server,
                                                                   moto: MotoServer) -> None:
    """The executors scan the table's segments and put the items themselves, with the pipeline's keys by
    reference and the endpoint from the plan."""
    op = spark_ns
    assert moto.pod_endpoint, "the cluster bridge is needed for pods to reach the DynamoDB test server"
    ddb = moto.client("dynamodb")
    suffix = uuid.uuid4().hex[:8]
    source, target = f"events-{suffix}", f"recent-{suffix}"
    for table in (source, target):
        ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
    for n in range(40):
        ddb.put_item(TableName=source, Item={"id": {"S": f"e{n:02d}"}, "ts": {"N": str(1000 + n)},
                                             "payload": {"M": {"n": {"N": str(n)}}}})
    doc = spark_pipeline(
        "ddb-copy", minio, s3_bucket_name(minio), KUBERNETES,
        {"type": "HiveCopyActivity", "input": ["events"], "output": ["recent"], "filterSql": "ts >= 1030"},
        dataFormats=[{"name": "events-format", "type": "DynamoDBExportDataFormat", "column": ["ts BIGINT"]},
                     {"name": "whole-items", "type": "DynamoDBExportDataFormat"}],
        dataNodes=[{"name": "events", "type": "DynamoDBDataNode", "tableName": source, "dataFormat": "events-format"},
                   {"name": "recent", "type": "DynamoDBDataNode", "tableName": target, "dataFormat": "whole-items"}])
    doc["spec"]["aws"]["dynamodbEndpointUrl"] = moto.pod_endpoint
    start(op, doc, "ddb-copy-1")
    finished(op, "ddb-copy-1")
    items = sorted(ddb.scan(TableName=target)["Items"], key=lambda item: item["id"]["S"])
    assert [item["id"]["S"] for item in items] == [f"e{n}" for n in range(30, 40)]
    assert items[0]["payload"] == {"M": {"n": {"N": "30"}}}  # every attribute travelled, not only ts
    log = op.cli("logs", "ddb-copy-1", "--activity", "work")
    assert f"copy: put 10 item(s) into table {target}" in log and log.count("executor pod ") == 2, log[-4000:]


def test_cancel_removes_the_driver_and_its_executors(spark_ns: Operator, minio: S3Server, s3_bucket: str) -> None:
    op = spark_ns
    put(minio, s3_bucket, "sales/day1.csv", SALES)
    # Each row sleeps ten minutes on an executor: the run is surely running when it is cancelled.
    slow = "SELECT region, reflect('java.lang.Thread', 'sleep', bigint(600000)) FROM ${input1}"
    start(op, hive_pipeline("slow", minio, s3_bucket, KUBERNETES, slow), "slow-1")
    op.wait(lambda: len([p for p in executors(op) if p["status"].get("phase") == "Running"]) == 2, timeout=300)
    driver = driver_pod(op, "slow-1")
    assert driver is not None and op.run_phase("slow-1") == "Running"
    began = time.monotonic()
    op.cli("cancel", "slow-1")
    op.wait_phase("slow-1", ("Cancelled",), timeout=120)
    op.wait(lambda: driver_pod(op, "slow-1") is None and executors(op) == [], timeout=120)
    print(f"cancel: driver and executors gone in {time.monotonic() - began:.1f}s", file=sys.stderr)
    # The attempt's log in pipelineLogUri (the pod is gone) holds the executors' logs too.
    log = read_dir(minio, s3_bucket, "logs/slow/slow-1/work/attempt-1.log")
    assert "stopped by SIGTERM" in log, log[-4000:]
    assert log.count("executor pod ") == 2, log[-4000:]
