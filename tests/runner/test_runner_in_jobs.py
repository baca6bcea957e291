"""The runner inside real Jobs on the cluster, against the real servers, as the operator launches it.

Each test writes a Pipeline spec, resolves one task with the operator's own code
(``core.resolve``) and builds its Job with ``k8s.jobs.build_job_spec``: the
image, non-root user, read-only root filesystem, scratch volumes, termination
message path and ``secretKeyRef`` credentials are exactly what the operator
creates. Only the ownerReferences are dropped (there is no PipelineRun here and
the garbage collector would delete a Job whose owner does not exist); the test
namespace's deletion cleans up instead. The results are read the way the
operator reads them: the pod's ``terminated.exitCode`` and ``terminated.message``
and its log, through the API.

The pods reach the servers on the host's address on the cluster bridge
(``minio.pod_endpoint`` and friends, see tests/fixtures/servers.py).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fixtures.cluster import KubeCluster
from fixtures.servers import MotoServer, S3Server, SqlServer, Webhook
from runner_helpers import resolve, template

from datapipeline.cli.ops import log_key
from datapipeline.core.definition import parse_pipeline
from datapipeline.core.task import TaskResult
from datapipeline.k8s.jobs import Owner, build_job_spec

pytestmark = [pytest.mark.cluster, pytest.mark.servers]

PIPELINE, RUN = "p1", "p1-20261121t1000z"
AWS_SECRET, DB_SECRET = "aws-credentials", "db-credentials"
POD_TIMEOUT = 240  # a busy two-core machine shared with other test sessions
# Not CreateContainerConfigError: the kubelet retries it ("failed to sync secret cache" under load).
FAILED_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                  "CreateContainerError", "RunContainerError"}


@dataclass
class JobRun:
    name: str
    exit_code: int
    message: str  # the termination message
    log: str  # the pod's log
    job: dict[str, Any]  # the Job and Pod objects as the API returns them
    pod: dict[str, Any]

    @property
    def result(self) -> TaskResult:
        return TaskResult.from_json(self.message)

    def __str__(self) -> str:
        return f"job {self.name}: exit {self.exit_code}\nmessage: {self.message}\nlog:\n{self.log}"


class Jobs:
    """Creates the operator's Job for one task of a Pipeline spec and waits for its pod to end."""

    def __init__(self, cluster: KubeCluster, namespace: str) -> None:
        from kubernetes import client

        self.cluster, self.namespace = cluster, namespace
        self.core, self.batch = client.CoreV1Api(cluster.api), client.BatchV1Api(cluster.api)
        self.runs: list[JobRun] = []

    def secret(self, name: str, data: dict[str, str]) -> None:
        self.core.create_namespaced_secret(self.namespace, {"apiVersion": "v1", "kind": "Secret",
                                                            "metadata": {"name": name}, "stringData": data})

    def run(self, spec: dict[str, Any], kind: str, obj: str, activity: str | None = None, *, attempt: int = 1,
            values: dict[str, Any] | None = None, guarded_node: str | None = None,
            node: dict[str, Any] | None = None) -> JobRun:
        resolved = resolve(spec, kind, obj, activity, attempt, pipeline=PIPELINE, run=RUN, values=values,
                           guarded_node=guarded_node, node=node)
        name = f"{re.sub(r'[^a-z0-9]+', '-', obj.lower()).strip('-')[:40]}-{uuid.uuid4().hex[:5]}"
        manifest = build_job_spec(name=name, namespace=self.namespace, owner=Owner(RUN, "no-such-uid"),
                                  pipeline=PIPELINE, task=resolved.task,
                                  definition=parse_pipeline({**spec, "values": {**spec.get("values", {}),
                                                                                **(values or {})}}),
                                  activity=activity or obj, secrets=resolved.secrets, extra_env=dict(resolved.env),
                                  environ={"DATAPIPELINE_RUNNER_IMAGE": self.cluster.runner_image})
        del manifest["metadata"]["ownerReferences"]
        self.batch.create_namespaced_job(self.namespace, manifest)
        run = self._wait(name)
        self.runs.append(run)
        return run

    def _wait(self, name: str) -> JobRun:
        deadline = time.monotonic() + POD_TIMEOUT
        state = "no pod yet"
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={name}").items
            statuses = (pods[0].status.container_statuses or []) if pods else []
            if statuses and statuses[0].state.terminated:
                pod, terminated = pods[0], statuses[0].state.terminated
                log = self.core.read_namespaced_pod_log(pod.metadata.name, self.namespace)
                serialize = self.cluster.api.sanitize_for_serialization
                job = serialize(self.batch.read_namespaced_job(name, self.namespace))
                return JobRun(name, terminated.exit_code, terminated.message or "", log, job,
                              serialize(self.core.read_namespaced_pod(pod.metadata.name, self.namespace)))
            if statuses and statuses[0].state.waiting:
                state = f"waiting: {statuses[0].state.waiting.reason}: {statuses[0].state.waiting.message}"
                if statuses[0].state.waiting.reason in FAILED_WAITING:
                    break
            elif pods:
                state = f"pod phase {pods[0].status.phase}"
            time.sleep(0.5)
        events = self.core.list_namespaced_event(self.namespace).items
        detail = "\n".join(f"{e.involved_object.name}: {e.reason}: {e.message}" for e in events)
        raise AssertionError(f"job {name} did not finish within {POD_TIMEOUT}s ({state}); events:\n{detail}")

    def events(self) -> str:
        return json.dumps(self.cluster.api.sanitize_for_serialization(
            self.core.list_namespaced_event(self.namespace).items))


@pytest.fixture
def jobs(kube_cluster: KubeCluster, namespace: str, minio: S3Server, postgres: SqlServer, mariadb: SqlServer,
         moto: MotoServer) -> Jobs:
    """The cluster first, then the servers: they listen on the bridge only if it is up when they start."""
    for server in (minio.pod_endpoint, postgres.pod_jdbc, mariadb.pod_jdbc, moto.pod_endpoint):
        if server is None:
            pytest.skip("the servers do not listen on the cluster bridge (it was down when they started)")
    j = Jobs(kube_cluster, namespace)
    j.secret(AWS_SECRET, {"AWS_ACCESS_KEY_ID": minio.access_key, "AWS_SECRET_ACCESS_KEY": minio.secret_key})
    j.secret(DB_SECRET, {"postgres": postgres.password, "mariadb": mariadb.password})
    return j


def pipeline(minio: S3Server, base: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    """A Pipeline spec (``base``: a template's) whose S3 is MinIO as the pods see it, credentials from a Secret."""
    aws = {"region": "us-east-1", "s3EndpointUrl": minio.pod_endpoint, "s3PathStyle": True,
           "credentialsSecret": AWS_SECRET, **sections.pop("aws", {})}
    return {**(base or {"scheduleType": "ondemand"}), "aws": aws, **sections}


def database(server: SqlServer, name: str = "db", type_: str = "JdbcDatabase") -> dict[str, Any]:
    key = "postgres" if server.dialect == "postgresql" else "mariadb"
    return {"name": name, "type": type_, "connectionString": server.pod_jdbc, "username": server.user,
            "passwordSecret": {"name": DB_SECRET, "key": key}}


def put(minio: S3Server, bucket: str, key: str, text: str) -> None:
    minio.client().put_object(Bucket=bucket, Key=key, Body=text.encode())


def get(minio: S3Server, bucket: str, key: str) -> str:
    body: bytes = minio.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body.decode()


def finished(run: JobRun) -> TaskResult:
    assert run.exit_code == 0, str(run)
    result = run.result
    assert result.status == "FINISHED", str(run)
    assert "Traceback" not in run.log, str(run)
    return result


def fresh_table(server: SqlServer, table: str, ddl: str) -> str:
    server.sql(f"DROP TABLE IF EXISTS {table}")
    server.sql(f"CREATE TABLE {table} {ddl}")
    return table


# --------------------------------------------------------------------------------- ShellCommandActivity
def test_shell_command_with_staging_and_a_stored_log(jobs: Jobs, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "in/a.csv", "3,c\n1,a\n")
    put(minio, bucket, "in/b.csv", "2,b\n")
    spec = pipeline(minio, pipelineLogUri=f"s3://{bucket}/logs/", dataNodes=[
        {"name": "raw", "type": "S3DataNode", "directoryPath": f"s3://{bucket}/in/"},
        {"name": "sorted", "type": "S3DataNode", "directoryPath": f"s3://{bucket}/out/"},
    ], activities=[{
        "name": "sort", "type": "ShellCommandActivity", "input": ["raw"], "output": ["sorted"], "stage": True,
        "command": 'cat "$INPUT1_STAGING_DIR"/*.csv | sort > "$OUTPUT1_STAGING_DIR/all.csv"; '
                   'echo "staged $(ls "$INPUT1_STAGING_DIR" | wc -l) files as $(id -u)"',
    }])
    run = jobs.run(spec, "activity", "sort")
    result = finished(run)
    assert result.output_uris == (f"s3://{bucket}/out/all.csv",)
    assert get(minio, bucket, "out/all.csv") == "1,a\n2,b\n3,c\n"
    assert "INFO shell: stdout: staged 2 files as 10001" in run.log
    # The log outlives the pod: everything the pod printed, up to the upload itself, is stored.
    url = log_key(f"s3://{bucket}/logs/", PIPELINE, RUN, "sort", 1)
    stored = get(minio, bucket, url.removeprefix(f"s3://{bucket}/"))
    assert run.log.startswith(stored), (run.log, stored)
    assert run.log[len(stored):].strip().endswith(f"INFO runner: log uploaded to {url}")
    assert "INFO shell: stdout: staged 2 files as 10001" in stored
    assert f"result: {run.message}" in stored


# --------------------------------------------------------------------------------- CopyActivity
def test_copy_s3_csv_into_postgres(jobs: Jobs, minio: S3Server, bucket: str, postgres: SqlServer) -> None:
    postgres.sql("DROP TABLE IF EXISTS job_orders")
    put(minio, bucket, "orders/2026-11-21.csv", 'order_id,customer,amount\n1,"Smith, J",9.5\n2,Doe,\n3,Roe,1e3\n')
    spec = pipeline(
        minio, databases=[database(postgres, "warehouse")],
        dataFormats=[{"name": "orders-csv", "type": "CSV", "column": ["order_id", "customer", "amount"],
                      "headerRow": True}],
        dataNodes=[
            {"name": "daily-orders", "type": "S3DataNode", "dataFormat": "orders-csv",
             "filePath": f"s3://{bucket}/orders/#{{format(@scheduledStartTime, 'YYYY-MM-dd')}}.csv"},
            {"name": "orders-table", "type": "SqlDataNode", "database": "warehouse", "table": "job_orders",
             "createTableSql": "CREATE TABLE IF NOT EXISTS job_orders (order_id int PRIMARY KEY, customer text, "
                               "amount numeric)"}],
        activities=[{"name": "load-orders", "type": "CopyActivity", "input": ["daily-orders"],
                     "output": ["orders-table"]}])
    result = finished(jobs.run(spec, "activity", "load-orders"))
    assert (result.rows_read, result.rows_written) == (3, 3)
    assert [(i, c, None if a is None else float(a)) for i, c, a in
            postgres.sql("SELECT order_id, customer, amount FROM job_orders ORDER BY 1")] == [
        (1, "Smith, J", 9.5), (2, "Doe", None), (3, "Roe", 1000.0)]


def test_copy_mysql_table_to_s3_with_the_template(jobs: Jobs, minio: S3Server, bucket: str,
                                                  mariadb: SqlServer) -> None:
    fresh_table(mariadb, "job_shop", "(id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2))")
    mariadb.sql("INSERT INTO job_shop VALUES (1, 'tea', 2.50), (2, 'a \"quoted\", name', NULL)")
    spec = pipeline(minio, template("mysql-to-s3-full"), databases=[database(mariadb, "source-db")])
    run = jobs.run(spec, "activity", "copy-table",
                   values={"myMySqlTable": "job_shop", "myOutputS3Loc": f"s3://{bucket}/mysql"})
    result = finished(run)
    assert result.rows_written == 2
    key = "mysql/2026-11-21-10-00-00/part-00000.csv"
    assert result.output_uris == (f"s3://{bucket}/{key}",)
    assert get(minio, bucket, key) == '1,tea,2.50\n2,"a ""quoted"", name",\n'


# --------------------------------------------------------------------------------- SqlActivity
def test_sql_activity_with_bound_arguments(jobs: Jobs, minio: S3Server, postgres: SqlServer) -> None:
    fresh_table(postgres, "job_daily", "(day date PRIMARY KEY, note text)")
    spec = pipeline(minio, databases=[database(postgres)], activities=[{
        "name": "mark-day", "type": "SqlActivity", "database": "db",
        "script": "INSERT INTO job_daily VALUES (CAST(? AS date), ?); UPDATE job_daily SET note = note || '!'",
        "scriptArgument": ["#{format(@scheduledStartTime, 'YYYY-MM-dd')}", "it's; done"]}])
    result = finished(jobs.run(spec, "activity", "mark-day"))
    assert result.rows_written == 2
    assert [(str(d), n) for d, n in postgres.sql("SELECT day, note FROM job_daily")] == [("2026-11-21", "it's; done!")]


# --------------------------------------------------------------------------------- RedshiftCopyActivity
def test_redshift_copy_keep_existing_with_the_template(jobs: Jobs, minio: S3Server, bucket: str,
                                                       postgres: SqlServer) -> None:
    fresh_table(postgres, "job_wh", "(id int PRIMARY KEY, customer text, amount numeric)")
    postgres.sql("INSERT INTO job_wh VALUES (1, 'old', 1), (9, 'untouched', 9)")
    put(minio, bucket, "landing/part-1.csv", "1,NEW,10\n2,new,20\n")
    spec = pipeline(minio, template("s3-to-warehouse"),
                    databases=[database(postgres, "warehouse", "RedshiftDatabase")])
    values = {"myInputS3Loc": f"s3://{bucket}/landing/", "myWarehouseTable": "job_wh"}
    check = jobs.run(spec, "precondition", "input-present", "load", values=values)
    finished(check)
    result = finished(jobs.run(spec, "activity", "load", values=values))
    assert result.rows_read == 2
    assert postgres.sql("SELECT id, customer, amount::int FROM job_wh ORDER BY id") == [
        (1, "old", 1), (2, "new", 20), (9, "untouched", 9)]


# --------------------------------------------------------------------------------- precondition
def test_s3_key_exists_not_met_then_met(jobs: Jobs, minio: S3Server, bucket: str) -> None:
    spec = pipeline(minio, preconditions=[
        {"name": "file-arrived", "type": "S3KeyExists",
         "s3Key": f"s3://{bucket}/orders/#{{format(@scheduledStartTime, 'YYYY-MM-dd')}}.csv"}],
        dataNodes=[{"name": "orders", "type": "S3DataNode", "filePath": f"s3://{bucket}/orders/x.csv",
                    "precondition": ["file-arrived"]}],
        activities=[{"name": "wait", "type": "ShellCommandActivity", "input": ["orders"], "command": "true"}])
    run = jobs.run(spec, "precondition", "file-arrived", "wait", guarded_node="orders")
    assert run.exit_code == 75, run
    assert run.result == TaskResult("FALSE", error_id="Precondition.NotMet", error_message=(
        f"S3KeyExists file-arrived: s3://{bucket}/orders/2026-11-21.csv does not exist"))
    put(minio, bucket, "orders/2026-11-21.csv", "1\n")
    assert finished(jobs.run(spec, "precondition", "file-arrived", "wait", attempt=2, guarded_node="orders")) == \
        TaskResult("FINISHED")


# --------------------------------------------------------------------------------- action
def test_webhook_with_headers_from_a_secret(jobs: Jobs, minio: S3Server, webhook: Webhook) -> None:
    if webhook.pod_url is None:
        pytest.skip("the webhook receiver does not listen on the cluster bridge")
    token = "Bearer hook-token-" + uuid.uuid4().hex
    jobs.secret("hook-headers", {"Authorization": token})
    webhook.fail_first = 1  # one retry, with the runner's real backoff
    spec = pipeline(minio, actions=[{
        "name": "notify", "type": "Webhook", "url": webhook.pod_url, "headersFromSecret": "hook-headers",
        "subject": "#{node.@id} failed", "message": "Run of #{node.@scheduledStartTime} failed: #{node.errorMessage}"}],
        activities=[{"name": "load", "type": "ShellCommandActivity", "command": "false", "onFail": ["notify"]}])
    node = {"@id": "load", "name": "load", "@status": "FAILED", "@attemptCount": 3,  # as core.runstate gives it
            "@scheduledStartTime": "2026-11-21T10:00:00Z", "errorId": "S3.NoSuchKey", "errorMessage": "S3.NoSuchKey"}
    run = jobs.run(spec, "action", "notify", "load", node=node)
    finished(run)
    assert len(webhook.requests) == 2, webhook.requests
    request = webhook.requests[-1]
    assert request["headers"]["Authorization"] == token
    assert request["body"] == {"subject": "load failed", "message": "Run of 2026-11-21T10:00:00 failed: S3.NoSuchKey",
                               "pipeline": PIPELINE, "run": RUN, "activity": "load", "status": "FAILED"}
    for text in (run.log, run.message, json.dumps(run.job), json.dumps(run.pod)):
        assert token.split()[1] not in text


# --------------------------------------------------------------------------------- a failure
def test_bad_csv_fails_with_a_clear_termination_message(jobs: Jobs, minio: S3Server, bucket: str,
                                                        postgres: SqlServer) -> None:
    fresh_table(postgres, "job_bad", "(id int PRIMARY KEY, name text)")
    postgres.sql("INSERT INTO job_bad VALUES (0, 'existing')")
    put(minio, bucket, "bad.csv", "1,a\n2,b\n3,\"unterminated\n")
    spec = pipeline(minio, databases=[database(postgres)], dataNodes=[
        {"name": "in", "type": "S3DataNode", "filePath": f"s3://{bucket}/bad.csv"},
        {"name": "out", "type": "SqlDataNode", "database": "db", "table": "job_bad"}],
        activities=[{"name": "load", "type": "CopyActivity", "input": ["in"], "output": ["out"]}])
    run = jobs.run(spec, "activity", "load")
    assert run.exit_code == 1, run
    assert (run.result.status, run.result.error_id, run.result.error_message) == (
        "FAILED", "Format.MalformedRow", f"input 'in' (s3://{bucket}/bad.csv): line 3 is not valid CSV: unexpected "
        "end of data")
    assert run.result.rows_written is None  # nothing stays written
    assert "Traceback" not in run.log
    assert f"ERROR runner: Format.MalformedRow: input 'in' (s3://{bucket}/bad.csv): line 3" in run.log
    assert postgres.sql("SELECT id FROM job_bad") == [(0,)]  # rolled back


# --------------------------------------------------------------------------------- secrets
def test_no_secret_value_leaks_from_jobs(jobs: Jobs, minio: S3Server, bucket: str, postgres: SqlServer) -> None:
    """Credentials from real Secrets, echoed by a command and used by a failing load: never shown anywhere."""
    secrets = [minio.secret_key, postgres.password]
    spec = pipeline(minio, pipelineLogUri=f"s3://{bucket}/logs", databases=[database(postgres)], activities=[
        {"name": "leaky", "type": "ShellCommandActivity",
         "command": 'echo "key: $AWS_SECRET_ACCESS_KEY"; env | sort; echo "stderr $AWS_SECRET_ACCESS_KEY" >&2; exit 4'},
        {"name": "broken-sql", "type": "SqlActivity", "database": "db",
         "script": "SELECT 1; SELECT no_such_column FROM pg_class"}])
    leaky = jobs.run(spec, "activity", "leaky")
    assert leaky.exit_code == 1, leaky
    assert leaky.result == TaskResult("FAILED", error_id="Shell.NonZeroExit", error_message=(
        "ShellCommandActivity leaky: the command exited with status 4; last stderr line: stderr ***"))
    assert "INFO shell: stdout: key: ***" in leaky.log and "stdout: AWS_SECRET_ACCESS_KEY=***" in leaky.log
    broken = jobs.run(spec, "activity", "broken-sql")
    assert broken.exit_code == 1, broken
    assert (broken.result.error_id, broken.result.error_message) == (
        "SQL.BadRow", 'SqlActivity broken-sql statement 2: column "no_such_column" does not exist'), broken
    stored = [get(minio, bucket, log_key(f"s3://{bucket}/logs", PIPELINE, RUN, name, 1).split("/", 3)[3])
              for name in ("leaky", "broken-sql")]
    assert all("result: {" in text for text in stored)
    # The scan: pod logs, termination messages, Job and Pod objects, stored logs, the namespace's events.
    texts = {"events": jobs.events(), **{f"stored log {i}": t for i, t in enumerate(stored)}}
    for run in jobs.runs:
        texts.update({f"{run.name} log": run.log, f"{run.name} message": run.message,
                      f"{run.name} job": json.dumps(run.job), f"{run.name} pod": json.dumps(run.pod)})
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret value appears in the {where}"
    env = {e["name"]: e for e in leaky.job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"] == {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {
        "secretKeyRef": {"name": AWS_SECRET, "key": "AWS_SECRET_ACCESS_KEY"}}}
    db_env = {e["name"]: e for e in broken.job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert [e["valueFrom"] for name, e in db_env.items() if name.endswith("_PASSWORD")] == [
        {"secretKeyRef": {"name": DB_SECRET, "key": "postgres"}}]


# --------------------------------------------------------------------------------- DynamoDB tool
def test_dynamodb_export_template(jobs: Jobs, minio: S3Server, bucket: str, moto: MotoServer) -> None:
    table = "orders-" + uuid.uuid4().hex[:6]
    ddb = moto.client("dynamodb")
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    for i in range(30):
        ddb.put_item(TableName=table, Item={"id": {"S": f"o{i}"}, "n": {"N": str(i)}})
    spec = pipeline(minio, template("dynamodb-export"), aws={"dynamodbEndpointUrl": moto.pod_endpoint})
    values = {"myDDBTableName": table, "myOutputS3Loc": f"s3://{bucket}/ddb"}
    finished(jobs.run(spec, "precondition", "table-exists", "export-table", values=values))
    run = jobs.run(spec, "activity", "export-table", values=values)
    finished(run)
    assert f"stdout: exported 30 items from table {table}" in run.log
    lines = get(minio, bucket, "ddb/2026-11-21-10-00-00/items.json").splitlines()
    assert sorted(json.loads(line)["id"]["S"] for line in lines) == sorted(f"o{i}" for i in range(30))

