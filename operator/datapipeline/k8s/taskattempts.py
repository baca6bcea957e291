"""The TaskAttempt of one attempt routed to a poll worker group: a pure function from resolved task to manifest.

The same inputs as :func:`~datapipeline.k8s.jobs.build_job_spec`, the same labels (plus the worker group),
the same variables; Secret-backed variables stay references (``secretEnv``), resolved by the poller on its
own machine (docs/worker-groups.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from datapipeline.core.definition import API_VERSION
from datapipeline.core.model import PipelineDefinition, WorkerGroup
from datapipeline.core.resolve import SecretEnv
from datapipeline.core.task import TASK_ENV, TaskSpec
from datapipeline.core.taskattempt import KIND
from datapipeline.k8s.jobs import (
    ANNOTATION_ACTIVITY,
    ANNOTATION_OBJECT,
    LABEL_WORKER_GROUP,
    Owner,
    attempt_labels,
    aws_secret_env,
    with_progress_env,
)


def build_task_attempt(*, name: str, namespace: str, owner: Owner, pipeline: str, task: TaskSpec,
                       definition: PipelineDefinition, activity: str, group: WorkerGroup,
                       secrets: Sequence[SecretEnv] = (), deadline: timedelta | None = None,
                       extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    labels = {**attempt_labels(pipeline, owner, activity, task), LABEL_WORKER_GROUP: group.name}
    env = with_progress_env(definition, task, extra_env, {})
    env["AWS_DEFAULT_REGION"] = definition.aws.region
    spec: dict[str, Any] = {
        "workerGroup": group.name,
        "task": task.to_json(),
        "env": [{"name": k, "value": v} for k, v in sorted(env.items()) if k != TASK_ENV],
        "secretEnv": [{"name": s.env, "secret": s.secret, "key": s.key}
                      for s in (*secrets, *aws_secret_env(definition))],
        "leaseSeconds": group.lease_seconds,
    }
    if deadline is not None:
        spec["deadlineSeconds"] = max(1, int(deadline.total_seconds()))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "annotations": {ANNOTATION_OBJECT: task.name, ANNOTATION_ACTIVITY: activity},
                     "ownerReferences": [owner.reference()]},
        "spec": spec,
    }
