"""Scheduling benchmark on the real cluster: the operator against Kubernetes' own baselines, in one run.

1. Throughput: N PipelineRuns of a one-activity pipeline (`true`) created at once, against N bare Jobs running
   `sh -c true` in the same image and N bare Jobs whose pod is exactly the operator's (the runner running the
   same task: the fair baseline). Reported: wall time of each and the ratios. With ``--rounds K`` the
   PipelineRuns and the fair baseline run K times each, in alternating order (ours first, then the baseline
   first, ...), and the median of the K ratios is reported: one phase's wall time varies from run to run by as
   much as the gap measured.
2. Schedule lag (``--cron``): a Pipeline with cron "* * * * *" against a CronJob with the same schedule,
   over ``--minutes`` minutes. Reported: mean delay from the minute boundary to the Job's creation, as a ratio.

Usage: eval "$(python tests/cluster/devcluster.py env)"; python benchmarks/scheduling_bench.py [--runs 20] [--cron]
It starts the operator as a host process watching only its own namespace and deletes that namespace at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("KDP_RUNNER_IMAGE", "localhost/kube-datapipeline:dev")


def kubectl(namespace: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["kubectl", "-n", namespace, *args], input=stdin, capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def apply(namespace: str, *docs: dict[str, Any]) -> None:
    for i in range(0, len(docs), 100):  # kubectl writes a List's items one by one: keep each call short
        kubectl(namespace, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(docs[i:i + 100])}))


def items(namespace: str, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
    return list(json.loads(kubectl(namespace, *args))["items"])


def wait_until(check: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f}s: {what}")


def bare_jobs(namespace: str, count: int) -> float:
    label = f"bench=jobs-{uuid.uuid4().hex[:6]}"
    key, value = label.split("=")
    start = time.monotonic()
    apply(namespace, *[{
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"bare-{i}", "labels": {key: value}},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {key: value}}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "task", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                                      "command": ["sh", "-c", "true"]}]}}}} for i in range(count)])
    wait_until(lambda: sum(1 for j in items(namespace, "jobs", label) if (j.get("status") or {}).get("succeeded"))
               == count, 1800, f"{count} bare Jobs")
    return time.monotonic() - start


def clear(namespace: str, kind: str) -> None:
    """Delete every object of ``kind`` and wait until no pod is left."""
    kubectl(namespace, "delete", kind, "--all", "--wait=false")
    wait_until(lambda: not items(namespace, "pods") and not items(namespace, "jobs"), 900, f"{kind} deleted")


def same_task_jobs(namespace: str, count: int, ours: dict[str, Any]) -> float:
    """Bare Jobs whose pods are exactly the operator's (the runner running the same task): the fair baseline,
    so that the ratio is the orchestration's cost alone, not the runner's start-up."""
    label = f"bench=same-{uuid.uuid4().hex[:6]}"
    key, value = label.split("=")
    template = {"metadata": {"labels": {key: value}}, "spec": ours["spec"]}
    start = time.monotonic()
    apply(namespace, *[{"apiVersion": "batch/v1", "kind": "Job",
                        "metadata": {"name": f"same-{i}", "labels": {key: value}},
                        "spec": {"backoffLimit": 0, "template": template}} for i in range(count)])
    wait_until(lambda: sum(1 for j in items(namespace, "jobs", label) if (j.get("status") or {}).get("succeeded"))
               == count, 1800, f"{count} same-task Jobs")
    return time.monotonic() - start


def pipeline_runs(namespace: str, count: int, round_: int = 0) -> float:
    apply(namespace, {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "bench"},
                      "spec": {"scheduleType": "ondemand", "activated": False, "successfulRunsHistoryLimit": count,
                               # as many at once as the bare Jobs (on-demand runs queue at 1 by default)
                               "defaults": {"maxActiveInstances": count},
                               "activities": [{"name": "noop", "type": "ShellCommandActivity", "command": "true"}]}})
    start = time.monotonic()
    label = f"bench-round={round_}"  # a round's runs only: the last round's may still be being deleted
    apply(namespace, *[{"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
                        "metadata": {"name": f"bench-{round_}-{i}", "labels": {"datapipeline.io/pipeline": "bench",
                                                                               "bench-round": str(round_)}},
                        "spec": {"pipelineRef": {"name": "bench"}, "trigger": "Manual"}} for i in range(count)])
    wait_until(lambda: sum(1 for r in items(namespace, "pipelineruns", label) if (r.get("status") or {}).get("phase")
                           == "Succeeded") == count, 1800, f"{count} PipelineRuns")
    return time.monotonic() - start


def one_round(namespace: str, count: int, round_: int, template: dict[str, Any]) -> tuple[float, float]:
    """The PipelineRuns and the fair baseline (bare Jobs with the pod ours made, kept in ``template``), ours first
    in even rounds and second in odd ones, each on an empty node: (ours, baseline) wall times."""

    def ours() -> float:
        took = pipeline_runs(namespace, count, round_)
        template.update(items(namespace, "jobs", "datapipeline.io/pipeline=bench")[0]["spec"]["template"])
        clear(namespace, "pipelineruns")
        return took

    def baseline() -> float:
        took = same_task_jobs(namespace, count, template)
        clear(namespace, "jobs")
        return took

    if round_ % 2 == 0:
        ours_time = ours()
        return ours_time, baseline()
    same_time = baseline()
    return ours(), same_time


def cron_lags(namespace: str, minutes: int) -> tuple[float, float]:
    now = datetime.now(UTC)
    apply(namespace,
          {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cron"}, "spec": {
              "schedule": "* * * * *", "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                  "restartPolicy": "Never", "containers": [{"name": "task", "image": IMAGE,
                                                            "command": ["sh", "-c", "true"]}]}}}}}},
          {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "cron"}, "spec": {
              "activated": True, "missedRunPolicy": "Skip", "maxActiveRuns": 5,
              "schedule": {"cron": "* * * * *", "startDateTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
              "activities": [{"name": "noop", "type": "ShellCommandActivity", "command": "true"}]}})
    time.sleep(minutes * 60 + 5)
    cron_lag = [_lag(j["metadata"]["creationTimestamp"]) for j in items(namespace, "jobs")
                if any(o["kind"] == "CronJob" for o in j["metadata"].get("ownerReferences", []))]
    ours = [_lag(j["metadata"]["creationTimestamp"]) for j in items(namespace, "jobs", "datapipeline.io/pipeline=cron")]
    if not cron_lag or not ours:
        raise SystemExit(f"no Jobs to measure (CronJob: {len(cron_lag)}, Pipeline: {len(ours)})")
    return sum(cron_lag) / len(cron_lag), sum(ours) / len(ours)


def _lag(stamp: str) -> float:
    created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return float(created.second)  # seconds after the minute boundary it belongs to


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cron", action="store_true", help="also measure schedule lag against a CronJob")
    parser.add_argument("--minutes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1,
                        help="PipelineRuns and the runner's-pod baseline this many times each, order alternating")
    args = parser.parse_args()
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["kubectl", "create", "namespace", namespace], check=True, capture_output=True)
    wait_until(lambda: subprocess.run(["kubectl", "-n", namespace, "get", "sa", "default"],
                                      capture_output=True).returncode == 0, 30, "the default service account")
    env = {**os.environ, "DATAPIPELINE_NAMESPACES": namespace, "DATAPIPELINE_METRICS_PORT": "0",
           "DATAPIPELINE_LIVENESS_PORT": "0", "DATAPIPELINE_SCHEDULER_INTERVAL": "1"}
    log = open(ROOT / f"benchmarks/.operator-{namespace}.log", "wb")  # noqa: SIM115 - closed in finally
    operator = subprocess.Popen([sys.executable, "-m", "datapipeline.controller.main"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        jobs_time = bare_jobs(namespace, args.runs)
        clear(namespace, "jobs")  # each phase starts on an empty node: finished pods slow the kubelet down
        template: dict[str, Any] = {}  # the pod of ours, for the baseline (an odd round's comes from the round before)
        rounds = [one_round(namespace, args.runs, i, template) for i in range(args.rounds)]
        runs_time, same_time = rounds[0]
        print(f"throughput, {args.runs} one-activity runs created at once, on {os.cpu_count()} cores:")
        print(f"  bare Jobs, sh -c true          {jobs_time:7.1f} s   {args.runs / jobs_time:6.2f} per s")
        print(f"  bare Jobs, the runner's pod    {same_time:7.1f} s   {args.runs / same_time:6.2f} per s")
        print(f"  PipelineRuns                   {runs_time:7.1f} s   {args.runs / runs_time:6.2f} per s")
        print(f"  ratio to the runner's pod      {runs_time / same_time:7.2f}x (the orchestration's cost)")
        print(f"  ratio to sh -c true            {runs_time / jobs_time:7.2f}x")
        if args.rounds > 1:
            for i, (ours, same) in enumerate(rounds):
                first = "PipelineRuns" if i % 2 == 0 else "the baseline"
                print(f"  round {i + 1} ({first} first)    {ours:7.1f} s against {same:7.1f} s   {ours / same:5.2f}x")
            print(f"  median of {args.rounds} rounds            "
                  f"{statistics.median(ours / same for ours, same in rounds):7.2f}x (the orchestration's cost)")
        if args.cron:
            cron_lag, our_lag = cron_lags(namespace, args.minutes)
            print(f"schedule lag over {args.minutes} min (minute boundary to Job created):")
            print(f"  CronJob (baseline)     {cron_lag:7.1f} s")
            if max(cron_lag, our_lag) < 1:
                print("  Pipeline cron          both Jobs were created within the boundary's second "
                      "(creationTimestamp has 1 s resolution)")
            else:
                print(f"  Pipeline cron          {our_lag:7.1f} s   ratio {our_lag / max(cron_lag, 1.0):.2f}x")
    finally:
        operator.terminate()
        operator.wait(15)
        log.close()
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], capture_output=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
