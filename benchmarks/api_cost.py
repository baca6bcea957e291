"""API requests per activity attempt, counted from the API server's audit log (issue #12).

    eval "$(python tests/cluster/devcluster.py env)"; python benchmarks/api_cost.py [--runs 20]

The dev cluster's API server writes an audit log (tests/cluster/dc_config.py: Metadata level, no bodies) for
the objects the project touches. This script runs the operator as a host process under its own
ServiceAccount (so its requests carry their own user name), creates ``--runs`` one-activity PipelineRuns at
once (``--activities``: a chain of that many per run; ``--seconds``: each attempt sleeps that long, so its
start is saved on its own; ``--every S``: a Pipeline scheduled every S seconds, ``--runs`` occurrences, makes
the runs instead, so their creation and the Pipeline's status count too), waits until all succeeded, and
counts from the log:

* the operator's reads (get, list) and writes (create, update, patch, delete) per attempt; watches apart;
* every user's writes in the namespace per attempt (the controllers' and the kubelet's included),
  against the same number of bare Jobs running the same container in another namespace, in the same run.

Not a test: it prints a table; goal (issue #12) at most 4 writes and at most 1 read per attempt.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("KDP_RUNNER_IMAGE", "localhost/kube-datapipeline:dev")
AUDIT = Path(os.environ.get("KDP_CLUSTER_DIR", Path.home() / ".cache" / "kube-datapipeline" / "cluster")) / \
    "logs" / "audit.log"
LOG = Path(tempfile.gettempdir()) / "api_cost_operator.log"  # kept for a look when something goes wrong
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
READS = {"get", "list"}


def kubectl(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120, env=env)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def apply(namespace: str, *docs: dict[str, Any]) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                   "items": list(docs)}))


def operator_kubeconfig(namespace: str, directory: Path) -> Path:
    """A kubeconfig for the ServiceAccount "operator" of ``namespace`` (cluster-admin: the identity only
    separates the operator's requests in the audit log; RBAC itself is tested in tests/e2e/test_rbac.py)."""
    kubectl("-n", namespace, "create", "serviceaccount", "operator")
    kubectl("create", "clusterrolebinding", f"{namespace}-operator", "--clusterrole=cluster-admin",
            f"--serviceaccount={namespace}:operator")
    token = kubectl("-n", namespace, "create", "token", "operator", "--duration=2h").strip()
    current = yaml.safe_load(kubectl("config", "view", "--raw", "--minify"))
    cluster = current["clusters"][0]["cluster"]
    if "certificate-authority" in cluster:
        cluster["certificate-authority-data"] = base64.b64encode(Path(cluster.pop("certificate-authority"))
                                                                 .read_bytes()).decode()
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "op",
              "clusters": [{"name": "c", "cluster": cluster}],
              "users": [{"name": "op", "user": {"token": token}}],
              "contexts": [{"name": "op", "context": {"cluster": "c", "user": "op", "namespace": namespace}}]}
    path = directory / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise SystemExit(f"timed out waiting for {what}")


def audit_events(since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
    """Completed requests in [since, until] (the rotated files too)."""
    for path in sorted(AUDIT.parent.glob("audit*.log")):
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("stage") != "ResponseComplete":
                    continue
                when = datetime.fromisoformat(str(event.get("stageTimestamp")).replace("Z", "+00:00"))
                if since <= when <= until:
                    yield event


def count(events: list[dict[str, Any]], namespace: str, user: str | None) -> Counter[str]:
    found: Counter[str] = Counter()
    for event in events:
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace:
            continue
        if user is not None and (event.get("user") or {}).get("username") != user:
            continue
        verb = str(event.get("verb"))
        kind = "write" if verb in WRITES else "read" if verb in READS else verb
        found[kind] += 1
        found[f"{kind} {ref.get('resource')}{'/' + ref['subresource'] if ref.get('subresource') else ''}"] += 1
    return found


def command(seconds: float) -> list[str]:
    return ["sleep", f"{seconds:g}"] if seconds else ["true"]


def cost_pipeline(runs: int, activities: int, seconds: float, every: float | None) -> dict[str, Any]:
    """On demand (the runs created by this script), or scheduled every ``every`` seconds, ``runs`` times."""
    chain = [{"name": f"a{i}", "type": "ShellCommandActivity", "command": " ".join(command(seconds)),
              **({"dependsOn": [f"a{i - 1}"]} if i else {})} for i in range(activities)]
    spec: dict[str, Any] = {"defaults": {"maxActiveInstances": runs}, "successfulRunsHistoryLimit": runs,
                            "activities": chain}
    if every is None:
        spec.update(scheduleType="ondemand", activated=False)
    else:
        spec.update(activated=True, schedule={"period": f"{every:g} seconds", "occurrences": runs,
                                              "startAt": "FIRST_ACTIVATION_DATE_TIME"})
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "cost"},
            "spec": spec}


def run_operator(namespace: str, runs: int, activities: int, seconds: float, every: float | None,
                 directory: Path) -> tuple[datetime, datetime]:
    """The operator's window: from the runs' creation (or the scheduled Pipeline's) to 5 s after the last end."""
    kubeconfig = operator_kubeconfig(namespace, directory)
    pipeline = cost_pipeline(runs, activities, seconds, every)
    if every is None:
        apply(namespace, pipeline)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "DATAPIPELINE_NAMESPACES": namespace,
           "DATAPIPELINE_METRICS_PORT": "0", "DATAPIPELINE_LIVENESS_PORT": "0",
           "PYTHONPATH": str(ROOT / "operator"), "DATAPIPELINE_MIN_SCHEDULE_PERIOD": "0"}
    log = LOG.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "datapipeline.controller.main"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        time.sleep(5)  # startup: CRD checks, the initial listings (not per attempt)
        start = datetime.now(UTC)
        apply(namespace, *[{"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
                            "metadata": {"name": f"cost-{i}"}, "spec": {"pipelineRef": {"name": "cost"}}}
                           for i in range(runs)] if every is None else [pipeline])

        def done() -> bool:
            items = json.loads(kubectl("-n", namespace, "get", "pipelineruns", "-o", "json"))["items"]
            return bool(sum((r.get("status") or {}).get("phase") == "Succeeded" for r in items) == runs)

        wait_until(done, 600 + runs * (every or 0), f"the runs to succeed (operator log: {LOG})")
        time.sleep(5)  # what the operator does after the last run succeeded counts too
        return start, datetime.now(UTC)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def run_bare_jobs(namespace: str, runs: int, seconds: float) -> tuple[datetime, datetime]:
    start = datetime.now(UTC)
    apply(namespace, *[{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"bare-{i}"},
                        "spec": {"backoffLimit": 0, "template": {"spec": {
                            "restartPolicy": "Never", "containers": [{"name": "main", "image": IMAGE,
                                                                      "imagePullPolicy": "Never",
                                                                      "command": command(seconds)}]}}}}
                       for i in range(runs)])

    def done() -> bool:
        items = json.loads(kubectl("-n", namespace, "get", "jobs", "-o", "json"))["items"]
        return sum(bool((j.get("status") or {}).get("succeeded")) for j in items) == runs

    wait_until(done, 600, "the bare Jobs to succeed")
    time.sleep(5)
    return start, datetime.now(UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--activities", type=int, default=1, help="a chain of this many activities per run")
    parser.add_argument("--seconds", type=float, default=0, help="each attempt sleeps this long (default: true)")
    parser.add_argument("--every", type=float, default=None,
                        help="a scheduled Pipeline makes the runs, one per this many seconds (default: on demand)")
    args = parser.parse_args()
    if not AUDIT.exists():
        raise SystemExit(f"no audit log at {AUDIT}: start the dev cluster with tests/cluster/devcluster.py up")
    suffix = uuid.uuid4().hex[:6]
    ours, bare = f"kdp-apicost-{suffix}", f"kdp-apicost-bare-{suffix}"
    for namespace in (ours, bare):
        kubectl("create", "namespace", namespace)
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            window = run_operator(ours, args.runs, args.activities, args.seconds, args.every, Path(tmp))
        bare_window = run_bare_jobs(bare, args.runs * args.activities, args.seconds)
        time.sleep(2)  # the audit backend writes in batches
        user = f"system:serviceaccount:{ours}:operator"
        operator = count(list(audit_events(*window)), ours, user)
        cluster = count(list(audit_events(*window)), ours, None)
        baseline = count(list(audit_events(*bare_window)), bare, None)
    finally:
        for namespace in (ours, bare):
            subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], capture_output=True)
        subprocess.run(["kubectl", "delete", "clusterrolebinding", f"{ours}-operator"], capture_output=True)
    n = args.runs * args.activities
    what = "one-activity runs" if args.activities == 1 else f"runs of {args.activities} activities in a chain"
    what += " created at once" if args.every is None else f" made by the Pipeline's schedule, one per {args.every:g} s"
    print(f"{args.runs} {what} ({n} attempts, {command(args.seconds)}) against {n} bare Jobs, same container")
    print(f"{'':44} {'per attempt':>12} {'goal':>6}")
    print(f"{'operator writes':44} {operator['write'] / n:12.2f} {'<= 4':>6}")
    print(f"{'operator reads (get, list)':44} {operator['read'] / n:12.2f} {'<= 1':>6}")
    print(f"{'operator watches started':44} {operator['watch'] / n:12.2f}")
    print(f"{'all writes in the namespace (ours)':44} {cluster['write'] / n:12.2f}")
    print(f"{'all writes in the namespace (bare Jobs)':44} {baseline['write'] / n:12.2f}")
    print(f"{'ratio':44} {cluster['write'] / max(1, baseline['write']):12.2f}x")
    print("operator requests by kind:")
    for key, value in sorted(operator.items()):
        if " " in key:
            print(f"  {key:42} {value / n:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
