"""Watch-fed caches of everything a pass reads: kopf indexes of Jobs, pods, TaskAttempts, PipelineRuns and
Pipelines.

kopf keeps each index from its watch, and runs no other handler before every index is filled from the initial
listing: the first pass after a restart already sees every Job of its run (a Job missing from a stale cache
would read as "deleted" and fail its attempt). A worker takes a :class:`Snapshot` on the event loop (plain
lists, copied) and decides in its thread from it, so a pass makes no GET or LIST; the API is read only when no
index is known yet (unit tests, the webhook), once per worker for a run's frozen definition, and to confirm
what the watch may not show yet.

What is kept is trimmed to what the controller reads (a few hundred bytes per object): a run's frozen
definition stays on the API server, its digest in the cache.

Read-your-writes: the cache lags the API by one watch event. A worker remembers the object it wrote (the
status patch's answer) and the Jobs and runs it created, and prefers them while the cache shows the older
version (:func:`freshest`, :func:`with_created`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from datapipeline.controller.facts import Instance, attempt_instance, job_instance
from datapipeline.controller.frozen import FROZEN_SPEC, digest
from datapipeline.core.definition import GROUP, VERSION
from datapipeline.k8s import async_api as writes
from datapipeline.k8s.jobs import LABEL_PIPELINE, LABEL_RUN, label_value

# The frozen copy's digest as the cache computed it (the copy itself is not kept in memory).
SEEN_DIGEST = "pipelineSpecDigestSeen"
INDEX_NAMES = ("run_jobs", "run_pods", "run_attempts", "runs_by_name", "pipeline_runs", "pipelines_by_name",
               "pipeline_job_instances", "pipeline_attempt_instances")
HANDLES: dict[str, Any] = {}  # index name -> the kopf Index (captured from a handler's kwargs)


def capture(kwargs: Mapping[str, Any]) -> None:
    """Keep the kopf indexes a handler was given, for the workers (they are not handlers)."""
    for name in INDEX_NAMES:
        if name in kwargs and name not in HANDLES:
            HANDLES[name] = kwargs[name]


def ready() -> bool:
    return all(name in HANDLES for name in INDEX_NAMES)


# ---------------------------------------------------------------------------- trimming
def _meta(body: Mapping[str, Any], *extra: str) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    keys = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
            "labels", *extra)
    return {k: plain(meta[k]) for k in keys if meta.get(k) is not None}


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _kind(body: Mapping[str, Any]) -> dict[str, Any]:
    """apiVersion and kind: Events name the object by them (involvedObject)."""
    return {k: body[k] for k in ("apiVersion", "kind") if body.get(k)}


def trim_job(body: Mapping[str, Any]) -> dict[str, Any]:
    spec = body.get("spec") or {}
    return {"metadata": _meta(body, "ownerReferences"),
            "spec": {"activeDeadlineSeconds": spec.get("activeDeadlineSeconds")},
            "status": plain(body.get("status") or {})}


def trim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    status = body.get("status") or {}
    return {"metadata": _meta(body), "status": {k: plain(status[k]) for k in
                                                ("phase", "startTime", "containerStatuses") if k in status}}


def trim_run(body: Mapping[str, Any]) -> dict[str, Any]:
    """The run as its worker reads it, without the frozen copy (its digest instead)."""
    status = {k: plain(v) for k, v in (body.get("status") or {}).items() if k != FROZEN_SPEC}
    frozen = (body.get("status") or {}).get(FROZEN_SPEC)
    if isinstance(frozen, Mapping):
        status[SEEN_DIGEST] = digest(plain(frozen))
    return {**_kind(body), "metadata": _meta(body), "spec": plain(body.get("spec") or {}), "status": status}


def trim_run_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    """The run as its Pipeline's pass and other runs read it: phase, interval, activities' states."""
    status = body.get("status") or {}
    kept = {k: plain(status[k]) for k in ("phase", "handledRerun", "external", "completionTime", "startTime")
            if status.get(k) is not None}
    kept["activities"] = {str(n): {"status": (a or {}).get("status")} for n, a in
                          (status.get("activities") or {}).items()}
    return {**_kind(body), "metadata": _meta(body),
            "spec": {k: plain(v) for k, v in (body.get("spec") or {}).items() if k != "values"}, "status": kept}


# ---------------------------------------------------------------------------- the indexes
# Coroutines, though they wait on nothing: kopf runs a plain function in a thread of the executor, and that hand-off
# (one per index per watch event) was 14 % of the operator's GIL-holding samples under a burst of runs (py-spy).
def _owner_run(body: Mapping[str, Any]) -> str | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "PipelineRun":
            return str(ref.get("name"))
    return None


@kopf.index("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT})
async def run_jobs(namespace: str | None, body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    run = _owner_run(body) or str(labels.get(LABEL_RUN))
    return {(namespace or "default", run): trim_job(body)}


def trim_attempt(body: Mapping[str, Any]) -> dict[str, Any]:
    """A TaskAttempt without its task (the run has it): what facts, leases and deletes need."""
    spec = body.get("spec") or {}
    return {**_kind(body), "metadata": _meta(body, "ownerReferences"),
            "spec": {k: spec[k] for k in ("workerGroup", "leaseSeconds", "deadlineSeconds") if k in spec},
            "status": {k: plain(v) for k, v in (body.get("status") or {}).items() if k != "logTail"}}


@kopf.index(GROUP, VERSION, "taskattempts")
async def run_attempts(namespace: str | None, body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    run = _owner_run(body) or str(labels.get(LABEL_RUN))
    return {(namespace or "default", run): trim_attempt(body)}


@kopf.index("", "v1", "pods", labels={LABEL_RUN: kopf.PRESENT})
async def run_pods(namespace: str | None, body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    return {(namespace or "default", str(labels.get(LABEL_RUN))): trim_pod(body)}


@kopf.index(GROUP, VERSION, "pipelineruns")
async def runs_by_name(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace or "default", name): trim_run(body)}


@kopf.index(GROUP, VERSION, "pipelineruns")
async def pipeline_runs(namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    pipeline = str((spec.get("pipelineRef") or {}).get("name") or "")
    return {(namespace or "default", pipeline): trim_run_summary(body)}


@kopf.index(GROUP, VERSION, "pipelines")
async def pipelines_by_name(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace or "default", name): plain(dict(body))}


# What maxActiveInstances counts, by (namespace, pipeline label): a pass copies one short list, not every Job of
# every run of its pipeline. An object that stops counting (finished) leaves the index ({} drops its entry).
@kopf.index("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT})
async def pipeline_job_instances(namespace: str | None, body: kopf.Body, labels: kopf.Labels,
                                 **_: Any) -> dict[Any, Any]:
    instance = job_instance(body)
    return {} if instance is None else {(namespace or "default", str(labels.get(LABEL_PIPELINE) or "")): instance}


@kopf.index(GROUP, VERSION, "taskattempts")
async def pipeline_attempt_instances(namespace: str | None, body: kopf.Body, labels: kopf.Labels,
                                     **_: Any) -> dict[Any, Any]:
    instance = attempt_instance(body)
    return {} if instance is None else {(namespace or "default", str(labels.get(LABEL_PIPELINE) or "")): instance}


def _values(index: str, key: tuple[str, str]) -> list[Any]:
    found = HANDLES.get(index)
    if found is None or key not in found:
        return []
    return list(found[key])


# ---------------------------------------------------------------------------- snapshots
@dataclass
class Snapshot:
    """What one pass reads, copied on the event loop."""

    run: dict[str, Any] | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)  # TaskAttempts (poll worker groups)
    pipeline: dict[str, Any] | None = None
    pipeline_runs: list[dict[str, Any]] = field(default_factory=list)
    pipeline_instances: list[Instance] = field(default_factory=list)  # what maxActiveInstances counts


def run_snapshot(namespace: str, name: str, cache: Mapping[str, Any]) -> Snapshot | None:
    """For a run's pass: the run, its Jobs and pods, its Pipeline and the Pipeline's runs."""
    if not ready():
        return None
    found = _values("runs_by_name", (namespace, name))
    run = found[0] if found else None
    pipeline = str(((run or {}).get("spec") or {}).get("pipelineRef", {}).get("name") or "")
    snap = Snapshot(run=run, jobs=_values("run_jobs", (namespace, name)), pods=_values("run_pods", (namespace, name)),
                    attempts=_values("run_attempts", (namespace, name)))
    if pipeline:
        pipelines = _values("pipelines_by_name", (namespace, pipeline))
        snap.pipeline = pipelines[0] if pipelines else None
        snap.pipeline_runs = _values("pipeline_runs", (namespace, pipeline))
        key = (namespace, label_value(pipeline))
        snap.pipeline_instances = [*_values("pipeline_job_instances", key),
                                   *_values("pipeline_attempt_instances", key)]
    return snap


def pipeline_snapshot(namespace: str, name: str, cache: Mapping[str, Any]) -> Snapshot | None:
    """For a Pipeline's pass: the Pipeline and its runs."""
    if not ready():
        return None
    pipelines = _values("pipelines_by_name", (namespace, name))
    return Snapshot(pipeline=pipelines[0] if pipelines else None,
                    pipeline_runs=_values("pipeline_runs", (namespace, name)))


# ---------------------------------------------------------------------------- read your writes
def freshest(cached: dict[str, Any] | None, cache: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cached object, or the one this worker wrote last if the cache still shows the version before it."""
    written = cache.get("written")
    if cached is None or written is None:
        return cached
    version = (cached.get("metadata") or {}).get("resourceVersion")
    return dict(written) if version == cache.get("written_over") else cached


def remember_write(cache: dict[str, Any], before: Mapping[str, Any], after: Mapping[str, Any] | None,
                   trim: Any) -> None:
    """After a status patch: ``after`` (the API's answer) stands until the cache moves past ``before``."""
    if after is None:
        return
    cache["written"] = trim(after)
    cache["written_over"] = (before.get("metadata") or {}).get("resourceVersion")


async def save_status(plural: str, namespace: str, obj: Mapping[str, Any], status: Mapping[str, Any],
                      cache: dict[str, Any], trim: Any) -> None:
    """A status patch, only if the object is unchanged since it was read; its answer then stands for the object
    until the cache moves past it. Changed meanwhile (409): the pass decides again on what it is now; gone
    (404): nothing to save."""
    meta = obj["metadata"]
    try:
        answer = await writes.patch_status(namespace, plural, str(meta["name"]), status,
                                           resource_version=str(meta.get("resourceVersion") or "") or None)
        remember_write(cache, obj, answer, trim)
    except writes.ApiException as error:
        if error.status == 409:
            raise kopf.TemporaryError(f"{meta['name']} changed while a pass decided on it; looking again",
                                      delay=0.2) from error
        if error.status != 404:
            raise


def with_created(observed: Iterable[dict[str, Any]], created: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects this worker created that the cache does not show yet count as they were created."""
    seen = [dict(o) for o in observed]
    names = {str(o["metadata"]["name"]) for o in seen}
    for name in [n for n in created if n in names]:
        del created[name]  # the watch has it now
    return seen + [dict(o) for n, o in created.items()]
