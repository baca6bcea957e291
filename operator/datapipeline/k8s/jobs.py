"""The Kubernetes Job of one attempt, check or action: a pure function from resolved task to manifest.

No API calls here. The controller creates what :func:`build_job_spec` returns; ``AlreadyExists``
means an earlier pass created it (names are deterministic), which is fine.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from datapipeline.core.definition import API_VERSION, GROUP
from datapipeline.core.model import PipelineDefinition, PipelineObject
from datapipeline.core.resolve import SecretEnv
from datapipeline.core.sparkconf import (
    CREDENTIALS_SECRET_ENV,
    MODE_KUBERNETES,
    POD_IP_ENV,
    POD_NAME_ENV,
    POD_NAMESPACE_ENV,
)
from datapipeline.core.task import (
    HEADER_ENV_PREFIX,
    PROGRESS_ENV,
    PROGRESS_INTERVAL_SECONDS,
    SECRET_ENV_LIST,
    SECRET_MOUNT_DIR,
    TASK_ENV,
    TERMINATION_LOG,
    TaskSpec,
)

LABEL_PIPELINE = f"{GROUP}/pipeline"
LABEL_RUN = f"{GROUP}/run"
LABEL_ACTIVITY = f"{GROUP}/activity"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_KIND = f"{GROUP}/kind"
LABEL_OBJECT = f"{GROUP}/object"
LABEL_WORKER_GROUP = f"{GROUP}/worker-group"  # the node label a workerGroup selects
LABEL_RERUN = f"{GROUP}/rerun"  # an attempt of a rerun: maxActiveInstances does not count it
ANNOTATION_OBJECT = f"{GROUP}/object"
ANNOTATION_ACTIVITY = f"{GROUP}/activity"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kube-datapipeline"}
DEFAULT_IMAGE = "localhost/kube-datapipeline:dev"
IMAGE_ENV = "DATAPIPELINE_RUNNER_IMAGE"
RUNNER_COMMAND = ["datapipeline-runner"]
RUNNER_UID = 10001
# Requests and limits of a Job whose compute profile sets neither cpu nor memory (the chart's jobs.resources,
# as JSON); without it, these. A Job without limits could starve its node.
JOB_RESOURCES_ENV = "DATAPIPELINE_JOB_RESOURCES"
DEFAULT_JOB_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


@dataclass(frozen=True)
class Owner:
    """The PipelineRun that owns the Job (garbage collection deletes the Job with it)."""

    name: str
    uid: str
    kind: str = "PipelineRun"
    api_version: str = API_VERSION

    def reference(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid,
                "controller": True, "blockOwnerDeletion": True}


def label_value(text: str) -> str:
    """A valid label value: at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric."""
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return value.strip("-_.")


def runner_image(definition: PipelineDefinition, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return definition.runner_image or env.get(IMAGE_ENV) or DEFAULT_IMAGE


def _profile(definition: PipelineDefinition, task: TaskSpec, activity: str | None) -> PipelineObject | None:
    runs_on: str | None = None
    if task.kind == "activity":
        runs_on = definition.activities[task.name].runs_on
    elif task.kind == "precondition":
        runs_on = definition.objects["preconditions"][task.name].get("runsOn")
    elif activity and activity in definition.activities:
        runs_on = definition.activities[activity].runs_on
    if not runs_on:
        return None
    return definition.find(runs_on, ("computeProfiles", "clusterProfiles"))


def build_job_spec(*, name: str, namespace: str, owner: Owner, pipeline: str, task: TaskSpec,
                   definition: PipelineDefinition, activity: str, secrets: Sequence[SecretEnv] = (),
                   deadline: timedelta | None = None, environ: Mapping[str, str] | None = None,
                   extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The batch/v1 Job for one task. ``secrets`` become ``secretKeyRef`` env vars (never read here)."""
    profile = _profile(definition, task, activity)
    image = runner_image(definition, environ)
    if profile is not None and profile.get("image"):
        image = str(profile.get("image"))
    labels = attempt_labels(pipeline, owner, activity, task)
    annotations = {ANNOTATION_OBJECT: task.name, ANNOTATION_ACTIVITY: activity}
    env: list[dict[str, Any]] = [{"name": TASK_ENV, "value": task.to_json()}]
    profile_env = (profile.get("env") or {}) if profile is not None else {}
    for key, value in sorted(with_progress_env(definition, task, extra_env, profile_env).items()):
        env.append({"name": key, "value": value})
    for secret in (*secrets, *aws_secret_env(definition)):
        env.append({"name": secret.env, "valueFrom": {"secretKeyRef": {"name": secret.secret, "key": secret.key}}})
    env.append({"name": "AWS_DEFAULT_REGION", "value": definition.aws.region})
    if profile is not None and profile.section == "clusterProfiles" and profile.get("mode") == MODE_KUBERNETES:
        env += spark_driver_env(definition)
    env_from: list[dict[str, Any]] = []
    resources: dict[str, Any] = {}
    pod_extra: dict[str, Any] = {}
    secret_volumes: list[str] = []
    if profile is not None:
        for key, value in sorted((profile.get("env") or {}).items()):
            env.append({"name": key, "value": str(value)})
        for secret_name in profile.get("envFromSecrets") or ():
            env_from.append({"secretRef": {"name": secret_name}})
            secret_volumes.append(str(secret_name))
        cpu = profile.get("cpu") or profile.get("driverCpu")
        memory = profile.get("memory") or profile.get("driverMemory")
        if cpu or memory:
            amounts = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
            resources = {"requests": dict(amounts), "limits": dict(amounts)}
        if profile.get("nodeSelector"):
            pod_extra["nodeSelector"] = dict(profile.get("nodeSelector"))
        if profile.get("tolerations"):
            pod_extra["tolerations"] = [dict(t) for t in profile.get("tolerations")]
        if profile.get("serviceAccountName"):
            pod_extra["serviceAccountName"] = profile.get("serviceAccountName")
    group = definition.worker_group_of(task.kind, task.name, activity)
    if group is not None and profile is None:
        pod_extra["nodeSelector"] = {LABEL_WORKER_GROUP: group.name}
    if task.kind == "action" and task.fields.get("headersFromSecret"):
        env_from.append({"prefix": HEADER_ENV_PREFIX, "secretRef": {"name": str(task.fields["headersFromSecret"])}})
    container: dict[str, Any] = {
        "name": "task",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(RUNNER_COMMAND),
        "env": env,
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID,
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "home", "mountPath": "/home/runner"}],
    }
    from_secrets = sorted({e["name"] for e in env if "secretKeyRef" in (e.get("valueFrom") or {})})
    if from_secrets:
        env.append({"name": SECRET_ENV_LIST, "value": ",".join(from_secrets)})
    for index in range(len(secret_volumes)):
        container["volumeMounts"].append({"name": f"secret-{index}", "mountPath": f"{SECRET_MOUNT_DIR}/{index}",
                                          "readOnly": True})
    if env_from:
        container["envFrom"] = env_from
    container["resources"] = resources or default_resources(os.environ if environ is None else environ)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": bool(pod_extra.get("serviceAccountName")),
        "securityContext": {"runAsNonRoot": True, "fsGroup": RUNNER_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "home", "emptyDir": {}},
                    *({"name": f"secret-{i}", "secret": {"secretName": n, "defaultMode": 0o440}}
                      for i, n in enumerate(secret_volumes))],
        **pod_extra,
    }
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,  # retries are the operator's (maximumRetries, retryDelay)
        "template": {"metadata": {"labels": dict(labels), "annotations": dict(annotations)}, "spec": pod_spec},
    }
    limit = _deadline(deadline, profile)
    if limit is not None:
        job_spec["activeDeadlineSeconds"] = max(1, int(limit.total_seconds()))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations,
                     "ownerReferences": [owner.reference()]},
        "spec": job_spec,
    }


def attempt_labels(pipeline: str, owner: Owner, activity: str, task: TaskSpec) -> dict[str, str]:
    """The labels of an attempt's Job (and its pod) or TaskAttempt."""
    return {
        **MANAGED_BY,
        LABEL_PIPELINE: label_value(pipeline),
        LABEL_RUN: label_value(owner.name),
        LABEL_ACTIVITY: label_value(activity),
        LABEL_ATTEMPT: str(task.attempt),
        LABEL_KIND: task.kind,
        LABEL_OBJECT: label_value(task.name),
    }


def with_progress_env(definition: PipelineDefinition, task: TaskSpec, extra_env: Mapping[str, str] | None,
                      profile_env: Mapping[str, Any]) -> dict[str, str]:
    """The task's plain variables, plus the heartbeat interval when the activity has reportProgressTimeout."""
    env = dict(extra_env or {})
    stall = definition.activities[task.name].report_progress_timeout if task.kind == "activity" else None
    if stall is not None and PROGRESS_ENV not in profile_env and PROGRESS_ENV not in env:
        # Heartbeats well within reportProgressTimeout, so a live attempt never looks stalled.
        seconds = min(float(PROGRESS_INTERVAL_SECONDS), max(1.0, stall.total_seconds() / 3))
        env[PROGRESS_ENV] = f"{seconds:g}"
    return env


def aws_secret_env(definition: PipelineDefinition) -> tuple[SecretEnv, ...]:
    """The pipeline's AWS keys, from its credentials Secret."""
    secret = definition.aws.credentials_secret
    if not secret:
        return ()
    return tuple(SecretEnv(key, secret, key) for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))


def spark_driver_env(definition: PipelineDefinition) -> list[dict[str, Any]]:
    """A Spark driver's view of its own pod (docs/spark.md, mode kubernetes), and the credentials Secret's name
    for its executors' secretKeyRefs (the name only: the keys stay in the Secret)."""
    env: list[dict[str, Any]] = [
        {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for name, path in ((POD_NAME_ENV, "metadata.name"), (POD_NAMESPACE_ENV, "metadata.namespace"),
                           (POD_IP_ENV, "status.podIP"))]
    if definition.aws.credentials_secret:
        env.append({"name": CREDENTIALS_SECRET_ENV, "value": definition.aws.credentials_secret})
    return env


def default_resources(environ: Mapping[str, str]) -> dict[str, Any]:
    raw = environ.get(JOB_RESOURCES_ENV)
    if raw:
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    return {k: dict(v) for k, v in DEFAULT_JOB_RESOURCES.items()}


def _deadline(deadline: timedelta | None, profile: PipelineObject | None) -> timedelta | None:
    limits = [d for d in (deadline, profile.get("terminateAfter") if profile is not None else None) if d is not None]
    return min(limits) if limits else None


def job_selector(run: str) -> str:
    return f"{LABEL_RUN}={label_value(run)}"
