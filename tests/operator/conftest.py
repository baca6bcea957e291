"""Operator tests against the real dev cluster (fixtures ``kube_cluster`` and ``namespace``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kdp_harness import ROOT, Operator, _kubeconfig


@pytest.fixture()
def operator(kube_cluster: Any, namespace: Any, tmp_path: Path) -> Iterator[Operator]:
    ns = getattr(namespace, "name", namespace)
    kubeconfig = _kubeconfig(kube_cluster)
    op = Operator(kubeconfig, str(ns), tmp_path / "operator.log")
    for crd in sorted((ROOT / "crds").glob("*.yaml")):
        subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "-f", str(crd)], check=True,
                       capture_output=True, timeout=60)
    op.start()
    try:
        yield op
    finally:
        op.stop()


