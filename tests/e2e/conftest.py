"""Fixtures of the e2e tier: the CRDs applied once, and a chart release per test watching its namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import helm
from fixtures.cluster import KubeCluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kube-datapipeline"


@pytest.fixture(scope="session")
def crds_applied(kube_cluster: KubeCluster) -> None:
    kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for name in ("pipelines.datapipeline.io", "pipelineruns.datapipeline.io"):
        kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def image_args(cluster: KubeCluster) -> list[str]:
    repository, _, tag = cluster.runner_image.rpartition(":")
    return ["--set", f"image.repository={repository}", "--set", f"image.tag={tag}"]


@pytest.fixture
def release(kube_cluster: KubeCluster, crds_applied: None, namespace: str) -> Iterator[str]:
    name = f"kdp-{uuid.uuid4().hex[:6]}"
    result = helm(kube_cluster, "install", name, str(CHART), "-n", namespace, "--set", "crds.install=false",
                  "--set", f"watchNamespaces={{{namespace}}}", *image_args(kube_cluster), "--wait",
                  "--timeout", "180s", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    yield name
    helm(kube_cluster, "uninstall", name, "-n", namespace, check=False)


