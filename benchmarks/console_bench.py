"""Console benchmark on the real cluster: page load times against `kubectl get dpl` on the same objects.

It creates ``--pipelines`` Pipelines and ``--runs`` PipelineRuns (spread over the pipelines, each with a
status of three activities, one failed with two attempts) in a namespace of its own, starts
``datapipeline console -n`` on it, waits until the console's watch cache holds them all, then times
(median of ``--repeat``):

- the pipelines page (every pipeline in one table) and a pipeline page (its graph and first page of runs),
- a run page (its graph's layout is cached by DOT text) and, apart, one layout by Graphviz's dot,
- `kubectl get dpl -n NS` (and `kubectl get dplrun -n NS`) on the same objects, the baseline.

No operator runs: the objects only sit there. The namespace is deleted at the end.

Usage: eval "$(python tests/cluster/devcluster.py env)"; python benchmarks/console_bench.py [--pipelines 1000]
[--runs 10000] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
GROUP, VERSION = "datapipeline.io", "v1alpha1"
SPEC = {"scheduleType": "ondemand", "activated": False,
        "activities": [{"name": "extract", "type": "ShellCommandActivity", "command": "true"},
                       {"name": "load", "type": "ShellCommandActivity", "command": "true", "dependsOn": ["extract"]},
                       {"name": "report", "type": "ShellCommandActivity", "command": "true", "dependsOn": ["load"]}]}
RUN_STATUS = {"phase": "Failed", "progress": "1/3", "startTime": "2026-11-30T01:00:00Z",
              "completionTime": "2026-11-30T01:05:00Z", "activities": {
                  "extract": {"status": "FINISHED", "attempt": 1, "startTime": "2026-11-30T01:00:00Z",
                              "endTime": "2026-11-30T01:01:00Z", "exitCode": 0},
                  "load": {"status": "FAILED", "attempt": 2, "startTime": "2026-11-30T01:01:00Z",
                           "endTime": "2026-11-30T01:05:00Z", "exitCode": 1, "errorMessage": "boom",
                           "attempts": [{"n": 1, "status": "FAILED", "start": "2026-11-30T01:01:00Z",
                                         "end": "2026-11-30T01:02:00Z", "error": "boom"},
                                        {"n": 2, "status": "FAILED", "start": "2026-11-30T01:04:00Z",
                                         "end": "2026-11-30T01:05:00Z", "error": "boom"}]},
                  "report": {"status": "CASCADE_FAILED", "cascadeFailedOn": "load"}}}


def custom() -> Any:
    from datapipeline.k8s import api

    return api.custom()


def create_objects(namespace: str, pipelines: int, runs: int) -> float:
    """Creates the objects with 8 requests in flight; returns the seconds it took."""
    start = time.monotonic()
    api = custom()

    def pipeline(i: int) -> None:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "pipelines", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Pipeline", "metadata": {"name": f"p{i:04d}"},
            "spec": SPEC})

    def run(i: int) -> None:
        owner = f"p{i % pipelines:04d}"
        name = f"{owner}-r{i:05d}"
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "pipelineruns", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "PipelineRun",
            "metadata": {"name": name, "labels": {"datapipeline.io/pipeline": owner}},
            "spec": {"pipelineRef": {"name": owner}, "trigger": "Manual",
                     "scheduledStartTime": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00Z"}})
        api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "pipelineruns", name,
                                                  {"status": RUN_STATUS})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(pipeline, range(pipelines)))
        list(pool.map(run, range(runs)))
    return time.monotonic() - start


def timed(action: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        action()
        times.append(time.monotonic() - start)
    return times


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as answer:
        return bytes(answer.read())


def kubectl_get(namespace: str, kind: str) -> None:
    subprocess.run(["kubectl", "get", kind, "-n", namespace], check=True, capture_output=True, timeout=300)


def start_console(namespace: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    proc = subprocess.Popen([sys.executable, "-m", "datapipeline.cli.main", "console", "--port", str(port), "-n",
                             namespace], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def wait_for_cache(url: str, pipelines: int, runs: int, timeout: float = 600) -> float:
    """Seconds until the console's pages show every pipeline and the last run."""
    start = time.monotonic()
    last_run = f"p{(runs - 1) % pipelines:04d}-r{runs - 1:05d}"
    while time.monotonic() - start < timeout:
        try:
            page = fetch(f"{url}/").decode()
            if page.count("<tr data-pipeline=") == pipelines and b"data-phase" in fetch(
                    f"{url}/runs/{NAMESPACE}/{last_run}"):
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the console's cache did not fill in time")


NAMESPACE = ""


def main() -> int:
    global NAMESPACE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    NAMESPACE = f"console-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["kubectl", "create", "namespace", NAMESPACE], check=True, capture_output=True)
    proc = None
    try:
        created = create_objects(NAMESPACE, args.pipelines, args.runs)
        print(f"created {args.pipelines} pipelines and {args.runs} runs (with status) in {created:.1f}s")
        proc, url = start_console(NAMESPACE, Path(f"/tmp/{NAMESPACE}-console.log"))
        filled = wait_for_cache(url, args.pipelines, args.runs)
        print(f"console started and its watch cache filled in {filled:.1f}s")
        report(url, args)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(20)
        subprocess.run(["kubectl", "delete", "namespace", NAMESPACE, "--wait=false"], capture_output=True)
    return 0


def report(url: str, args: argparse.Namespace) -> None:
    run = f"p0001-r{1 % args.pipelines + args.pipelines:05d}" if args.runs > args.pipelines + 1 else "p0001-r00001"
    layout = timed(graph_layout, 1)[0]
    rows = {
        "pipelines page (all pipelines)": timed(lambda: fetch(f"{url}/"), args.repeat),
        "pipeline page (graph, runs page 1)": timed(lambda: fetch(f"{url}/pipelines/{NAMESPACE}/p0001"), args.repeat),
        "run page (layout cached)": timed(lambda: fetch(f"{url}/runs/{NAMESPACE}/{run}"), args.repeat),
        "kubectl get dpl -n NS": timed(lambda: kubectl_get(NAMESPACE, "dpl"), args.repeat),
        "kubectl get dplrun -n NS": timed(lambda: kubectl_get(NAMESPACE, "dplrun"), max(1, args.repeat // 2)),
    }
    baseline = statistics.median(rows["kubectl get dpl -n NS"])
    print(f"\n{args.pipelines} pipelines, {args.runs} runs; medians of {args.repeat}; ratio = time / kubectl get dpl")
    print(f"{'what':40} {'median s':>9} {'ratio':>7}")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:40} {median:9.3f} {median / baseline:7.2f}")
    print(f"{'a new graph laid out by dot (once each)':40} {layout:9.3f} {layout / baseline:7.2f}")


def graph_layout() -> None:
    """What the first page of a graph not seen before adds: one dot process (the run's graph, uncached)."""
    from datapipeline.console.graph import pipeline_graph, render_svg, to_dot
    from datapipeline.core.definition import parse_pipeline

    render_svg.cache_clear()
    render_svg(to_dot(pipeline_graph(parse_pipeline(SPEC), RUN_STATUS)))


if __name__ == "__main__":
    sys.exit(main())
