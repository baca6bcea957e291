"""Pipeline → PipelineRuns: a worker task per Pipeline creates the runs that are due.

Run names are deterministic (``<pipeline>-<UTC stamp>``), so a restart or a second replica can only
hit ``AlreadyExists``. The scheduling cursor (``status.lastScheduledTime``) is saved after the runs
exist; a lost cursor is rebuilt from the newest existing scheduled run. The operator never writes a
Pipeline's spec.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException

from datapipeline.controller import errors, metrics
from datapipeline.controller.lifecycle import VIEWS, is_rerun, needs_wake, view_of
from datapipeline.controller.settings import SETTINGS
from datapipeline.controller.workers import Workers
from datapipeline.core.definition import API_VERSION, GROUP, VERSION, parse_pipeline
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.runstate import FINAL_PHASES, PHASE_FAILED, SUCCEEDED
from datapipeline.core.schedule import (
    describe as describe_schedule,
)
from datapipeline.core.schedule import (
    effective_start,
    format_time,
    parse_time,
    plan,
    run_name,
)
from datapipeline.core.values import run_values
from datapipeline.k8s import api as kube
from datapipeline.k8s.jobs import LABEL_PIPELINE, Owner, label_value

PLURAL = "pipelines"
LABEL_TRIGGER = f"{GROUP}/trigger"
LAST_TICK: dict[str, float] = {"scheduler": time.time()}


def run_manifest(pipeline: str, namespace: str, start: datetime, end: datetime | None, trigger: str,
                 name: str | None = None, values: Mapping[str, Any] | None = None,
                 owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A PipelineRun for one interval (also used by the CLI), owned by its Pipeline: deleting it deletes its runs."""
    spec: dict[str, Any] = {"pipelineRef": {"name": pipeline}, "scheduledStartTime": format_time(start),
                            "trigger": trigger}
    if end is not None:
        spec["scheduledEndTime"] = format_time(end)
    if values:
        spec["values"] = dict(values)
    metadata: dict[str, Any] = {"name": name or run_name(pipeline, start), "namespace": namespace,
                                "labels": {LABEL_PIPELINE: label_value(pipeline), LABEL_TRIGGER: trigger}}
    if owner is not None:
        metadata["ownerReferences"] = [Owner(name=str(owner["metadata"]["name"]), uid=str(owner["metadata"]["uid"]),
                                             kind="Pipeline").reference()]
    return {"apiVersion": API_VERSION, "kind": "PipelineRun", "metadata": metadata, "spec": spec}


def _valid_conditions(old: Mapping[str, Any], ok: bool, message: str, generation: Any,
                      now: datetime) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in old.get("conditions") or ()}
    out = []
    for kind, value, reason in (("Valid", "True" if ok else "False", "Valid" if ok else "InvalidDefinition"),
                                ("Ready", "True" if ok else "False", "Ready" if ok else "InvalidDefinition")):
        before = previous.get(kind) or {}
        out.append({"type": kind, "status": value, "reason": reason, "message": message[:2000],
                    "observedGeneration": generation,
                    "lastTransitionTime": before.get("lastTransitionTime") if before.get("status") == value
                    and before.get("lastTransitionTime") else format_time(now)})
    return out


def _set(patch: StatusPatch, status: Mapping[str, Any], key: str, value: Any) -> None:
    if status.get(key) != value:
        patch.status[key] = value


def _when(run: Mapping[str, Any]) -> datetime:
    spec = run.get("spec") or {}
    text = spec.get("scheduledStartTime") or run["metadata"].get("creationTimestamp")
    return parse_time(str(text))


class StatusPatch:
    """What a scheduling pass changes in the Pipeline's status (a JSON merge patch: None removes)."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}


def schedule_pipeline(namespace: str, name: str, cache: dict[str, Any],
                      logger: logging.Logger | logging.LoggerAdapter[Any]) -> tuple[bool, datetime | None]:
    """One pass of a Pipeline's worker: validate, create the runs that are due, save the status."""
    body = kube.get_object(namespace, PLURAL, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return False, None
    patch = StatusPatch()
    wake_at = schedule(name=name, namespace=namespace, spec=body.get("spec") or {}, status=body.get("status") or {},
                       meta=body["metadata"], body=body, patch=patch, logger=logger, cache=cache)
    if patch.status:
        try:
            kube.patch_status(namespace, PLURAL, name, patch.status,
                              resource_version=str(body["metadata"].get("resourceVersion") or "") or None)
        except ApiException as error:
            if error.status == 409:  # changed meanwhile (a spec edit): decide again on what it is now
                raise kopf.TemporaryError("the pipeline changed while it was scheduled", delay=0.2) from error
            if error.status != 404:
                raise
    return True, wake_at


def _report(namespace: str, name: str, error: BaseException, cache: dict[str, Any], logger: logging.Logger) -> None:
    errors.report(PLURAL, namespace, name, error, cache, logger)


PIPELINES = Workers("pipeline", schedule_pipeline, lambda: SETTINGS.scheduler_interval, report=_report)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pipeline_event(type: str | None, name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status,
                         meta: kopf.Meta, **_: Any) -> None:
    """Every Pipeline gets a worker (no finalizer, nothing written but status); a spec change wakes it."""
    namespace = namespace or "default"
    if type == "DELETED":
        VIEWS.pop((namespace, name), None)
        PIPELINES.wake(namespace, name)  # it finds the Pipeline gone and exits
        return
    VIEWS[(namespace, name)] = view_of(spec, status)  # what its runs see: paused, deactivated, on-demand limit
    PIPELINES.ensure(namespace, name, wake=meta.get("generation") != status.get("observedGeneration"))


@kopf.on.cleanup()
async def stop_pipeline_workers(**_: Any) -> None:
    await PIPELINES.stop_all()


def schedule(name: str, namespace: str | None, spec: Mapping[str, Any], status: Mapping[str, Any],
             meta: Mapping[str, Any], body: Mapping[str, Any], patch: StatusPatch,
             logger: logging.Logger | logging.LoggerAdapter[Any], cache: dict[str, Any] | None = None,
             **_: Any) -> datetime | None:
    """Decide the Pipeline's status and create the runs that are due; returns when to look again."""
    LAST_TICK["scheduler"] = time.time()
    namespace = namespace or "default"
    now = datetime.now(UTC).replace(microsecond=0)  # run times and names in whole seconds
    generation = meta.get("generation")
    definition, message = parsed(spec, generation, {} if cache is None else cache)
    if definition is None:
        _set(patch, status, "conditions", _valid_conditions(status, False, message, generation, now))
        _set(patch, status, "observedGeneration", generation)
        _set(patch, status, "health", "ERROR")
        _set(patch, status, "nextRunTime", None)
        _set(patch, status, "state", pipeline_state(False, False, False, False, False))
        return None
    _set(patch, status, "conditions", _valid_conditions(status, True, "the definition is valid", generation, now))
    _set(patch, status, "observedGeneration", generation)
    _set(patch, status, "schedule", describe_schedule(definition.schedule, definition.schedule_type))
    runs = kube.list_runs(namespace, name)
    active = [r for r in runs if (r.get("status") or {}).get("phase") not in FINAL_PHASES]
    _set(patch, status, "activeRuns", len(active))
    metrics.ACTIVE_RUNS.labels(namespace, name).set(len(active))
    _history(namespace, definition, runs, logger)
    _last_run(patch, status, runs)
    deactivated = deactivation_time(definition.activated, status, now)
    _set(patch, status, "lastDeactivatedTime", deactivated)
    publish_view(namespace, name, spec, {**status, "lastDeactivatedTime": deactivated}, runs)
    if not definition.activated:
        _set(patch, status, "nextRunTime", None)
        _set(patch, status, "activationTime", None)
        _set(patch, status, "state", pipeline_state(True, False, bool(status.get("activatedAt")), False, False))
        metrics.QUEUE_DEPTH.labels(namespace, name).set(0)
        return None
    if not status.get("activatedAt") or not status.get("activationTime"):
        # Persist the activation first: run names derive from it, so they must survive a restart.
        _set(patch, status, "activatedAt", status.get("activatedAt") or format_time(now))
        _set(patch, status, "activationTime", status.get("activationTime") or format_time(now))
        return now  # schedule right after the activation is saved
    activated_at = parse_time(str(status["activatedAt"]))
    if definition.lifecycle.paused:  # nothing new until resumed; missed intervals follow missedRunPolicy then
        _set(patch, status, "state", pipeline_state(True, True, True, True, False))
        return None
    if definition.schedule_type == "ondemand" or definition.schedule is None:
        activation = parse_time(str(status["activationTime"]))
        if status.get("lastScheduledTime") != format_time(activation):
            body_run = run_manifest(name, namespace, activation, None, "OnDemand", owner=body)
            if kube.create_object(namespace, "pipelineruns", body_run):
                metrics.RUNS_CREATED.labels(namespace, name).inc()
                kopf.info(cast(Any, body), reason="RunCreated", message=f"on-demand run {body_run['metadata']['name']}")
            _set(patch, status, "lastScheduledTime", format_time(activation))
        _set(patch, status, "nextRunTime", None)
        _set(patch, status, "state", pipeline_state(True, True, True, False, False))
        return None
    start = effective_start(definition.schedule, activated_at)
    assert start is not None
    cursor = skip_cursor(_cursor(status, runs), definition.lifecycle.activate_from)
    _skipped(body, patch, status, definition.lifecycle.activate_from, cursor, _cursor(status, runs))
    decision = plan(definition.schedule, definition.schedule_type, start=start, cursor=cursor, now=now,
                    max_intervals=SETTINGS.limits.max_intervals_per_pass,
                    missed_run_policy=definition.missed_run_policy, active_runs=len(counted_active(runs)),
                    max_active_runs=definition.max_active_runs, grace=SETTINGS.missed_grace)
    for interval in decision.create:
        body_run = run_manifest(name, namespace, interval.start, interval.end, "Scheduled", owner=body)
        if kube.create_object(namespace, "pipelineruns", body_run):
            metrics.RUNS_CREATED.labels(namespace, name).inc()
            due = interval.run_time(definition.schedule_type)
            metrics.SCHEDULE_LAG.labels(namespace, name).observe(max(0.0, (now - due).total_seconds()))
            kopf.info(cast(Any, body), reason="RunCreated", message=f"run {body_run['metadata']['name']} for "
                      f"{format_time(interval.start)}")
    if decision.skipped:
        kopf.warn(cast(Any, body), reason="RunsSkipped", message=f"{len(decision.skipped)} missed interval(s) "
                  f"skipped by missedRunPolicy {definition.missed_run_policy}, from "
                  f"{format_time(decision.skipped[0].start)} to {format_time(decision.skipped[-1].start)}")
    if decision.cursor is not None and decision.cursor != cursor:
        _set(patch, status, "lastScheduledTime", format_time(decision.cursor))
    _set(patch, status, "state", pipeline_state(True, True, True, False, decision.finished and not active))
    _set(patch, status, "nextRunTime", format_time(decision.next_run_time) if decision.next_run_time else None)
    _set(patch, status, "queueDepth", decision.waiting)
    metrics.QUEUE_DEPTH.labels(namespace, name).set(decision.waiting)
    # The next interval's due time; held-back runs wait for a run to finish, which wakes this worker.
    return decision.next_run_time if decision.next_run_time and not decision.waiting else None


# ---------------------------------------------------------------------------- lifecycle (pure, but publish_view)
def pipeline_state(valid: bool, activated: bool, was_activated: bool, paused: bool, finished: bool) -> str:
    """The pipeline's status in AWS terms ("Interpreting Pipeline Status Codes"), plus PAUSED."""
    if not valid:
        return "PENDING"
    if not activated:
        return "INACTIVE" if was_activated else "PENDING"
    if paused:
        return "PAUSED"
    return "FINISHED" if finished else "SCHEDULED"


def deactivation_time(activated: bool, status: Mapping[str, Any], now: datetime) -> str | None:
    """status.lastDeactivatedTime after this pass: now when an active pipeline was just deactivated."""
    if not activated and status.get("activationTime"):
        return format_time(now)
    value = status.get("lastDeactivatedTime")
    return str(value) if value else None


def skip_cursor(cursor: datetime | None, activate_from: datetime | None) -> datetime | None:
    """The cursor planning starts from: intervals starting before activateFrom count as done (SKIPPED)."""
    if activate_from is None:
        return cursor
    floor = activate_from - timedelta(microseconds=1)
    return floor if cursor is None or cursor < floor else cursor


def counted_active(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Runs that count against maxActiveRuns: not finished, and not a rerun."""
    return [r for r in runs if (r.get("status") or {}).get("phase") not in FINAL_PHASES and not is_rerun(r)]


def publish_view(namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any],
                 runs: Iterable[Mapping[str, Any]]) -> None:
    """Tell the runs what the lifecycle asks of them: store the view, wake those not showing it yet."""
    view = view_of(spec, status)
    VIEWS[(namespace, name)] = view
    from datapipeline.controller.runs import RUNS

    for run in runs:
        if needs_wake(view, run):
            RUNS.wake(namespace, str(run["metadata"]["name"]))


def _skipped(body: Mapping[str, Any], patch: StatusPatch, status: Mapping[str, Any], activate_from: datetime | None,
             floor: datetime | None, cursor: datetime | None) -> None:
    """Record (once) that activateFrom skipped the intervals before it."""
    if activate_from is None or floor == cursor:
        return
    until = format_time(activate_from)
    if status.get("skippedUntil") != until:
        kopf.info(cast(Any, body), reason="IntervalsSkipped", message=f"intervals starting before {until} are "
                  "SKIPPED: the pipeline is activated from then (activateFrom)")
    _set(patch, status, "skippedUntil", until)


def parsed(spec: Mapping[str, Any], generation: Any, cache: dict[str, Any]) -> tuple[PipelineDefinition | None, str]:
    """The Pipeline's definition, or why it is invalid: parsed once per generation, not once per pass."""
    if cache.get("generation") != generation or "parsed" not in cache:
        try:
            cache["parsed"] = (parse_pipeline(dict(spec), limits=SETTINGS.limits), "")
        except DefinitionError as error:
            cache["parsed"] = (None, "; ".join(str(p) for p in error.problems))
        cache["generation"] = generation
    result: tuple[PipelineDefinition | None, str] = cache["parsed"]
    return result


def _cursor(status: Mapping[str, Any], runs: list[dict[str, Any]]) -> datetime | None:
    cursor = parse_time(str(status["lastScheduledTime"])) if status.get("lastScheduledTime") else None
    for run in runs:
        if (run.get("spec") or {}).get("trigger") == "Scheduled":
            when = _when(run)
            if cursor is None or when > cursor:
                cursor = when
    return cursor


def _last_run(patch: StatusPatch, status: Mapping[str, Any], runs: list[dict[str, Any]]) -> None:
    if not runs:
        return
    newest = max(runs, key=lambda r: (_when(r), r["metadata"].get("creationTimestamp") or ""))
    phase = (newest.get("status") or {}).get("phase") or "Pending"
    _set(patch, status, "lastRun", {"name": newest["metadata"]["name"], "status": phase})
    finished = [r for r in runs if (r.get("status") or {}).get("phase") in FINAL_PHASES]
    if finished:
        latest = max(finished, key=_when)
        health = "ERROR" if (latest.get("status") or {}).get("phase") == PHASE_FAILED else "HEALTHY"
        _set(patch, status, "health", health)
    elif not status.get("health"):
        _set(patch, status, "health", "HEALTHY")


def _history(namespace: str, definition: PipelineDefinition, runs: list[dict[str, Any]],
             logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Keep the newest N succeeded and N failed/cancelled runs; delete older finished ones."""
    succeeded = sorted((r for r in runs if (r.get("status") or {}).get("phase") == SUCCEEDED), key=_when)
    failed = sorted((r for r in runs if (r.get("status") or {}).get("phase") in ("Failed", "Cancelled")), key=_when)
    doomed = succeeded[: max(0, len(succeeded) - definition.successful_runs_history_limit)]
    doomed += failed[: max(0, len(failed) - definition.failed_runs_history_limit)]
    for run in doomed:
        logger.info("history limit: deleting run %s", run["metadata"]["name"])
        kube.delete_object(namespace, "pipelineruns", run["metadata"]["name"])
        runs.remove(run)


@kopf.on.probe(id="scheduler")
def scheduler_probe(**_: Any) -> float:
    """Seconds since the last scheduling pass (reported by the liveness endpoint)."""
    return round(time.time() - LAST_TICK["scheduler"], 1)


def validate_pipeline(spec: kopf.Spec, **_: Any) -> None:
    try:
        parse_pipeline(dict(spec), limits=SETTINGS.limits)
    except DefinitionError as error:
        raise kopf.AdmissionError("; ".join(str(p) for p in error.problems)[:4000], code=422) from error


def validate_run(spec: kopf.Spec, namespace: str | None, old: Any = None, **_: Any) -> None:
    """A run's values pass the same check as in the operator, before the run exists.

    An update that leaves the values as they were (cancel, rerun, a label) is never refused, even when
    the Pipeline has since tightened its parameters: those values were checked when the run was made.
    """
    if old is not None and ((old.get("spec") or {}).get("values") or {}) == (spec.get("values") or {}):
        return
    pipeline = str((spec.get("pipelineRef") or {}).get("name") or "")
    source = kube.get_object(namespace or "default", PLURAL, pipeline) if pipeline else None
    if source is None:
        raise kopf.AdmissionError(f'spec.pipelineRef.name: no Pipeline named "{pipeline}" in namespace {namespace}',
                                  code=422)
    try:
        definition = parse_pipeline(dict(source.get("spec") or {}), limits=SETTINGS.limits)
    except DefinitionError:
        return  # the Pipeline's own condition says why; the run will be refused with it
    _, problems = run_values(definition, spec.get("values"))
    if problems:
        raise kopf.AdmissionError("; ".join(str(p) for p in problems)[:4000], code=422)


if SETTINGS.webhook:
    kopf.on.validate(GROUP, VERSION, PLURAL, id="validate-pipeline", operations=["CREATE", "UPDATE"])(
        validate_pipeline)
    kopf.on.validate(GROUP, VERSION, "pipelineruns", id="validate-run", operations=["CREATE", "UPDATE"])(
        validate_run)
