"""Helpers of the e2e tier."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from fixtures.cluster import KubeCluster

from datapipeline.cli.demo import find_helm


def helm(cluster: KubeCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_helm(), "--kubeconfig", cluster.kubeconfig, *args], capture_output=True,
                          text=True, check=check, timeout=300)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


