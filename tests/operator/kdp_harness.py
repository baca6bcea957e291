"""Harness for the operator tests: the operator as a subprocess on the host, kubectl helpers.

Fixtures: ``kube_cluster`` (session, from tests/fixtures/cluster.py) and ``namespace`` (per test).
Set DATAPIPELINE_TEST_KUBECONFIG to use another cluster's kubeconfig.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _kubeconfig(cluster: Any) -> str:
    for attr in ("kubeconfig", "kubeconfig_path", "config_path"):
        value = getattr(cluster, attr, None) or (cluster.get(attr) if isinstance(cluster, dict) else None)
        if value:
            return str(value)
    return os.environ.get("DATAPIPELINE_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG") or str(
        Path.home() / ".kube" / "config")


class Operator:
    """The operator subprocess plus kubectl helpers bound to one namespace."""

    def __init__(self, kubeconfig: str, namespace: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log = log
        self.env = dict(env or {})  # more settings for this operator process (leader election, say)
        self.proc: subprocess.Popen[bytes] | None = None

    # -------------------------------------------------------------- process
    def start(self) -> None:
        # A resync far beyond the tests' waits: runs must move on Job and run events (and their own
        # wake-up times), never because a periodic resync happened to look.
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "DATAPIPELINE_NAMESPACES": self.namespace,
               "DATAPIPELINE_SCHEDULER_INTERVAL": "1", "DATAPIPELINE_RESYNC_INTERVAL": "300",
               "DATAPIPELINE_MISSED_GRACE_SECONDS": "5", "DATAPIPELINE_METRICS_PORT": "0",
               "DATAPIPELINE_LIVENESS_PORT": "0", "PYTHONPATH": str(ROOT / "operator"),
               # The scenarios use 5- and 10-second schedules (the default minimum period is 1 minute).
               "DATAPIPELINE_MIN_SCHEDULE_PERIOD": "1s", **self.env}
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "datapipeline.controller.main"], env=env, stdout=out,
                                     stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    # -------------------------------------------------------------- kubectl
    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, stderr: bool = False) -> str:
        """kubectl's output (``stderr``: with its error output after it)."""
        result = subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args],
                                input=stdin, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result.stdout + (result.stderr if stderr else "")

    def apply(self, doc: dict[str, Any]) -> None:
        doc.setdefault("metadata", {})["namespace"] = self.namespace
        self.kubectl("apply", "-f", "-", stdin=json.dumps(doc))

    def get(self, kind: str, name: str | None = None, selector: str | None = None) -> Any:
        args = ["get", kind, "-o", "json"] + ([name] if name else []) + (["-l", selector] if selector else [])
        return json.loads(self.kubectl(*args))

    def runs(self, pipeline: str) -> list[dict[str, Any]]:
        items = self.get("pipelineruns", selector=f"datapipeline.io/pipeline={pipeline}")["items"]
        return sorted(items, key=lambda r: r["spec"].get("scheduledStartTime", ""))

    def jobs(self, run: str) -> list[dict[str, Any]]:
        return list(self.get("jobs", selector=f"datapipeline.io/run={run}")["items"])

    def wait(self, what: Callable[[], Any], timeout: float = 120, every: float = 1.0) -> Any:
        deadline = time.time() + timeout
        last: Any = None
        while time.time() < deadline:
            try:
                last = what()
            except (AssertionError, KeyError, json.JSONDecodeError):
                last = None
            if last:
                return last
            time.sleep(every)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        raise AssertionError(f"timed out waiting; last={last!r}\noperator log tail:\n{tail}")

    def cli(self, *args: str, check: bool = True) -> str:
        """The ``datapipeline`` command line against this namespace."""
        # A resync far beyond the tests' waits: runs must move on Job and run events (and their own
        # wake-up times), never because a periodic resync happened to look.
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONPATH": str(ROOT / "operator")}
        result = subprocess.run([sys.executable, "-m", "datapipeline.cli.main", *args, "-n", self.namespace],
                                capture_output=True, text=True, timeout=120, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"datapipeline {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result.stdout

    def cli_failure(self, *args: str) -> str:
        """Runs a ``datapipeline`` command that must fail; returns what it printed on stderr."""
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "PYTHONPATH": str(ROOT / "operator")}
        result = subprocess.run([sys.executable, "-m", "datapipeline.cli.main", *args, "-n", self.namespace],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode != 0, f"datapipeline {' '.join(args)} succeeded:\n{result.stdout}"
        return result.stderr

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        """Kubernetes Events about one object, oldest first."""
        items = self.get("events")["items"]
        mine = [e for e in items if e.get("involvedObject", {}).get("kind") == kind
                and e.get("involvedObject", {}).get("name") == name]
        return sorted(mine, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def run_phase(self, run: str) -> str:
        return str((self.get("pipelinerun", run).get("status") or {}).get("phase") or "")

    def wait_phase(self, run: str, phases: tuple[str, ...] = ("Succeeded",), timeout: float = 180) -> dict[str, Any]:
        self.wait(lambda: self.run_phase(run) in phases, timeout)
        return dict(self.get("pipelinerun", run))


def shell(name: str, command: str = "sleep 2; exit 0", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "ShellCommandActivity", "command": command, **extra}


def pipeline_doc(name: str, activities: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": name},
            "spec": {"activated": True, "activities": activities, **spec}}


def run_doc(name: str, pipeline: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": name, "labels": {"datapipeline.io/pipeline": pipeline}},
            "spec": {"pipelineRef": {"name": pipeline}, "trigger": "Manual", **spec}}


def activity_attempts(op: Operator, run: str) -> dict[str, list[int]]:
    """Attempt numbers of each activity's Jobs in a run, from their labels."""
    found: dict[str, list[int]] = {}
    for job in op.jobs(run):
        labels = job["metadata"]["labels"]
        if labels.get("datapipeline.io/kind") == "activity":
            found.setdefault(labels["datapipeline.io/activity"], []).append(int(labels["datapipeline.io/attempt"]))
    return {k: sorted(v) for k, v in found.items()}
