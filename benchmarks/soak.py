"""Soak: the operator, installed by the chart under its memory limit, with many Pipelines and hostile ones.

For ``--minutes`` (default 10) the chart's operator watches ``--pipelines`` Pipelines (default 200): most idle
(a daily cron), some busy (a run every 2 minutes) and a set of hostile ones (a 1-second period, 10^12
occurrences, a year-9999 start, exponentially self-referencing variables, a ~110 kB spec, broken
definitions, runs whose values try to inject commands). Reported, against a baseline from the same run:

* responsiveness: a normal two-activity run's wall time under load against the same run alone (goal 1.2x);
* memory: the operator's peak resident memory (its own /metrics) against the chart's limit, and restarts
  (an OOM kill restarts the container);
* what became of the hostile Pipelines and runs (their conditions).

Usage: eval "$(python tests/cluster/devcluster.py env)"; python benchmarks/soak.py [--pipelines 200] [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
from datapipeline.cli.demo import find_helm  # noqa: E402

CHART = ROOT / "charts" / "kube-datapipeline"
IMAGE = os.environ.get("KDP_RUNNER_IMAGE", "localhost/kube-datapipeline:dev")
API = "datapipeline.io/v1alpha1"


def kubectl(namespace: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = subprocess.run(["kubectl", "-n", namespace, *args], input=stdin, capture_output=True, text=True,
                            timeout=300)
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout + result.stderr


def apply(namespace: str, docs: list[dict[str, Any]]) -> str:
    return kubectl(namespace, "apply", "-f", "-", check=False,
                   stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))


def pipeline(name: str, activities: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Pipeline", "metadata": {"name": name},
            "spec": {"activated": True, "activities": activities, **spec}}


def shell(name: str, command: str = "true", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "ShellCommandActivity", "command": command, "maximumRetries": 0, **extra}


def hostile() -> list[dict[str, Any]]:
    variables = {"myV0": "abcdefgh"} | {f"myV{i}": f"#{{myV{i - 1}}}#{{myV{i - 1}}}" for i in range(1, 40)}
    big = [shell(f"step-{i:03d}", "echo " + "x" * 300, dependsOn=[f"step-{i - 1:03d}"] if i else [])
           for i in range(300)]
    return [
        pipeline("h-one-second", [shell("a")], schedule={"period": "1 seconds"}),
        pipeline("h-occurrences", [shell("a")], schedule={"period": "1 days", "occurrences": 10 ** 12}),
        pipeline("h-year-9999", [shell("a")], schedule={"period": "1 days", "startDateTime": "9999-12-31T00:00:00Z"}),
        pipeline("h-exponential", [shell("a", "echo #{myV39}")], scheduleType="ondemand",
                 defaults={"vars": variables}),
        pipeline("h-big", big, schedule={"cron": "0 3 * * *"}),
        pipeline("h-broken", [shell("a", dependsOn=["nope"])], schedule={"cron": "0 3 * * *"}),
        pipeline("h-inject", [shell("a", "echo #{myDay}")], scheduleType="ondemand", activated=False,
                 parameters=[{"id": "myDay", "default": "2026-01-01", "overridable": True,
                              "pattern": r"\d{4}-\d{2}-\d{2}"}]),
    ]


def injection_runs(count: int) -> list[dict[str, Any]]:
    return [{"apiVersion": API, "kind": "PipelineRun", "metadata": {"name": f"h-inject-{i}"},
             "spec": {"pipelineRef": {"name": "h-inject"}, "values": {"myDay": f"2026-01-0{i % 9 + 1}; id"}}}
            for i in range(count)]


def timed_run(namespace: str, name: str) -> float:
    """Seconds from creating a run of the probe pipeline to its Succeeded phase."""
    start = time.monotonic()
    apply(namespace, [{"apiVersion": API, "kind": "PipelineRun", "metadata": {"name": name},
                       "spec": {"pipelineRef": {"name": "probe"}}}])
    while time.monotonic() - start < 600:
        phase = kubectl(namespace, "get", "pipelinerun", name, "-o", "jsonpath={.status.phase}", check=False)
        if phase.strip() in ("Succeeded", "Failed"):
            if phase.strip() != "Succeeded":
                raise SystemExit(f"probe run {name} ended {phase.strip()}")
            return time.monotonic() - start
        time.sleep(0.5)
    raise SystemExit(f"probe run {name} did not finish in 600 s")


def operator_pod(namespace: str) -> dict[str, Any]:
    pods = json.loads(kubectl(namespace, "get", "pods", "-l", "app.kubernetes.io/name=kube-datapipeline",
                              "-o", "json"))["items"]
    return dict(pods[0])


def rss_bytes(namespace: str) -> tuple[float, int]:
    pod = operator_pod(namespace)
    restarts = sum(s.get("restartCount", 0) for s in pod["status"].get("containerStatuses") or ())
    ip = pod["status"].get("podIP")
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0, restarts
    match = re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M)
    return (float(match.group(1)) if match else 0.0), restarts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--busy", type=int, default=10, help="pipelines with a run every 2 minutes")
    args = parser.parse_args()
    namespace = f"kdp-soak-{uuid.uuid4().hex[:6]}"
    kubectl("default", "create", "namespace", namespace)
    release = "soak"
    repository, _, tag = IMAGE.rpartition(":")
    helm = [find_helm(), "install", release, str(CHART), "-n", namespace, "--set", "crds.install=false",
            "--set", f"watchNamespaces={{{namespace}}}", "--set", f"image.repository={repository}",
            "--set", f"image.tag={tag}", "--wait", "--timeout", "300s"]
    try:
        subprocess.run(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
                       check=True, capture_output=True, timeout=120)
        subprocess.run(helm, check=True, capture_output=True, text=True, timeout=400)
        limit = json.loads(kubectl(namespace, "get", "deployment", f"{release}-operator", "-o",
                                   "jsonpath={.spec.template.spec.containers[0].resources}") or "{}")
        apply(namespace, [pipeline("probe", [shell("a", "sleep 1"), shell("b", "sleep 1", dependsOn=["a"])],
                                   scheduleType="ondemand", activated=False)])
        alone = [timed_run(namespace, f"probe-alone-{i}") for i in range(3)]
        load = hostile()
        busy = [pipeline(f"busy-{i:03d}", [shell("a")], schedule={"period": "2 minutes"})
                for i in range(args.busy)]
        idle = [pipeline(f"idle-{i:03d}", [shell("a"), shell("b", dependsOn=["a"])],
                         schedule={"cron": f"{i % 60} 3 * * *", "timeZone": "Europe/Berlin"})
                for i in range(max(0, args.pipelines - len(load) - len(busy)))]
        refusals = [line for doc in load + busy + idle for line in [apply(namespace, [doc])]
                    if "error" in line.lower() or "denied" in line.lower()]
        apply(namespace, injection_runs(20))
        peak, restarts, started = 0.0, 0, time.monotonic()
        while time.monotonic() - started < args.minutes * 60:
            rss, restarts = rss_bytes(namespace)
            peak = max(peak, rss)
            time.sleep(10)
        loaded = [timed_run(namespace, f"probe-loaded-{i}") for i in range(3)]
        rss, restarts = rss_bytes(namespace)
        peak = max(peak, rss)
        report(namespace, alone, loaded, peak, restarts, limit, refusals, args)
    finally:
        subprocess.run([find_helm(), "uninstall", release, "-n", namespace], capture_output=True, timeout=120)
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false"], capture_output=True,
                       timeout=120)
    return 0


def report(namespace: str, alone: list[float], loaded: list[float], peak: float, restarts: int,
           limit: dict[str, Any], refusals: list[str], args: argparse.Namespace) -> None:
    pipelines = json.loads(kubectl(namespace, "get", "pipelines", "-o", "json"))["items"]
    runs = json.loads(kubectl(namespace, "get", "pipelineruns", "-o", "json"))["items"]
    alone_s, loaded_s = sorted(alone)[1], sorted(loaded)[1]
    print(f"soak: {len(pipelines)} Pipelines ({args.busy} busy) for {args.minutes:g} min, {len(runs)} runs")
    print(f"responsiveness: probe run {loaded_s:.1f} s under load vs {alone_s:.1f} s alone "
          f"(median of 3) = {loaded_s / alone_s:.2f}x (goal <= 1.2x)")
    print(f"memory: operator peak RSS {peak / 2**20:.0f} MiB, limit {limit.get('limits', {}).get('memory')}, "
          f"container restarts {restarts}")
    for p in sorted(pipelines, key=lambda p: p["metadata"]["name"]):
        name = p["metadata"]["name"]
        if name.startswith("h-"):
            valid = {c["type"]: c for c in (p.get("status") or {}).get("conditions") or ()}.get("Valid", {})
            mine = [r for r in runs if r["spec"]["pipelineRef"]["name"] == name]
            print(f"  {name}: Valid={valid.get('status')} {valid.get('message', '')[:110]!r}, {len(mine)} runs")
    refused = [r for r in runs if r["metadata"]["name"].startswith("h-inject-")
               and (r.get("status") or {}).get("phase") == "Failed"]
    print(f"  injection runs refused: {len(refused)} of 20")
    for line in refusals:
        print(f"  refused by the API server: {line.strip()[:160]}")


if __name__ == "__main__":
    sys.exit(main())
