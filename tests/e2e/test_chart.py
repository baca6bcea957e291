"""The chart on the real cluster: lint, server-side dry run, and an install whose operator pod runs a pipeline.

The release watches only the test's namespace, so operators of other tests never see its resources. The
CRDs are cluster-wide and shared by every test: the session applies them from crds/ and the release is
installed with crds.install=false; the chart's CRD template is checked by a server-side dry run instead.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from e2e_helpers import helm, wait_for
from fixtures.cluster import KubeCluster

from datapipeline.cli.demo import find_helm

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kube-datapipeline"
EXAMPLE = REPO / "examples" / "hello-shell.yaml"

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def test_chart_lints() -> None:
    result = subprocess.run([find_helm(), "lint", str(CHART), "--strict"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_values_schema_rejects_a_misspelt_value() -> None:
    result = subprocess.run([find_helm(), "template", "x", str(CHART), "--set", "watchNamespace=a"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "watchNamespace" in result.stderr


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={a,b}", "--set", "webhook.enabled=true",
                                         "--set", "operator.logLevel=debug", "--set", "console.enabled=true"]],
                         ids=["cluster-wide", "namespaced"])
def test_rendered_chart_passes_a_server_side_dry_run(kube_cluster: KubeCluster, crds_applied: None,
                                                     values: list[str]) -> None:
    namespace = f"kdp-dry-{uuid.uuid4().hex[:6]}"
    rendered = helm(kube_cluster, "template", "kdp", str(CHART), "-n", namespace, *values).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "CustomResourceDefinition"} <= kinds
    # Namespaced objects need their namespace to exist for a server-side dry run.
    for ns in {namespace, "a", "b"} if values else {namespace}:
        kube_cluster.kubectl("create", "namespace", ns, check=False)
    try:
        result = subprocess.run([kube_cluster.kubectl_bin, "--kubeconfig", kube_cluster.kubeconfig, "apply",
                                 "--dry-run=server", "-f", "-"], input=rendered, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    finally:
        for ns in {namespace, "a", "b"} if values else {namespace}:
            kube_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_operator_role_cannot_read_secrets(kube_cluster: KubeCluster) -> None:
    rendered = helm(kube_cluster, "template", "kdp", str(CHART)).stdout
    rules = [rule for d in yaml.safe_load_all(rendered) if d and d["kind"] in ("ClusterRole", "Role")
             for rule in d["rules"]]
    assert not [r for r in rules if "secrets" in r.get("resources", [])]
    assert not [r for r in rules if "*" in r.get("verbs", []) or "*" in r.get("resources", [])]


def test_installed_operator_runs_the_example_to_succeeded(kube_cluster: KubeCluster, namespace: str,
                                                         release: str) -> None:
    pods = kube_cluster.kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=kube-datapipeline",
                                "-o", "jsonpath={.items[*].status.phase}").stdout.split()
    assert pods == ["Running"], "the operator runs as the chart's pod"
    kube_cluster.kubectl("-n", namespace, "apply", "-f", str(EXAMPLE))

    def finished_run() -> str | None:
        out = kube_cluster.kubectl("-n", namespace, "get", "pipelineruns", "-o",
                                   "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}").stdout
        done = [line for line in out.splitlines() if line.split("=")[-1] in ("Succeeded", "Failed", "Cancelled")]
        return done[0] if done else None

    run = wait_for(finished_run, 300, "the first PipelineRun of hello-shell to finish")
    name, phase = run.split("=")
    logs = kube_cluster.kubectl("-n", namespace, "logs", "deploy/" + f"{release}-operator", "--tail=50",
                                check=False).stdout
    assert phase == "Succeeded", f"{run}\noperator log:\n{logs}"
    kube_cluster.kubectl("-n", namespace, "wait", f"pipelinerun/{name}", "--for=condition=Succeeded",
                         "--timeout=10s")
    jobs = kube_cluster.kubectl("-n", namespace, "get", "jobs", "-l", f"datapipeline.io/run={name}", "-o",
                                "name").stdout.split()
    assert len(jobs) == 3, "one Job per activity attempt: extract, transform, load"


def test_the_operators_service_never_selects_the_consoles_pods() -> None:
    """The console's pods have their own name label: the operator's webhook and metrics never reach them."""
    result = subprocess.run([find_helm(), "template", "x", str(CHART), "--set", "console.enabled=true"],
                            capture_output=True, text=True, check=True)
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    services = {d["metadata"]["name"]: d["spec"]["selector"] for d in docs if d["kind"] == "Service"}
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in docs
            if d["kind"] == "Deployment"}
    assert set(services) == set(pods) == {"x-operator", "x-console"}
    for service, selector in services.items():
        selected = [pod for pod, labels in pods.items() if selector.items() <= labels.items()]
        assert selected == [service], (service, selected)
