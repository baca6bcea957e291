"""The console as the chart deploys it (console.enabled): its own image (runner-image/Dockerfile, target console,
with Graphviz), its Service reached through ``kubectl port-forward``, each request acting with its bearer token,
and a service account that may read Pipelines and PipelineRuns and nothing else."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHART, REPO, image_args
from e2e_helpers import helm, wait_for
from fixtures.cluster import KubeCluster
from fixtures.console_http import get, post_action

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
CONSOLE_IMAGE = os.environ.get("KDP_CONSOLE_IMAGE", "localhost/kube-datapipeline-console:dev")


@pytest.fixture(scope="session")
def console_image(kube_cluster: KubeCluster) -> str:
    """The console image in the dev cluster's containerd, built (cached by content) by devcluster.py."""
    if not kube_cluster.dev_cluster:
        pytest.skip(f"the console image is built into the dev cluster; push {CONSOLE_IMAGE} to your cluster "
                    "yourself (docker build -f runner-image/Dockerfile --target console .)")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "cluster" / "devcluster.py"), "build-images",
                           "--console"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"build-images --console failed:\n{proc.stderr[-4000:]}"
    print(f"console image ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return CONSOLE_IMAGE


@pytest.fixture
def console_release(kube_cluster: KubeCluster, crds_applied: None, namespace: str,
                    console_image: str) -> Iterator[str]:
    name = f"kdp-{uuid.uuid4().hex[:6]}"
    repository, _, tag = console_image.rpartition(":")
    result = helm(kube_cluster, "install", name, str(CHART), "-n", namespace, "--set", "crds.install=false",
                  "--set", f"watchNamespaces={{{namespace}}}", *image_args(kube_cluster),
                  "--set", "console.enabled=true", "--set", f"console.image.repository={repository}",
                  "--set", f"console.image.tag={tag}", "--wait", "--timeout", "180s", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    yield name
    helm(kube_cluster, "uninstall", name, "-n", namespace, check=False)


class PortForward:
    """``kubectl port-forward svc/NAME`` on a free loopback port."""

    def __init__(self, cluster: KubeCluster, namespace: str, service: str, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen([cluster.kubectl_bin, "--kubeconfig", cluster.kubeconfig, "-n", namespace,
                                      "port-forward", "--address", "127.0.0.1", f"svc/{service}",
                                      f"{self.port}:80"], stdout=log.open("ab"), stderr=subprocess.STDOUT)
        wait_for(self._answers, 60, f"the port-forward to answer (its log: {log})")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"kubectl port-forward exited: {self.log.read_text()}")
        return get(self.url, "/healthz", None)[0] == 200

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def token_of(cluster: KubeCluster, namespace: str, account: str, verbs: str | None) -> str:
    """A token of a new ServiceAccount that may ``verbs`` Pipelines and PipelineRuns there (None: nothing)."""
    cluster.kubectl("-n", namespace, "create", "serviceaccount", account)
    if verbs:
        cluster.kubectl("-n", namespace, "create", "role", account, f"--verb={verbs}",
                        "--resource=pipelines.datapipeline.io,pipelineruns.datapipeline.io")
        cluster.kubectl("-n", namespace, "create", "rolebinding", account, f"--role={account}",
                        f"--serviceaccount={namespace}:{account}")
    return str(cluster.kubectl("-n", namespace, "create", "token", account, "--duration=1h").stdout).strip()


PIPELINE = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "nightly"},
            "spec": {"scheduleType": "ondemand", "activities": [
                {"name": "extract", "type": "ShellCommandActivity", "command": "echo extract"},
                {"name": "load", "type": "ShellCommandActivity", "command": "echo load", "dependsOn": ["extract"]}]}}


def test_the_charts_console_serves_each_user_what_the_api_server_lets_them_see(
        kube_cluster: KubeCluster, namespace: str, console_release: str, tmp_path: Path) -> None:
    account = f"system:serviceaccount:{namespace}:{console_release}-console"
    # Its own identity: the watch cache's reads, nothing more (no Secrets, no pods, no writes).
    for verb, resource, allowed in (("list", "pipelines.datapipeline.io", "yes"),
                                    ("watch", "pipelineruns.datapipeline.io", "yes"),
                                    ("get", "secrets", "no"), ("list", "pods", "no"), ("get", "pods/log", "no"),
                                    ("create", "pipelineruns.datapipeline.io", "no"),
                                    ("patch", "pipelineruns.datapipeline.io", "no")):
        answer = kube_cluster.kubectl("-n", namespace, "auth", "can-i", verb, resource, f"--as={account}",
                                      check=False)
        assert answer.stdout.strip() == allowed, (verb, resource, answer.stdout, answer.stderr)
    subprocess.run([kube_cluster.kubectl_bin, "--kubeconfig", kube_cluster.kubeconfig, "-n", namespace, "apply",
                    "-f", "-"], input=json.dumps(PIPELINE), text=True, check=True, capture_output=True, timeout=60)
    viewer = token_of(kube_cluster, namespace, "viewer", "get,list,watch")
    nobody = token_of(kube_cluster, namespace, "nobody", None)
    forward = PortForward(kube_cluster, namespace, f"{console_release}-console", tmp_path / "port-forward.log")
    try:
        status, page = get(forward.url, "/", None)
        assert status == 401 and "Bearer" in page
        # The cache fills from its watch: the pipeline appears for the viewer once the console has seen it.
        wait_for(lambda: f'data-pipeline="{namespace}/nightly"' in get(forward.url, "/", viewer)[1], 60,
                 "the viewer to see the pipeline")
        status, page = get(forward.url, f"/pipelines/{namespace}/nightly", viewer)
        assert status == 200 and "<svg" in page and "extract" in page  # laid out by dot inside the image
        status, page = get(forward.url, "/", nobody)
        assert status == 200 and "nightly" not in page
        assert get(forward.url, f"/pipelines/{namespace}/nightly", nobody)[0] == 404
        status, answer = post_action(forward.url, {"action": "run-now", "namespace": namespace, "pipeline": "nightly"},
                                     viewer)
        assert status == 403 and f"system:serviceaccount:{namespace}:viewer" in answer["error"], answer
    finally:
        forward.stop()
    runs = kube_cluster.kubectl("-n", namespace, "get", "pipelineruns", "-o", "name").stdout
    assert runs.strip() == ""  # the viewer's refused run was not made by the console's identity either
