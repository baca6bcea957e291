"""Spark benchmark on the real cluster: our HiveActivity against the same Spark SQL run directly by spark-submit.

The data: ``--rows`` (10,000,000) CSV rows ``region,amount`` in the S3 test server (MinIO on the cluster bridge).
The query, both ways: ``SELECT region, count(*), sum(amount) FROM sales GROUP BY region`` written as CSV to S3.

* ours: a PipelineRun of a HiveActivity on a ClusterProfile (mode local, then mode kubernetes with two
  executors), from the run's creation to its Succeeded phase (the operator, the Job, the runner, Hive's
  metastore, the statement);
* direct: a bare Job in the same Spark image running spark-submit of a five-line PySpark script with the same
  master, sizes and S3A settings, from the Job's creation to its completion.

Printed side by side: seconds, ours/direct, and rows per second per Spark core. Not a test: no pass/fail.
Usage: eval "$(python3 tests/cluster/devcluster.py env)"; python3 tests/cluster/devcluster.py build-images --spark
       PYTHONPATH=operator:tests python3 benchmarks/spark_bench.py [--rows 10000000] [--repeat 1]
It starts the operator as a host process watching only its own namespace and deletes that namespace at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SPARK_IMAGE = os.environ.get("KDP_SPARK_IMAGE", "localhost/kube-datapipeline-spark:dev")
QUERY = "SELECT region, count(*) AS orders, sum(amount) AS total FROM {table} GROUP BY region"
REGIONS = ["eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south"]
DRIVER = {"driverCpu": "1", "driverMemory": "2Gi"}
EXECUTORS = {"executorInstances": 2, "executorCpu": "500m", "executorMemory": "1536Mi"}
PHASES: dict[str, tuple[float, float, float]] = {}  # run name -> phases()

DIRECT_APP = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("direct").getOrCreate()
spark.read.csv(sys.argv[1], schema="region STRING, amount BIGINT", header=True).createOrReplaceTempView("sales")
spark.sql(sys.argv[3]).write.mode("overwrite").csv(sys.argv[2])
"""


def kubectl(namespace: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["kubectl", "-n", namespace, *args], input=stdin, capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def apply(namespace: str, *docs: dict[str, Any]) -> None:
    kubectl(namespace, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)}))


def get(namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(kubectl(namespace, "get", kind, name, "-o", "json")))


def wait_until(check: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f}s: {what}")


def upload_rows(s3: Any, bucket: str, rows: int, files: int = 4) -> int:
    rng = random.Random(13)
    size = 0
    per_file = rows // files
    for n in range(files):
        count = per_file if n < files - 1 else rows - per_file * (files - 1)
        buf = io.StringIO()
        buf.write("region,amount\n")
        buf.writelines(f"{REGIONS[rng.randrange(8)]},{rng.randrange(1, 1000)}\n" for _ in range(count))
        body = buf.getvalue().encode()
        size += len(body)
        s3.put_object(Bucket=bucket, Key=f"sales/part-{n}.csv", Body=body)
    return size


def parse_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def phases(namespace: str, selector: str, applied: float, ended: float) -> tuple[float, float, float]:
    """Where a run's seconds went, from its pod (1 s resolution): until the container started, the container,
    after it ended until the end was seen."""
    pods = json.loads(kubectl(namespace, "get", "pods", "-l", selector, "-o", "json"))["items"]
    pods = [p for p in pods if "batch.kubernetes.io/job-name" in p["metadata"].get("labels", {})]
    state = pods[-1]["status"]["containerStatuses"][0]["state"]["terminated"]
    started, finished = parse_time(state["startedAt"]), parse_time(state["finishedAt"])
    return started - applied, finished - started, ended - finished


def ours(namespace: str, name: str, endpoint: str, bucket: str, profile: dict[str, Any]) -> float:
    doc = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": name},
           "spec": {"activated": False, "scheduleType": "ondemand", "defaults": {"maximumRetries": 0},
                    "aws": {"s3EndpointUrl": endpoint, "s3PathStyle": True, "credentialsSecret": "s3-keys"},
                    "clusterProfiles": [{"name": "spark", "image": SPARK_IMAGE, **profile}],
                    "dataFormats": [{"name": "in", "type": "CSV", "column": ["region STRING", "amount BIGINT"],
                                     "headerRow": True},
                                    {"name": "out", "type": "CSV", "column": ["region STRING", "orders BIGINT",
                                                                              "total BIGINT"]}],
                    "dataNodes": [{"name": "sales", "type": "S3DataNode", "directoryPath": f"s3://{bucket}/sales/",
                                   "dataFormat": "in"},
                                  {"name": "report", "type": "S3DataNode", "dataFormat": "out",
                                   "directoryPath": f"s3://{bucket}/ours-{name}/"}],
                    "activities": [{"name": "work", "type": "HiveActivity", "runsOn": "spark", "input": ["sales"],
                                    "output": ["report"], "hiveScript": "INSERT OVERWRITE TABLE ${output1} " +
                                    QUERY.format(table="${input1}")}]}}
    apply(namespace, doc)
    run = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
           "metadata": {"name": f"{name}-1", "labels": {"datapipeline.io/pipeline": name}},
           "spec": {"pipelineRef": {"name": name}, "trigger": "Manual"}}
    start, applied = time.monotonic(), time.time()
    apply(namespace, run)

    def done() -> bool:
        phase = (get(namespace, "pipelinerun", f"{name}-1").get("status") or {}).get("phase")
        if phase == "Failed":
            raise SystemExit(f"run {name}-1 failed: datapipeline logs {name}-1 -n {namespace}")
        return phase == "Succeeded"

    wait_until(done, 1800, f"run {name}-1")
    took = time.monotonic() - start
    PHASES[name] = phases(namespace, f"datapipeline.io/run={name}-1", applied, time.time())
    return took


def direct(namespace: str, name: str, endpoint: str, bucket: str, kubernetes: bool) -> float:
    conf = {"spark.hadoop.fs.s3a.endpoint": endpoint, "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",  # the web UI on, as ours
            "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
            "spark.driver.memory": "1536m", "spark.sql.warehouse.dir": "/tmp/warehouse"}
    env: list[dict[str, Any]] = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "s3-keys", "key": key}}}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    env.append({"name": "APP", "value": DIRECT_APP})
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "automountServiceAccountToken": kubernetes}
    if kubernetes:
        # The same executor pods as ours (image command, sizes), the same client-mode settings.
        template = {"apiVersion": "v1", "kind": "Pod", "spec": {"automountServiceAccountToken": False,
                    "containers": [{"name": "executor", "command": ["datapipeline-spark-executor"]}]}}
        env += [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "TEMPLATE", "value": json.dumps(template)}]
        conf.update({"spark.executor.instances": "2", "spark.executor.cores": "1",
                     "spark.kubernetes.executor.request.cores": EXECUTORS["executorCpu"],
                     "spark.executor.memory": "1152m", "spark.executor.memoryOverhead": "384m",
                     "spark.kubernetes.container.image": SPARK_IMAGE, "spark.kubernetes.namespace": namespace,
                     "spark.kubernetes.executor.disableConfigMap": "true",
                     "spark.kubernetes.driver.service.deleteOnTermination": "false",
                     "spark.kubernetes.driver.ownPersistentVolumeClaim": "false",
                     "spark.kubernetes.driver.reusePersistentVolumeClaim": "false",
                     "spark.kubernetes.executor.podTemplateFile": "/tmp/executor.json",
                     "spark.kubernetes.executor.secretKeyRef.AWS_ACCESS_KEY_ID": "s3-keys:AWS_ACCESS_KEY_ID",
                     "spark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY": "s3-keys:AWS_SECRET_ACCESS_KEY"})
        pod_spec["serviceAccountName"] = "kdp-spark-driver"
        master = "k8s://https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
        extra = ("--conf spark.kubernetes.driver.pod.name=$POD_NAME --conf spark.driver.host=$POD_IP "
                 "--conf spark.driver.bindAddress=$POD_IP ")
    else:
        master, extra = "local[1]", ""
    resources = {"cpu": DRIVER["driverCpu"], "memory": DRIVER["driverMemory"]}
    confs = " ".join(f"--conf {k}={v}" for k, v in sorted(conf.items()))
    # Our own benchmark's fixed values only: nothing here comes from a user.
    script = (f'printf "%s" "$APP" > /tmp/app.py && printf "%s" "$TEMPLATE" > /tmp/executor.json && '
              f'exec /opt/spark/bin/spark-submit --master {master} {extra}{confs} /tmp/app.py '
              f's3a://{bucket}/sales/ s3a://{bucket}/direct-{name}/ "{QUERY.format(table="sales")}"')
    if not kubernetes:
        env.append({"name": "TEMPLATE", "value": ""})
    pod_spec["containers"] = [{"name": "spark", "image": SPARK_IMAGE, "imagePullPolicy": "IfNotPresent",
                               "command": ["sh", "-c", script], "env": env,
                               "resources": {"requests": resources, "limits": resources}}]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
           "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}}}
    start, applied = time.monotonic(), time.time()
    apply(namespace, job)

    def done() -> bool:
        status = get(namespace, "job", name).get("status") or {}
        if status.get("failed"):
            raise SystemExit(f"direct job {name} failed: kubectl logs -n {namespace} job/{name}")
        return bool(status.get("succeeded"))

    wait_until(done, 1800, f"direct job {name}")
    took = time.monotonic() - start
    PHASES[name] = phases(namespace, f"job-name={name}", applied, time.time())
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    from fixtures.servers import minio_server

    namespace = f"spark-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["kubectl", "create", "namespace", namespace], check=True, capture_output=True)
    rendered = subprocess.run(
        ["helm", "template", "kdp", str(ROOT / "charts" / "kube-datapipeline"), "--namespace", namespace,
         "--show-only", "templates/spark-driver.yaml", "--set", "sparkDriver.serviceAccount.create=true",
         "--set", f"sparkDriver.namespaces={{{namespace}}}"],
        capture_output=True, text=True, check=True).stdout
    kubectl(namespace, "apply", "-f", "-", stdin=rendered)
    env = {**os.environ, "DATAPIPELINE_NAMESPACES": namespace, "DATAPIPELINE_METRICS_PORT": "0",
           "DATAPIPELINE_LIVENESS_PORT": "0", "DATAPIPELINE_SCHEDULER_INTERVAL": "1",
           "PYTHONPATH": str(ROOT / "operator")}
    log = open(ROOT / f"benchmarks/.operator-{namespace}.log", "wb")  # noqa: SIM115 - closed in finally
    operator = subprocess.Popen([sys.executable, "-m", "datapipeline.controller.main"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        with minio_server() as minio:
            assert minio.pod_endpoint, "the cluster bridge is needed for pods to reach the S3 test server"
            apply(namespace, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-keys"},
                              "stringData": minio.env()})
            bucket = "bench-" + uuid.uuid4().hex[:8]
            s3 = minio.client()
            s3.create_bucket(Bucket=bucket)
            size = upload_rows(s3, bucket, args.rows)
            print(f"{args.rows:,} rows, {size / 1e6:.0f} MB of CSV in 4 objects", flush=True)
            rows = []
            for label, cores, profile, k8s in (
                    ("local[1]", 1, {**DRIVER}, False),
                    ("2 executors", 2, {**DRIVER, **EXECUTORS, "mode": "kubernetes",
                                        "serviceAccountName": "kdp-spark-driver"}, True)):
                for n in range(args.repeat):
                    tag = f"{'k8s' if k8s else 'local'}-{n}"
                    mine = ours(namespace, f"ours-{tag}", minio.pod_endpoint, bucket, profile)
                    base = direct(namespace, f"direct-{tag}", minio.pod_endpoint, bucket, k8s)
                    rows.append((label, mine, base, cores))
                    print(f"{label:12} ours {mine:7.1f}s  direct {base:7.1f}s  ratio {mine / base:5.2f}  "
                          f"rows/s/core ours {args.rows / mine / cores:10,.0f}  direct "
                          f"{args.rows / base / cores:10,.0f}", flush=True)
                    for side in (f"ours-{tag}", f"direct-{tag}"):
                        before, inside, after = PHASES[side]
                        print(f"{'':12} {side:16} to the container's start {before:5.1f}s  container "
                              f"{inside:5.1f}s  end seen after {after:5.1f}s", flush=True)
    finally:
        operator.terminate()
        operator.wait(15)
        log.close()
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
