"""The CRDs and every example and template against a real API server (server-side dry runs)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fixtures.cluster import KubeCluster

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = sorted([*REPO.glob("examples/*.yaml"), *REPO.glob("examples/templates/*.yaml")])

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def crds(kube_cluster: KubeCluster) -> None:
    kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for name in ("pipelines.datapipeline.io", "pipelineruns.datapipeline.io"):
        kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def dry_run(cluster: KubeCluster, namespace: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cluster.kubectl_bin, "--kubeconfig", cluster.kubeconfig, "-n", namespace, "apply",
                           "--dry-run=server", "-f", "-"], input=text, capture_output=True, text=True, timeout=60)


def test_crds_are_served_with_their_short_names(kube_cluster: KubeCluster, crds: None) -> None:
    resources = kube_cluster.kubectl("api-resources", "--api-group=datapipeline.io", "-o", "wide").stdout
    assert "dpl " in resources and "dplrun" in resources
    explained = kube_cluster.kubectl("explain", "pipeline.spec.activities.maximumRetries").stdout
    assert "retried" in explained


@pytest.mark.parametrize("path", MANIFESTS, ids=[str(p.relative_to(REPO)) for p in MANIFESTS])
def test_example_passes_a_server_side_dry_run(kube_cluster: KubeCluster, crds: None, namespace: str,
                                              path: Path) -> None:
    result = dry_run(kube_cluster, namespace, path.read_text())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("mistake", "message"), [
    ("schedule: {cron: '0 3 * * *', period: 1 day}", "set exactly one of cron and period"),
    ("schedule: {period: 1 day, endDateTime: '2030-01-01T00:00:00Z', occurrences: 3}",
     "set at most one of endDateTime and occurrences"),
    ("scheduleType: weekly", "Unsupported value"),
    ("activities: []", "spec.activities"),
])
def test_the_api_server_rejects_what_the_crd_rules_catch(kube_cluster: KubeCluster, crds: None, namespace: str,
                                                          mistake: str, message: str) -> None:
    lines = {"schedule": "schedule: {period: 1 day}",
             "activities": "activities: [{name: a, type: ShellCommandActivity, command: 'true'}]"}
    key = mistake.split(":")[0]
    lines[key] = mistake
    body = "\n".join(f"  {line}" for line in lines.values())
    manifest = f"apiVersion: datapipeline.io/v1alpha1\nkind: Pipeline\nmetadata:\n  name: p-{uuid.uuid4().hex[:6]}\n" \
               f"spec:\n{body}\n"
    result = dry_run(kube_cluster, namespace, manifest)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("overlay", ["staging", "production"])
def test_gitops_overlays_render_to_valid_pipelines(kube_cluster: KubeCluster, overlay: str) -> None:
    rendered = kube_cluster.kubectl("kustomize", str(REPO / "examples" / "gitops" / "overlays" / overlay)).stdout
    assert f"namespace: data-{overlay}" in rendered
    result = subprocess.run([sys.executable, "-m", "datapipeline.cli.main", "validate", "-"], input=rendered,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Pipeline/nightly-orders: valid" in result.stdout
