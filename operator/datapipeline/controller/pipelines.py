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
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from datapipeline.controller import caches, errors, metrics
from datapipeline.controller.lifecycle import VIEWS, needs_wake, view_of
from datapipeline.controller.pipeline_plan import (
    TRIGGER_ON_DEMAND,
    PipelinePlan,
    PlanSettings,
    plan_pipeline,
)
from datapipeline.controller.settings import SETTINGS
from datapipeline.controller.workers import Outcome, Then, Workers, spread
from datapipeline.core.definition import API_VERSION, GROUP, VERSION, parse_pipeline
from datapipeline.core.model import DEFAULT_SCHEDULE, PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.schedule import (
    format_time,
    parse_time,
    run_name,
)
from datapipeline.core.values import run_values
from datapipeline.k8s import api as kube
from datapipeline.k8s import async_api as writes
from datapipeline.k8s.jobs import LABEL_PIPELINE, Owner, label_value

PLURAL = "pipelines"
LABEL_TRIGGER = f"{GROUP}/trigger"
LABEL_SCHEDULE = f"{GROUP}/schedule"
LAST_TICK: dict[str, float] = {"scheduler": time.time()}


def run_manifest(pipeline: str, namespace: str, start: datetime, end: datetime | None, trigger: str,
                 name: str | None = None, values: Mapping[str, Any] | None = None,
                 owner: Mapping[str, Any] | None = None, schedule: str = DEFAULT_SCHEDULE) -> dict[str, Any]:
    """A PipelineRun for one interval of one schedule (also used by the CLI), owned by its Pipeline: deleting
    it deletes its runs. Runs of the default schedule are <pipeline>-<stamp>, others <pipeline>-<schedule>-<stamp>."""
    spec: dict[str, Any] = {"pipelineRef": {"name": pipeline}, "scheduledStartTime": format_time(start),
                            "trigger": trigger}
    if end is not None:
        spec["scheduledEndTime"] = format_time(end)
    if values:
        spec["values"] = dict(values)
    labels = {LABEL_PIPELINE: label_value(pipeline), LABEL_TRIGGER: trigger}
    if schedule != DEFAULT_SCHEDULE:
        spec["schedule"] = schedule
        labels[LABEL_SCHEDULE] = schedule
    default_name = run_name(pipeline, start, "" if schedule == DEFAULT_SCHEDULE else schedule)
    metadata: dict[str, Any] = {"name": name or default_name, "namespace": namespace, "labels": labels}
    if owner is not None:
        metadata["ownerReferences"] = [Owner(name=str(owner["metadata"]["name"]), uid=str(owner["metadata"]["uid"]),
                                             kind="Pipeline").reference()]
    return {"apiVersion": API_VERSION, "kind": "PipelineRun", "metadata": metadata, "spec": spec}


def schedule_pipeline(namespace: str, name: str, cache: dict[str, Any],
                      logger: logging.Logger | logging.LoggerAdapter[Any]) -> Outcome | Then:
    """One pass of a Pipeline's worker: validate and decide here (a thread); create the runs that are due and
    save the status on the event loop."""
    snap: caches.Snapshot | None = cache.pop("snapshot", None)
    body = caches.freshest(snap.pipeline, cache) if snap is not None else kube.get_object(namespace, PLURAL, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return False, None
    runs = caches.with_created(snap.pipeline_runs, cache.setdefault("created_runs", {})) if snap else None
    decision = schedule(name, namespace, body, cache, runs)

    async def act() -> Outcome:
        await _act(name, namespace, body, decision, logger, cache.setdefault("created_runs", {}))
        if decision.status:
            await caches.save_status(PLURAL, namespace, body, decision.status, cache, caches.plain)
        return True, decision.wake_at

    return Then(act)


def _report(namespace: str, name: str, error: BaseException, cache: dict[str, Any], logger: logging.Logger) -> None:
    errors.report(PLURAL, namespace, name, error, cache, logger)


PIPELINES = Workers("pipeline", schedule_pipeline, lambda: SETTINGS.scheduler_interval, report=_report,
                    snapshot=caches.pipeline_snapshot)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pipeline_event(type: str | None, name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status,
                         meta: kopf.Meta, **kwargs: Any) -> None:
    """Every Pipeline gets a worker (no finalizer, nothing written but status); a spec change wakes it."""
    caches.capture(kwargs)
    namespace = namespace or "default"
    if type == "DELETED":
        VIEWS.pop((namespace, name), None)
        PIPELINES.wake(namespace, name)  # it finds the Pipeline gone and exits
        return
    VIEWS[(namespace, name)] = view_of(spec, status)  # what its runs see: paused, deactivated, on-demand limit
    changed = meta.get("generation") != status.get("observedGeneration")
    PIPELINES.ensure(namespace, name, wake=changed, first_delay=0.0 if changed else _startup_delay(status))


STARTUP_SPREAD = 30.0  # seconds: a restart looks at Pipelines whose status is current within this, in random order


def _startup_delay(status: Mapping[str, Any]) -> float:
    """A Pipeline whose status is current is next due at nextRunTime: its first pass may wait a little (never
    past that), so that a restart with thousands of Pipelines acts on what is due first."""
    next_run = status.get("nextRunTime")
    if not next_run:
        return 0.0
    due_in = (parse_time(str(next_run)) - datetime.now(UTC)).total_seconds()
    return spread(STARTUP_SPREAD, due_in)


def schedule(name: str, namespace: str, body: Mapping[str, Any], cache: dict[str, Any],
             runs: list[dict[str, Any]] | None = None) -> PipelinePlan:
    """Observe (the definition, the runs) and decide (:func:`plan_pipeline`); tell the runs the lifecycle."""
    LAST_TICK["scheduler"] = time.time()
    spec, status, meta = body.get("spec") or {}, body.get("status") or {}, body["metadata"]
    now = datetime.now(UTC).replace(microsecond=0)  # run times and names in whole seconds
    generation = meta.get("generation")
    definition, problem = parsed(spec, generation, cache)
    if definition is None:
        runs = []
    elif runs is None:
        runs = kube.list_runs(namespace, name)
    decision = plan_pipeline(definition, problem, status, runs, now, generation,
                             PlanSettings(SETTINGS.limits.max_intervals_per_pass, SETTINGS.missed_grace))
    if definition is not None:
        metrics.ACTIVE_RUNS.labels(namespace, name).set(decision.active)
        metrics.QUEUE_DEPTH.labels(namespace, name).set(decision.queued)
        publish_view(namespace, name, spec, {**status, **decision.status}, decision.kept_runs)
    return decision


async def _act(name: str, namespace: str, body: Mapping[str, Any], decision: PipelinePlan,
               logger: logging.Logger | logging.LoggerAdapter[Any], created: dict[str, dict[str, Any]]) -> None:
    """Delete the runs past the history limits, create the due ones, post the Events."""
    for run in decision.delete:
        logger.info("history limit: deleting run %s", run)
        await writes.delete_object(namespace, "pipelineruns", run)
        created.pop(run, None)
    for new in decision.create:
        manifest = run_manifest(name, namespace, new.start, new.end, new.trigger, owner=body, schedule=new.schedule)
        created[manifest["metadata"]["name"]] = manifest  # counted as it is until the watch shows it
        if not await writes.create_object(namespace, "pipelineruns", manifest):
            continue  # an earlier pass (or another replica) made it: names are deterministic
        metrics.RUNS_CREATED.labels(namespace, name).inc()
        run = manifest["metadata"]["name"]
        if new.trigger == TRIGGER_ON_DEMAND:
            kopf.info(cast(Any, body), reason="RunCreated", message=f"on-demand run {run}")
        else:
            metrics.SCHEDULE_LAG.labels(namespace, name).observe(new.lag)
            kopf.info(cast(Any, body), reason="RunCreated", message=f"run {run} for {format_time(new.start)}"
                      + ("" if new.schedule == DEFAULT_SCHEDULE else f" (schedule {new.schedule})"))
    for notice in decision.notices:
        kopf.event(cast(Any, body), type=notice.type, reason=notice.reason, message=notice.message)


# ---------------------------------------------------------------------------- lifecycle
def publish_view(namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any],
                 runs: Iterable[Mapping[str, Any]]) -> None:
    """Tell the runs what the lifecycle asks of them: store the view, wake those not showing it yet."""
    view = view_of(spec, status)
    VIEWS[(namespace, name)] = view
    from datapipeline.controller.runs import RUNS

    for run in runs:
        if needs_wake(view, run):
            RUNS.wake(namespace, str(run["metadata"]["name"]))


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
