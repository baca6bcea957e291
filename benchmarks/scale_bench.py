"""The controller at scale (issue #12), on the real dev cluster, each figure next to a baseline from the same run.

    eval "$(python tests/cluster/devcluster.py env)"
    python benchmarks/scale_bench.py idle    [--pipelines 1000] [--seconds 120]
    python benchmarks/scale_bench.py restart [--pipelines 1000] [--live-runs 500]
    python benchmarks/scale_bench.py ontime  [--pipelines 200]

* idle: ``--pipelines`` activated Pipelines, none due (a daily cron starting tomorrow). The operator's requests
  per minute (from the API server's audit log, by its own user; watches apart), its resident memory and CPU,
  against the same operator watching an empty namespace.
* restart: the operator started cold with ``--pipelines`` idle Pipelines and ``--live-runs`` live runs (runs of a
  paused Pipeline: live, no Jobs) and one due run: the time from the process's start to that run's first Job,
  against the same with only the due run.
* ontime: ``--pipelines`` Pipelines and as many CronJobs, all due at the same minute: the delay from the minute
  to each one's first Job (p50, p99), ours against the CronJob controller's.

Not tests: they print tables. The operator runs as a host process under its own ServiceAccount, watching only
the benchmark's namespace; the namespaces are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api_cost import AUDIT, IMAGE, READS, WRITES, audit_events, kubectl, operator_kubeconfig

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 200  # objects per kubectl apply


def apply_many(namespace: str, docs: list[dict[str, Any]]) -> None:
    for i in range(0, len(docs), CHUNK):
        kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                       "items": docs[i:i + CHUNK]}))


def pipeline(name: str, cron: str, start: datetime, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": name},
            "spec": {"activated": True, "schedule": {"cron": cron, "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
                     "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true"}], **spec}}


def idle_pipelines(count: int) -> list[dict[str, Any]]:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    return [pipeline(f"idle-{i:04d}", "0 3 * * *", tomorrow) for i in range(count)]


@contextmanager
def namespace(prefix: str) -> Iterator[str]:
    name = f"kdp-{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        subprocess.run(["kubectl", "delete", "namespace", name, "--wait=false"], capture_output=True)
        subprocess.run(["kubectl", "delete", "clusterrolebinding", f"{name}-operator"], capture_output=True)


@contextmanager
def operator(ns: str, directory: Path, kubeconfig: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """The operator as a host process, as the namespace's ServiceAccount "operator" (made unless given)."""
    kubeconfig = kubeconfig or operator_kubeconfig(ns, directory)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "DATAPIPELINE_NAMESPACES": ns,
           "DATAPIPELINE_METRICS_PORT": "0", "DATAPIPELINE_LIVENESS_PORT": "0", "PYTHONPATH": str(ROOT / "operator")}
    log = (directory / f"operator-{ns}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "datapipeline.controller.main"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def items(ns: str, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["-n", ns, "get", kind, "-o", "json"] + (["-l", selector] if selector else [])
    return list(json.loads(kubectl(*args))["items"])


def wait_until(check: Any, timeout: float, what: str, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


# ---------------------------------------------------------------------------- idle
def measure_idle(pipelines: int, seconds: int, directory: Path) -> dict[str, float]:
    with namespace("idle") as ns:
        apply_many(ns, idle_pipelines(pipelines))
        with operator(ns, directory) as proc:
            if pipelines:
                wait_until(lambda: all((p.get("status") or {}).get("nextRunTime") for p in items(ns, "pipelines")),
                           600, "every Pipeline to be planned", every=3)
            time.sleep(10)  # settled: the first passes are startup, not idle cost
            cpu0, start = cpu_seconds(proc.pid), datetime.now(UTC)
            time.sleep(seconds)
            cpu1, until = cpu_seconds(proc.pid), datetime.now(UTC)
            rss, peak = memory_mib(proc.pid)
        time.sleep(2)  # the audit backend writes in batches
        user = f"system:serviceaccount:{ns}:operator"
        mine = [e for e in audit_events(start, until) if (e.get("user") or {}).get("username") == user]
        minutes = (until - start).total_seconds() / 60
        return {"requests/min (get, list, writes)": sum(e["verb"] in READS | WRITES for e in mine) / minutes,
                "watch requests/min": sum(e["verb"] == "watch" for e in mine) / minutes,
                "RSS MiB": rss, "peak RSS MiB": peak, "CPU %": 100 * (cpu1 - cpu0) / (until - start).total_seconds()}


def idle(args: argparse.Namespace, directory: Path) -> None:
    base = measure_idle(0, args.seconds, directory)
    ours = measure_idle(args.pipelines, args.seconds, directory)
    print(f"idle: {args.pipelines} Pipelines, none due, over {args.seconds} s; baseline: an empty namespace")
    print(f"{'':36} {f'{args.pipelines} Pipelines':>16} {'baseline':>10}  goal")
    goals = {"requests/min (get, list, writes)": "0", "RSS MiB": "< 300"}
    for key in ours:
        print(f"{key:36} {ours[key]:16.1f} {base[key]:10.1f}  {goals.get(key, '')}")


# ---------------------------------------------------------------------------- restart
def measure_restart(pipelines: int, live_runs: int, directory: Path) -> float:
    with namespace("restart") as ns:
        docs = idle_pipelines(pipelines)
        docs.append({"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "parked"},
                     "spec": {"scheduleType": "ondemand", "activated": True, "paused": True,
                              "defaults": {"maxActiveInstances": max(1, live_runs)},
                              "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true"}]}})
        docs.append({"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "probe"},
                     "spec": {"scheduleType": "ondemand", "activated": True,
                              "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true"}]}})
        docs += [run_doc(f"parked-{i:04d}", "parked") for i in range(live_runs)]
        apply_many(ns, docs)
        kubeconfig = operator_kubeconfig(ns, directory)
        if live_runs:  # the live runs have been seen once (frozen, paused) before the restart measured
            with operator(ns, directory, kubeconfig):
                wait_until(lambda: sum(bool((r.get("status") or {}).get("pipelineSpecHash"))
                                       for r in items(ns, "pipelineruns")) >= live_runs, 900, "the live runs", 3)
        apply_many(ns, [run_doc("probe-1", "probe")])
        started = time.monotonic()
        with operator(ns, directory, kubeconfig):
            wait_until(lambda: items(ns, "jobs", "datapipeline.io/run=probe-1"), 600, "the probe's Job", 0.2)
            return time.monotonic() - started


def run_doc(name: str, pipeline_name: str) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun", "metadata": {"name": name},
            "spec": {"pipelineRef": {"name": pipeline_name}, "trigger": "Manual"}}


def restart(args: argparse.Namespace, directory: Path) -> None:
    base = measure_restart(0, 0, directory)
    ours = measure_restart(args.pipelines, args.live_runs, directory)
    print(f"restart: operator start to a due run's first Job; {args.pipelines} Pipelines and {args.live_runs} live "
          "runs, against an empty namespace")
    print(f"{'loaded':>10} {'baseline':>10} {'ratio':>7}  goal")
    print(f"{ours:9.1f}s {base:9.1f}s {ours / base:6.2f}x  loaded < 30 s")


# ---------------------------------------------------------------------------- on time
def ontime(args: argparse.Namespace, directory: Path) -> None:
    n = args.pipelines
    due = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    with namespace("ontime") as ours, namespace("ontime-cron") as cron, operator(ours, directory):
        apply_many(ours, [pipeline(f"p-{i:03d}", "* * * * *", due, successfulRunsHistoryLimit=1) for i in range(n)])
        apply_many(cron, [{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": f"c-{i:03d}"},
                           "spec": {"schedule": "* * * * *", "successfulJobsHistoryLimit": 1,
                                    "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                                        "restartPolicy": "Never", "containers": [{
                                            "name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                                            "command": ["true"]}]}}}}}} for i in range(n)])
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 90)
        ours_delays = first_job_delays(ours, due, "datapipeline.io/pipeline")
        cron_delays = first_job_delays(cron, due, None)
    print(f"on time: {n} Pipelines and {n} CronJobs due at {due:%H:%M:%S}; delay from the due time to the first "
          "Job (seconds, creationTimestamp resolution 1 s)")
    print(f"{'':8} {'ours':>8} {'CronJob':>8} {'ratio':>7}")
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        a, b = quantile(ours_delays, q), quantile(cron_delays, q)
        print(f"{label:8} {a:8.1f} {b:8.1f} {a / b if b else float('inf'):6.2f}x")
    print(f"{'jobs':8} {len(ours_delays):8d} {len(cron_delays):8d}")


def first_job_delays(ns: str, due: datetime, label: str | None) -> list[float]:
    """Per Pipeline (or CronJob), the delay from ``due`` to its first Job created at or after it."""
    first: dict[str, datetime] = {}
    for job in items(ns, "jobs"):
        meta = job["metadata"]
        owner = (meta.get("labels") or {}).get(label) if label else \
            next((r["name"] for r in meta.get("ownerReferences") or () if r.get("kind") == "CronJob"), None)
        created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
        if owner and created >= due and (owner not in first or created < first[owner]):
            first[owner] = created
    return sorted((t - due).total_seconds() for t in first.values())


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(q * 100) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("idle")
    p.add_argument("--pipelines", type=int, default=1000)
    p.add_argument("--seconds", type=int, default=120)
    p = sub.add_parser("restart")
    p.add_argument("--pipelines", type=int, default=1000)
    p.add_argument("--live-runs", type=int, default=500)
    p = sub.add_parser("ontime")
    p.add_argument("--pipelines", type=int, default=200)
    args = parser.parse_args()
    if not AUDIT.exists():
        raise SystemExit(f"no audit log at {AUDIT}: start the dev cluster with tests/cluster/devcluster.py up")
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    with tempfile.TemporaryDirectory() as tmp:
        {"idle": idle, "restart": restart, "ontime": ontime}[args.command](args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
