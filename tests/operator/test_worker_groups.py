"""Worker groups in mode poll on the real cluster: pollers as plain processes on the host (docs/worker-groups.md).

The host is "the user's own machine": it reaches the API server and a PostgreSQL that listens on its loopback
only, which no pod can reach.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.servers import S3Server, SqlServer
from kdp_harness import ROOT, Operator, pipeline_doc, shell

pytestmark = pytest.mark.cluster
ONDEMAND: dict[str, Any] = {"scheduleType": "ondemand", "activated": False}
AWS_SECRET = "wg-aws"


class Pollers:
    """``datapipeline-runner poll`` processes started by a test, stopped (or killed) at its end."""

    def __init__(self, op: Operator, tmp: Path) -> None:
        self.op, self.tmp = op, tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, group: str, *extra: str, kubeconfig: str | None = None,
              namespace: str | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, "KUBECONFIG": kubeconfig or self.op.kubeconfig, "PYTHONPATH": str(ROOT / "operator")}
        log = (self.tmp / f"poller-{name}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", "datapipeline.runner.main", "poll", "--worker-group", group,
                                 "--namespace", namespace or self.op.namespace, "--name", name, *extra],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"poller-{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        """SIGKILL, as a machine that dies: the poller, and (through PDEATHSIG, a SIGTERM) the task it ran."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(45)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture()
def pollers(operator: Operator, tmp_path: Path) -> Iterator[Pollers]:
    found = Pollers(operator, tmp_path)
    try:
        yield found
    finally:
        found.stop_all()


def attempts_of(op: Operator, run: str) -> list[dict[str, Any]]:
    return list(op.get("taskattempts", selector=f"datapipeline.io/run={run}")["items"])


def test_a_poller_on_the_host_copies_from_a_loopback_database_while_other_activities_run_as_jobs(
        operator: Operator, pollers: Pollers, minio: S3Server, loopback_postgres: SqlServer, tmp_path: Path) -> None:
    if minio.pod_endpoint is None:
        pytest.skip("the S3 test server does not listen on the cluster bridge")
    db = loopback_postgres
    db.sql("DROP TABLE IF EXISTS onprem_orders")
    db.sql("CREATE TABLE onprem_orders (id INT PRIMARY KEY, item TEXT, qty INT)")
    db.sql("INSERT INTO onprem_orders VALUES (1, 'tea', 3), (2, 'a \"quoted\", item', 5)")
    bucket = "wg-" + uuid.uuid4().hex[:10]
    minio.client().create_bucket(Bucket=bucket)
    operator.kubectl("create", "secret", "generic", AWS_SECRET, f"--from-literal=AWS_ACCESS_KEY_ID={minio.access_key}",
                     f"--from-literal=AWS_SECRET_ACCESS_KEY={minio.secret_key}")
    # The database password exists only on the poller's machine: no Secret in the cluster holds it.
    secrets = tmp_path / "secrets"
    (secrets / "onprem-db").mkdir(parents=True)
    (secrets / "onprem-db" / "password").write_text(db.password + "\n")
    operator.apply(pipeline_doc("onprem", [
        shell("announce", "echo starting"),
        {"name": "extract", "type": "CopyActivity", "workerGroup": "onprem", "dependsOn": ["announce"],
         "input": ["orders-table"], "output": ["orders-csv"], "maximumRetries": 0},
        shell("check", "cat ${INPUT1_STAGING_DIR}/*", dependsOn=["extract"], input=["orders-csv"], stage=True)],
        **ONDEMAND, workerGroups={"onprem": {"mode": "poll", "leaseSeconds": 15}},
        aws={"region": "us-east-1", "s3EndpointUrl": minio.pod_endpoint, "s3PathStyle": True,
             "credentialsSecret": AWS_SECRET},
        databases=[{"name": "warehouse", "type": "JdbcDatabase",
                    "connectionString": f"jdbc:postgresql://127.0.0.1:{db.port}/{db.database}",
                    "username": db.user, "passwordSecret": {"name": "onprem-db", "key": "password"}}],
        dataNodes=[{"name": "orders-table", "type": "SqlDataNode", "database": "warehouse", "table": "onprem_orders",
                    "selectQuery": "SELECT * FROM onprem_orders ORDER BY id"},
                   {"name": "orders-csv", "type": "S3DataNode", "directoryPath": f"s3://{bucket}/orders",
                    "dataFormat": "csv"}],
        dataFormats=[{"name": "csv", "type": "CSV"}]))
    pollers.start("host-a", "onprem", "--secrets-dir", str(secrets))
    operator.cli("run", "onprem", "--name", "onprem-1")
    run = operator.wait_phase("onprem-1", ("Succeeded", "Failed"), timeout=240)
    assert run["status"]["phase"] == "Succeeded", json.dumps(run["status"]["activities"], indent=1) + \
        pollers.log("host-a")[-3000:]

    attempt = attempts_of(operator, "onprem-1")
    assert [a["metadata"]["name"] for a in attempt] == ["onprem-1-extract-1"]
    assert attempt[0]["status"]["phase"] == "Succeeded" and attempt[0]["status"]["claimedBy"] == "host-a"
    kinds = {j["metadata"]["labels"]["datapipeline.io/activity"] for j in operator.jobs("onprem-1")}
    assert kinds == {"announce", "check"}  # extract ran on the host, not in a pod
    text = _only_object(minio, bucket, "orders/")
    assert text == '1,tea,3\n2,"a ""quoted"", item",5\n'
    assert '2,"a ""quoted"", item",5' in operator.cli("logs", "onprem-1", "--activity", "check")
    assert "rows" in operator.cli("logs", "onprem-1", "--activity", "extract")  # the tail the poller kept
    # No value of the on-prem password reached the cluster: not the attempt, the run or any Event.
    for where in (json.dumps(attempt), json.dumps(run), json.dumps(operator.get("events"))):
        assert db.password not in where


def _only_object(minio: S3Server, bucket: str, prefix: str) -> str:
    keys = [o["Key"] for o in minio.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    assert len(keys) == 1, keys
    body: bytes = minio.client().get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    return body.decode()


def test_two_pollers_run_each_of_twenty_attempts_once_and_a_killed_pollers_attempt_is_retried(
        operator: Operator, pollers: Pollers, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()
    operator.apply(pipeline_doc("pair", [
        shell(f"t{i:02d}", f"echo t{i:02d} >> {ran}/ran.log; sleep 1", workerGroup="pair", maximumRetries=0)
        for i in range(20)], **ONDEMAND, workerGroups={"pair": {"mode": "poll", "leaseSeconds": 12}}))
    pollers.start("p1", "pair", "--max-tasks", "2")
    pollers.start("p2", "pair", "--max-tasks", "2")
    operator.cli("run", "pair", "--name", "pair-1")
    run = operator.wait_phase("pair-1", ("Succeeded", "Failed"), timeout=240)
    assert run["status"]["phase"] == "Succeeded"
    lines = (ran / "ran.log").read_text().split()
    assert sorted(lines) == [f"t{i:02d}" for i in range(20)]  # each attempt ran exactly once
    claimed = [a["status"]["claimedBy"] for a in attempts_of(operator, "pair-1")]
    assert len(claimed) == 20 and set(claimed) == {"p1", "p2"}, claimed

    # A poller killed mid-attempt: the lease runs out, the attempt fails as WorkerLost and is retried by the other.
    operator.apply(pipeline_doc("lost", [
        shell("long", f"if [ ! -e {ran}/marker ]; then sleep 300 & echo $! > {ran}/sleep.pid; touch {ran}/marker; "
                      "wait; fi; echo second-time",
              workerGroup="pair", maximumRetries=1, retryDelay="1s")],
        **ONDEMAND, workerGroups={"pair": {"mode": "poll", "leaseSeconds": 12}}))
    operator.cli("run", "lost", "--name", "lost-1")
    first = operator.wait(lambda: [a for a in attempts_of(operator, "lost-1")
                                   if (a.get("status") or {}).get("claimedBy")], timeout=60)[0]
    operator.wait(lambda: (ran / "marker").exists(), timeout=60)
    victim = first["status"]["claimedBy"]
    survivor = "p2" if victim == "p1" else "p1"
    sleeper = int((ran / "sleep.pid").read_text())
    pollers.kill(victim)
    # The killed poller's task stops with everything it started (the runner gets SIGTERM and stops its command's
    # process group): nothing of it runs on while its retry runs elsewhere.
    operator.wait(lambda: not _alive(sleeper), timeout=30)
    run = operator.wait_phase("lost-1", ("Succeeded", "Failed"), timeout=120)
    assert run["status"]["phase"] == "Succeeded", json.dumps(run["status"]["activities"], indent=1)
    history = run["status"]["activities"]["long"]["attempts"]
    assert [a["n"] for a in history] == [1, 2]
    assert "WorkerLost" in json.dumps(history[0]) or "stopped renewing" in json.dumps(history[0])
    by_name = {a["metadata"]["name"]: a for a in attempts_of(operator, "lost-1")}
    assert by_name["lost-1-long-1"]["status"]["phase"] == "Failed"
    assert by_name["lost-1-long-1"]["status"]["reason"] == "WorkerLost"
    assert by_name["lost-1-long-2"]["status"]["claimedBy"] == survivor
    assert "second-time" in operator.cli("logs", "lost-1", "--activity", "long")

    # Cancel deletes the TaskAttempt; the poller running it stops the task at once.
    operator.apply(pipeline_doc("stop", [shell("wait", "sleep 300", workerGroup="pair")], **ONDEMAND,
                                workerGroups={"pair": {"mode": "poll"}}))
    operator.cli("run", "stop", "--name", "stop-1")
    operator.wait(lambda: (operator.get("pipelinerun", "stop-1").get("status") or {}).get("activities", {})
                  .get("wait", {}).get("status") == "RUNNING", timeout=60)
    operator.cli("cancel", "stop-1")
    run = operator.wait_phase("stop-1", ("Cancelled",), timeout=60)
    assert run["status"]["activities"]["wait"]["status"] == "CANCELED"
    operator.wait(lambda: not attempts_of(operator, "stop-1"), timeout=30)
    operator.wait(lambda: "stopping stop-1-wait-1 (deleted)" in pollers.log(survivor), timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_poller_identity_may_claim_only_its_own_groups_attempts_in_its_namespace(
        operator: Operator, kube_cluster: Any, tmp_path: Path) -> None:
    ns = operator.namespace
    other_ns = f"{ns}-x"
    operator.kubectl("create", "namespace", other_ns)
    try:
        _claims_as_a_poller(operator, ns, other_ns, tmp_path)
    finally:
        operator.kubectl("delete", "namespace", other_ns, "--wait=false", check=False)


def _claims_as_a_poller(operator: Operator, ns: str, other_ns: str, tmp_path: Path) -> None:
    release = "wg" + uuid.uuid4().hex[:6]
    rendered = subprocess.run(
        ["helm", "template", release, str(ROOT / "charts" / "kube-datapipeline"), "--show-only",
         "templates/pollers.yaml", "--set-json",
         "workerGroups.pollers=" + json.dumps([{"workerGroup": "onprem", "namespace": ns}])],
        capture_output=True, text=True, check=True).stdout
    operator.kubectl("apply", "-f", "-", stdin=rendered)
    try:
        token = operator.kubectl("create", "token", f"{release}-poller-onprem", "--duration", "10m").strip()
        for where, group in ((ns, "onprem"), (ns, "other"), (other_ns, "onprem")):
            operator.kubectl("-n", where, "apply", "-f", "-", stdin=json.dumps(_attempt(f"a-{group}", group)))
        as_poller = _as_token(operator.kubeconfig, token, tmp_path)
        # The API server loads a new policy within moments: wait for it with dry runs (nothing is written).
        operator.wait(lambda: _claim(as_poller, ns, "a-other", dry_run=True)[0] == 403, timeout=30, every=0.5)
        assert _claim(as_poller, ns, "a-onprem") == (200, "")
        status, message = _claim(as_poller, ns, "a-other")
        assert status == 403
        assert f"this poller (system:serviceaccount:{ns}:{release}-poller-onprem) serves another worker group " \
               "than other" in message
        status, message = _claim(as_poller, other_ns, "a-onprem")
        assert status == 403 and "cannot patch resource" in message
        # And a claimed attempt cannot be claimed again, whoever asks (the CRD's own rule).
        refused = subprocess.run(["kubectl", "--kubeconfig", operator.kubeconfig, "-n", ns, "patch", "taskattempt",
                                  "a-onprem", "--subresource", "status", "--type", "merge", "-p",
                                  json.dumps({"status": {"claimedBy": "someone-else"}})],
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and "the attempt is claimed: claimedBy cannot change" in refused.stderr
    finally:
        operator.kubectl("delete", "-f", "-", "--wait=false", stdin=rendered, check=False)


def _attempt(name: str, group: str) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "TaskAttempt",
            "metadata": {"name": name, "labels": {"datapipeline.io/worker-group": group}},
            "spec": {"workerGroup": group, "task": "{}", "leaseSeconds": 60}}


def _claim(as_poller: Any, namespace: str, name: str, dry_run: bool = False) -> tuple[int, str]:
    """The poller's own call: a merge patch of the status (no GET: its Role has none)."""
    from kubernetes.client.exceptions import ApiException

    patch = {"status": {"phase": "Claimed", "claimedBy": "test", "claimTime": "2026-11-30T00:00:00Z",
                        "renewTime": "2026-11-30T00:00:00Z"}}
    try:
        as_poller.patch_namespaced_custom_object_status("datapipeline.io", "v1alpha1", namespace, "taskattempts",
                                                        name, patch, **({"dry_run": "All"} if dry_run else {}))
    except ApiException as error:
        return int(error.status), str(error.body)
    return 200, ""


def _as_token(kubeconfig: str, token: str, tmp_path: Path) -> Any:
    """A client with the cluster's address and CA, authenticated only by ``token``."""
    import base64

    import yaml
    from kubernetes import client

    cluster = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]
    config = client.Configuration()
    config.host = cluster["server"]
    config.api_key = {"authorization": f"Bearer {token}"}
    if cluster.get("certificate-authority-data"):
        ca = tmp_path / "ca.crt"
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        config.ssl_ca_cert = str(ca)
    else:
        config.ssl_ca_cert = cluster.get("certificate-authority")
    return client.CustomObjectsApi(client.ApiClient(config))
