"""The cluster itself: what the operator relies on works for real (Job controller, GC, logs, CRDs)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.cluster import KubeCluster
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 120, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def job_manifest(name: str, image: str, command: list[str], backoff_limit: int = 0) -> client.V1Job:
    container = client.V1Container(name="main", image=image, image_pull_policy="IfNotPresent", command=command)
    pod = client.V1PodSpec(restart_policy="Never", containers=[container], termination_grace_period_seconds=1)
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(backoff_limit=backoff_limit,
                              template=client.V1PodTemplateSpec(spec=pod)),
    )


def job_condition(batch: client.BatchV1Api, namespace: str, name: str) -> client.V1JobCondition | None:
    """The Job's terminal condition (Complete or Failed), once it has one."""
    job = batch.read_namespaced_job_status(name, namespace)
    for cond in job.status.conditions or []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return cond
    return None


def job_pods(core: client.CoreV1Api, namespace: str, job: str) -> list[client.V1Pod]:
    pods: list[client.V1Pod] = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    return pods


def exit_code(pod: client.V1Pod) -> int | None:
    for status in pod.status.container_statuses or []:
        if status.state.terminated is not None:
            return int(status.state.terminated.exit_code)
    return None


def test_node_is_ready(kube_cluster: KubeCluster) -> None:
    nodes = client.CoreV1Api(kube_cluster.api).list_node().items
    ready = [n.metadata.name for n in nodes
             if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
    assert ready, f"no Ready node among {[n.metadata.name for n in nodes]}"


def test_kubectl_apply_crds(kube_cluster: KubeCluster) -> None:
    files = sorted(CRDS.glob("*.yaml"))
    assert files, "crds/*.yaml missing"
    out = kube_cluster.kubectl("apply", "-f", str(CRDS), check=False)
    assert out.returncode == 0, out.stderr
    ext = client.ApiextensionsV1Api(kube_cluster.api)
    for crd_file in files:
        name = crd_file.name.removesuffix(".yaml")

        def established(name: str = name) -> bool:
            crd = ext.read_custom_resource_definition(name)
            return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

        wait_until(f"CRD {name} Established", established, timeout=30)


def test_job_runs_runner_image_and_logs_are_readable(kube_cluster: KubeCluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(kube_cluster.api), client.CoreV1Api(kube_cluster.api)
    script = "import os, sys; print('hello from the runner image as uid', os.getuid()); sys.exit(0)"
    batch.create_namespaced_job(namespace, job_manifest("hello", kube_cluster.runner_image,
                                                        ["python3", "-c", script]))
    cond = wait_until("Job hello to finish", lambda: job_condition(batch, namespace, "hello"))
    assert cond.type == "Complete", f"{cond.type}: {cond.reason} {cond.message}"
    (pod,) = job_pods(core, namespace, "hello")
    assert exit_code(pod) == 0
    logs = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    assert logs.strip() == "hello from the runner image as uid 10001"
    # The same through kubectl, as a user would read them.
    assert "hello from the runner image" in kube_cluster.kubectl("logs", "-n", namespace, "job/hello").stdout


def test_failing_job_retries_per_backoff_limit(kube_cluster: KubeCluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(kube_cluster.api), client.CoreV1Api(kube_cluster.api)
    command = ["python3", "-c", "import sys; print('failing'); sys.exit(3)"]
    batch.create_namespaced_job(namespace, job_manifest("fails", kube_cluster.runner_image, command,
                                                        backoff_limit=2))
    # The Job controller's own backoff (10s, 20s) between the three attempts.
    cond = wait_until("Job fails to fail", lambda: job_condition(batch, namespace, "fails"), timeout=240)
    assert (cond.type, cond.reason) == ("Failed", "BackoffLimitExceeded")
    pods = job_pods(core, namespace, "fails")
    assert len(pods) == 3, [p.metadata.name for p in pods]
    assert [exit_code(p) for p in pods] == [3, 3, 3]
    assert batch.read_namespaced_job_status("fails", namespace).status.failed == 3


def test_deleting_owner_garbage_collects_owned_job(kube_cluster: KubeCluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(kube_cluster.api), client.CoreV1Api(kube_cluster.api)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="owner"), data={"k": "v"}))
    job = job_manifest("owned", kube_cluster.runner_image, ["python3", "-c", "import time; time.sleep(600)"])
    job.metadata.owner_references = [client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, block_owner_deletion=True)]
    batch.create_namespaced_job(namespace, job)
    wait_until("the owned Job's pod to run",
               lambda: any(p.status.phase == "Running" for p in job_pods(core, namespace, "owned")))

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Foreground")

    def job_gone() -> bool:
        try:
            batch.read_namespaced_job("owned", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_until("the garbage collector to delete the Job", job_gone, timeout=60)
    wait_until("the Job's pods to go", lambda: not job_pods(core, namespace, "owned"), timeout=60)


def test_pod_reaches_api_through_kubernetes_service_and_nothing_else(
        kube_cluster: KubeCluster, namespace: str) -> None:
    """What the operator needs in-cluster (its service account, the `kubernetes` Service)
    works; and on the dev cluster a pod has no route off this machine."""
    batch, core = client.BatchV1Api(kube_cluster.api), client.CoreV1Api(kube_cluster.api)
    script = "\n".join([
        "import errno, socket, sys",
        "from kubernetes import client, config",
        "config.load_incluster_config()",
        "print('api', client.VersionApi().get_code().git_version)",
        "if sys.argv[1] == 'dev':",
        "    try:",
        "        socket.create_connection(('192.0.2.1', 80), timeout=3)",  # TEST-NET-1: never a real host
        "        print('outside reachable')",
        "    except OSError as exc:",
        "        print('outside', errno.errorcode.get(exc.errno, exc))",
    ])
    mode = "dev" if kube_cluster.dev_cluster else "other"
    name = f"net-{uuid.uuid4().hex[:6]}"
    batch.create_namespaced_job(namespace, job_manifest(name, kube_cluster.runner_image,
                                                        ["python3", "-c", script, mode]))
    cond = wait_until(f"Job {name} to finish", lambda: job_condition(batch, namespace, name))
    (pod,) = job_pods(core, namespace, name)
    logs = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    assert cond.type == "Complete", logs
    assert logs.startswith("api v1."), logs
    if kube_cluster.dev_cluster:
        assert "outside ENETUNREACH" in logs, logs
