"""The validating webhook on the real cluster: certificates from the chart, scoped, and harmless when the operator dies."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CHART, image_args
from e2e_helpers import helm, wait_for
from fixtures.cluster import KubeCluster

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def pipeline(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": name},
            "spec": {"scheduleType": "ondemand", "activities": [
                {"name": "a", "type": "ShellCommandActivity", "command": "echo #{myDay}"}],
                "parameters": [{"id": "myDay", "default": "2026-01-01", "overridable": True,
                                "pattern": r"\d{4}-\d{2}-\d{2}"}], **spec}}


def _apply(cluster: KubeCluster, namespace: str, doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """kubectl apply of one object (its webhook answer or refusal included)."""
    return subprocess.run([cluster.kubectl_bin, "--kubeconfig", cluster.kubeconfig, "-n", namespace, "apply",
                           "-f", "-"], input=json.dumps(doc), capture_output=True, text=True, timeout=60)


@pytest.fixture
def webhook_release(kube_cluster: KubeCluster, crds_applied: None, namespace: str) -> Iterator[str]:
    name = f"kdp-{uuid.uuid4().hex[:6]}"
    result = helm(kube_cluster, "install", name, str(CHART), "-n", namespace, "--set", "crds.install=false",
                  "--set", f"watchNamespaces={{{namespace}}}", "--set", "webhook.enabled=true",
                  *image_args(kube_cluster), "--wait", "--timeout", "180s", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    yield name
    helm(kube_cluster, "uninstall", name, "-n", namespace, check=False)


def test_the_webhook_refuses_a_broken_pipeline_and_a_bad_run_value_with_the_field_path(
        kube_cluster: KubeCluster, namespace: str, webhook_release: str) -> None:
    broken = pipeline("broken")
    broken["spec"]["activities"][0]["dependsOn"] = ["nope"]
    # The webhook answers once the operator's server is up; until then (Ignore) the object passes, and applying
    # it again unchanged would send nothing: take it back and try again.
    def refused_once() -> subprocess.CompletedProcess[str] | None:
        result = _apply(kube_cluster, namespace, broken)
        if result.returncode == 0:
            kube_cluster.kubectl("-n", namespace, "delete", "pipeline", "broken", check=False)
            return None
        return result

    refused = wait_for(refused_once, 90, "the webhook to answer")
    assert 'spec.activities[0].dependsOn[0]: no activity named "nope"' in refused.stderr
    assert _apply(kube_cluster, namespace, pipeline("fine")).returncode == 0
    run = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun", "metadata": {"name": "fine-1"},
           "spec": {"pipelineRef": {"name": "fine"}, "values": {"myDay": "$(id)"}}}
    result = _apply(kube_cluster, namespace, run)
    assert result.returncode != 0
    assert 'spec.values.myDay: "$(id)" does not match the parameter\'s pattern' in result.stderr
    # Deleting an invalid object is never refused (CREATE and UPDATE only).
    assert kube_cluster.kubectl("-n", namespace, "delete", "pipeline", "fine", check=False).returncode == 0


def test_an_operator_killed_while_the_webhook_is_enabled_blocks_nothing(
        kube_cluster: KubeCluster, namespace: str, webhook_release: str) -> None:
    deployment = f"deployment/{webhook_release}-operator"
    wait_for(lambda: _apply(kube_cluster, namespace, {**pipeline("probe"), "spec": {"activities": []}})
             .returncode != 0, 90, "the webhook to answer")
    kube_cluster.kubectl("-n", namespace, "scale", deployment, "--replicas=0")
    kube_cluster.kubectl("-n", namespace, "delete", "pod", "-l", "app.kubernetes.io/name=kube-datapipeline",
                         "--grace-period=0", "--force", "--wait=true", check=False)  # SIGKILL, no goodbye
    broken = pipeline("while-down")
    broken["spec"]["activities"][0]["dependsOn"] = ["nope"]
    # A force-deleted pod's process outlives its API object for a moment (the kubelet kills it asynchronously and
    # the Service's routing follows later), so it may still answer once or twice. With failurePolicy Fail every
    # apply would be refused from then on ("failed calling webhook"); with Ignore one soon passes.
    attempts: list[str] = []

    def admitted() -> bool:
        result = _apply(kube_cluster, namespace, broken)
        attempts.append(result.stderr.strip())
        return result.returncode == 0

    try:
        wait_for(admitted, 60, "an apply to pass with the operator gone")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}; last refusal: {attempts[-1]}") from None
    assert kube_cluster.kubectl("-n", namespace, "delete", "pipeline", "while-down").returncode == 0
    kube_cluster.kubectl("-n", namespace, "scale", deployment, "--replicas=1")
    # Back up, the operator refuses what the webhook could not: at admission if its server already answers,
    # else in the Pipeline's condition; either way naming the field.
    _apply(kube_cluster, namespace, {**broken, "metadata": {"name": "late"}})

    def late_condition() -> str | None:
        out = kube_cluster.kubectl("-n", namespace, "get", "pipeline", "late", "-o", "json", check=False)
        if out.returncode != 0:
            return "refused-by-webhook"
        conditions = json.loads(out.stdout).get("status", {}).get("conditions") or []
        return next((c["message"] for c in conditions if c["type"] == "Valid" and c["status"] == "False"), None)

    message = wait_for(late_condition, 120, "the operator to judge the Pipeline")
    assert message == "refused-by-webhook" or 'no activity named "nope"' in message
