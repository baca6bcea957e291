"""Day-2 work against the real cluster: the ``datapipeline`` CLI, Events, and the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kdp_harness import ROOT, Operator, activity_attempts, pipeline_doc, shell

pytestmark = pytest.mark.cluster
INACTIVE_ONDEMAND: dict[str, Any] = {"scheduleType": "ondemand", "activated": False}


def test_cli_day2_commands(operator: Operator) -> None:
    operator.apply(pipeline_doc("ops", [
        shell("a", "echo hello-from-a"),
        shell("b", "echo b-was-here; exit 3", maximumRetries=0),
        shell("c", "true", dependsOn=["b"])], **INACTIVE_ONDEMAND))
    operator.apply(pipeline_doc("slow", [shell("z", "sleep 120")], **INACTIVE_ONDEMAND))

    assert "pipelinerun/ops-1 created" in operator.cli("run", "ops", "--name", "ops-1")
    operator.wait_phase("ops-1", ("Failed",))

    listing = operator.cli("list")
    assert "ops" in listing and "slow" in listing
    table = operator.cli("runs", "ops")
    assert table.splitlines()[0].split()[:3] == ["NAME", "SCHEDULED", "START"]
    assert "ops-1" in table and "Failed" in table and "Manual" in table
    assert "ops-1" in operator.cli("runs", "ops", "--status", "Failed")
    assert "ops-1" not in operator.cli("runs", "ops", "--status", "Succeeded")

    described = operator.cli("describe", "ops-1")
    rows = {line.split()[0]: line.split() for line in described.splitlines()[6:] if line.strip()}
    assert rows["a"][1] == "FINISHED" and rows["b"][1] == "FAILED" and rows["c"][1] == "WAITING_ON_DEPENDENCIES"
    assert "Phase:      Failed" in described

    # Logs come from the pods while they exist.
    assert "hello-from-a" in operator.cli("logs", "ops-1", "--activity", "a")
    assert "b-was-here" in operator.cli("logs", "ops-1", "--activity", "b", "--attempt", "1")

    # rerun --failed-only: only b runs again (attempt 2); a keeps its one attempt.
    assert "rerun" in operator.cli("rerun", "ops-1", "--failed-only")
    operator.wait(lambda: (operator.get("pipelinerun", "ops-1").get("status") or {}).get("handledRerun"))
    operator.wait_phase("ops-1", ("Failed",))
    assert activity_attempts(operator, "ops-1") == {"a": [1], "b": [1, 2]}
    status = operator.get("pipelinerun", "ops-1")["status"]
    assert [x["n"] for x in status["activities"]["b"]["attempts"]] == [1, 2]

    # cancel stops the running Job and marks the run Cancelled.
    operator.cli("run", "slow", "--name", "slow-1")
    operator.wait(lambda: (operator.get("pipelinerun", "slow-1").get("status") or {}).get("activities", {})
                  .get("z", {}).get("status") == "RUNNING", timeout=90)
    assert "cancel requested" in operator.cli("cancel", "slow-1")
    run = operator.wait_phase("slow-1", ("Cancelled",))
    assert run["status"]["activities"]["z"]["status"] == "CANCELED"
    operator.wait(lambda: not operator.jobs("slow-1"), timeout=60)
    assert "Cancelled" in operator.cli("runs", "slow")
    reasons = [e["reason"] for e in operator.events("PipelineRun", "slow-1")]
    assert "RunCancelled" in reasons and "ActivityCanceled" in reasons


def test_example_hello_shell_runs_to_succeeded(operator: Operator) -> None:
    path = ROOT / "examples" / "hello-shell.yaml"
    doc = yaml.safe_load(Path(path).read_text())
    operator.apply(doc)  # activated, every 15 minutes from the first activation: one run right away
    name = operator.wait(lambda: [r["metadata"]["name"] for r in operator.runs("hello-shell")], timeout=60)[0]
    run = operator.wait_phase(name, timeout=240)
    acts = run["status"]["activities"]
    assert {n: a["status"] for n, a in acts.items()} == {"extract": "FINISHED", "transform": "FINISHED",
                                                         "load": "FINISHED"}
    assert "hello from " + run["spec"]["scheduledStartTime"][:10] in operator.cli("logs", name, "--activity",
                                                                                  "extract")
    assert "interval ends " in operator.cli("logs", name, "--activity", "transform")
    pipeline = operator.get("pipeline", "hello-shell")["status"]
    operator.wait(lambda: operator.get("pipeline", "hello-shell")["status"].get("health") == "HEALTHY", timeout=30)
    assert pipeline.get("nextRunTime")
