"""The AWS console templates, run by the chart's operator pod against the real test servers.

Each template is applied as a user would apply `datapipeline new` output, with its endpoints pointed at the
servers this session started (reachable from pods on the cluster bridge) and its credentials in Secrets.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_helpers import wait_for
from fixtures.cluster import KubeCluster
from fixtures.servers import S3Server, SqlServer

from datapipeline.cli.templates import template_text

pytestmark = [pytest.mark.cluster, pytest.mark.servers, pytest.mark.e2e]
FINAL = ("Succeeded", "Failed", "Cancelled")


def manifest(name: str, minio: S3Server, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(template_text(name))
    doc["metadata"] = {"name": f"{name[:40]}-{uuid.uuid4().hex[:4]}", "namespace": namespace}
    doc["spec"].setdefault("aws", {}).update({"s3EndpointUrl": minio.pod_endpoint, "s3PathStyle": True,
                                              "credentialsSecret": "s3-credentials", "region": minio.region})
    doc["spec"]["activated"] = True
    return doc


def secrets(cluster: KubeCluster, namespace: str, minio: S3Server, **passwords: str) -> None:
    items = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-credentials"},
              "stringData": {"AWS_ACCESS_KEY_ID": minio.access_key, "AWS_SECRET_ACCESS_KEY": minio.secret_key}}]
    for name, password in passwords.items():
        items.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name.replace("_", "-")},
                      "stringData": {"password": password}})
    apply(cluster, namespace, {"apiVersion": "v1", "kind": "List", "items": items})


def apply(cluster: KubeCluster, namespace: str, doc: dict[str, Any]) -> None:
    result = subprocess.run([cluster.kubectl_bin, "--kubeconfig", cluster.kubeconfig, "-n", namespace, "apply",
                             "-f", "-"], input=json.dumps(doc), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def run_to_the_end(cluster: KubeCluster, namespace: str, pipeline: str, release: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        out = cluster.kubectl("-n", namespace, "get", "pipelineruns", "-l", f"datapipeline.io/pipeline={pipeline}",
                              "-o", "json").stdout
        runs = [r for r in json.loads(out)["items"] if (r.get("status") or {}).get("phase") in FINAL]
        return runs[0] if runs else None

    run: dict[str, Any] = wait_for(finished, 300, f"a run of {pipeline} to finish")
    if run["status"]["phase"] != "Succeeded":
        log = cluster.kubectl("-n", namespace, "logs", f"deploy/{release}-operator", "--tail=60", check=False)
        pytest.fail(f"{pipeline}: {json.dumps(run['status'], indent=1)}\noperator:\n{log.stdout}")
    return run


def test_getting_started_shell(kube_cluster: KubeCluster, namespace: str, release: str, minio: S3Server) -> None:
    doc = manifest("getting-started-shell", minio, namespace)
    doc["spec"].pop("aws")
    apply(kube_cluster, namespace, doc)
    run = run_to_the_end(kube_cluster, namespace, doc["metadata"]["name"], release)
    assert {a["status"] for a in run["status"]["activities"].values()} == {"FINISHED"}


def test_s3_to_warehouse_loads_postgres(kube_cluster: KubeCluster, namespace: str, release: str,
                                       minio: S3Server, postgres: SqlServer) -> None:
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    table = f"orders_{uuid.uuid4().hex[:6]}"
    minio.client().create_bucket(Bucket=bucket)
    minio.client().put_object(Bucket=bucket, Key="orders/day1.csv", Body=b"1,alice,10.50\n2,bob,3.25\n")
    secrets(kube_cluster, namespace, minio, warehouse_credentials=postgres.password)
    doc = manifest("s3-to-warehouse", minio, namespace)
    spec = doc["spec"]
    spec["databases"][0].update(connectionString=postgres.pod_jdbc, username=postgres.user)
    spec["values"] = {"myInputS3Loc": f"s3://{bucket}/orders/", "myWarehouseTable": table,
                      "myCreateTableSql": f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, customer text, "
                                          "amount numeric)"}
    apply(kube_cluster, namespace, doc)
    run_to_the_end(kube_cluster, namespace, doc["metadata"]["name"], release)
    assert postgres.sql(f"SELECT id, customer, amount::text FROM {table} ORDER BY id") == [
        (1, "alice", "10.50"), (2, "bob", "3.25")]


def test_mysql_to_s3_full_copy(kube_cluster: KubeCluster, namespace: str, release: str, minio: S3Server,
                               mariadb: SqlServer) -> None:
    bucket = f"exports-{uuid.uuid4().hex[:8]}"
    table = f"orders_{uuid.uuid4().hex[:6]}"
    minio.client().create_bucket(Bucket=bucket)
    mariadb.sql(f"CREATE TABLE {table} (id INT PRIMARY KEY, customer VARCHAR(32))")
    mariadb.sql(f"INSERT INTO {table} VALUES (1, 'alice'), (2, 'bob')")
    secrets(kube_cluster, namespace, minio, mysql_credentials=mariadb.password)
    doc = manifest("mysql-to-s3-full", minio, namespace)
    spec = doc["spec"]
    spec["databases"][0].update(connectionString=mariadb.pod_jdbc, username=mariadb.user)
    spec["values"] = {"myMySqlTable": table, "myOutputS3Loc": f"s3://{bucket}/mysql"}
    apply(kube_cluster, namespace, doc)
    run_to_the_end(kube_cluster, namespace, doc["metadata"]["name"], release)
    objects = minio.client().list_objects_v2(Bucket=bucket, Prefix="mysql/").get("Contents", [])
    assert objects, "the copy wrote at least one file"
    body = b"".join(minio.client().get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in objects)
    assert body.decode().splitlines() == ["1,alice", "2,bob"]


def test_s3_to_postgres_example_for_one_interval(kube_cluster: KubeCluster, namespace: str, release: str,
                                                 minio: S3Server, postgres: SqlServer) -> None:
    """examples/s3-to-postgres.yaml as written, pointed at the test servers, for one scheduled interval."""
    docs = list(yaml.safe_load_all((Path(__file__).resolve().parents[2] / "examples" / "s3-to-postgres.yaml")
                                   .read_text()))
    doc = next(d for d in docs if d["kind"] == "Pipeline")
    suffix = uuid.uuid4().hex[:6]
    bucket, table, view = f"landing-{suffix}", f"orders_{suffix}", "daily_revenue"
    minio.client().create_bucket(Bucket=bucket)
    minio.client().put_object(Bucket=bucket, Key="orders/2026-11-20.csv",
                              Body=b"order_id,customer,amount\n1,alice,10.50\n2,bob,3.25\n")
    postgres.sql(f"CREATE TABLE {table} (order_id int PRIMARY KEY, customer text, amount numeric)")
    postgres.sql(f"DROP MATERIALIZED VIEW IF EXISTS {view}")
    postgres.sql(f"CREATE MATERIALIZED VIEW {view} AS SELECT sum(amount) AS revenue FROM {table}")
    secrets(kube_cluster, namespace, minio, warehouse_credentials=postgres.password)
    spec = doc["spec"]
    spec["aws"].update(s3EndpointUrl=minio.pod_endpoint, region=minio.region)
    spec["databases"][0].update(connectionString=postgres.pod_jdbc, username=postgres.user)
    spec["values"] = {"myInputBucket": bucket}
    node = next(n for n in spec["dataNodes"] if n["name"] == "orders-table")
    node["table"] = table
    node["createTableSql"] = node["createTableSql"].replace("orders", table)
    doc["metadata"] = {"name": f"s3-to-postgres-{suffix}", "namespace": namespace}
    apply(kube_cluster, namespace, doc)
    apply(kube_cluster, namespace, {
        "apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
        "metadata": {"name": f"{doc['metadata']['name']}-20261120", "labels": {
            "datapipeline.io/pipeline": doc["metadata"]["name"]}},
        "spec": {"pipelineRef": {"name": doc["metadata"]["name"]}, "trigger": "Manual",
                 "scheduledStartTime": "2026-11-20T02:00:00Z", "scheduledEndTime": "2026-11-21T02:00:00Z"}})
    run_to_the_end(kube_cluster, namespace, doc["metadata"]["name"], release)
    assert postgres.sql(f"SELECT order_id, customer FROM {table} ORDER BY order_id") == [(1, "alice"), (2, "bob")]
    assert postgres.sql(f"SELECT revenue::text FROM {view}") == [("13.75",)]
