"""Two operator replicas with leader election; the leader SIGKILLed while 20 runs are under way (#12).

Every run must finish and no attempt may run twice: each activity of each run has exactly one Job, attempt 1.
The replicas may wait 60 s to save a new run's first status (the default is 5 s), so the leader surely dies with
runs whose Jobs exist and whose status was never saved: the new leader must adopt those Jobs, not make others.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kdp_harness import ROOT, Operator, _kubeconfig, activity_attempts, pipeline_doc, run_doc, shell

from datapipeline.k8s.jobs import LABEL_RUN

pytestmark = pytest.mark.cluster
LEASE = "kdp-test-leader"
RUNS = 20


@pytest.fixture()
def replicas(kube_cluster: Any, namespace: Any, tmp_path: Path) -> Iterator[list[Operator]]:
    ns = str(getattr(namespace, "name", namespace))
    kubeconfig = _kubeconfig(kube_cluster)
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", str(crd)], check=True,
                       capture_output=True, timeout=60)
    found = []
    for name in ("replica-a", "replica-b"):
        env = {"DATAPIPELINE_LEADER_ELECTION": "true", "DATAPIPELINE_LEADER_LEASE": LEASE, "POD_NAMESPACE": ns,
               "POD_NAME": name, "DATAPIPELINE_LEASE_SECONDS": "6,4,1", "DATAPIPELINE_STATUS_DELAY": "60"}
        found.append(Operator(kubeconfig, ns, tmp_path / f"{name}.log", env))
    for op in found:
        op.start()
    try:
        yield found
    finally:
        for op in found:
            op.stop()


def holder(op: Operator) -> str:
    lease = json.loads(op.kubectl("get", "lease", LEASE, "-o", "json"))
    return str(lease["spec"]["holderIdentity"])


def test_the_leader_killed_during_twenty_runs_every_run_finishes_and_no_attempt_runs_twice(
        replicas: list[Operator]) -> None:
    a, b = replicas
    leader_name = a.wait(lambda: holder(a), timeout=60)
    leader, standby = (a, b) if leader_name == "replica-a" else (b, a)
    leader.apply(pipeline_doc("many", [shell("first", "sleep 2"), shell("second", "sleep 2", dependsOn=["first"])],
                              scheduleType="ondemand", activated=False, defaults={"maxActiveInstances": RUNS},
                              successfulRunsHistoryLimit=RUNS, failedRunsHistoryLimit=RUNS))
    for i in range(RUNS):
        leader.apply(run_doc(f"many-{i:02d}", "many"))
    # Kill the leader once some runs are part way: some Jobs made, some runs not yet started.
    leader.wait(lambda: len(leader.get("jobs")["items"]) >= 8, timeout=120, every=0.5)
    unsaved = [r["metadata"]["name"] for r in leader.get("pipelineruns")["items"] if not r.get("status")]
    leader.kill()
    with_jobs = {j["metadata"]["labels"].get(LABEL_RUN) for j in leader.get("jobs")["items"]}
    assert with_jobs & set(unsaved), (unsaved, with_jobs)  # the window this test is about
    standby.wait(lambda: holder(standby) == ("replica-b" if leader is a else "replica-a"), timeout=60)
    for i in range(RUNS):
        run = standby.wait_phase(f"many-{i:02d}", ("Succeeded", "Failed"), timeout=300)
        assert run["status"]["phase"] == "Succeeded", json.dumps(run["status"], indent=1)[:2000]
        assert activity_attempts(standby, f"many-{i:02d}") == {"first": [1], "second": [1]}
        for activity in ("first", "second"):
            assert run["status"]["activities"][activity]["attempt"] == 1
