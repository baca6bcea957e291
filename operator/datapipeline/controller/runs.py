"""PipelineRun → Jobs: one worker task per live run, woken by the run's and its Jobs' watch events.

Each pass reads the run, its frozen definition, its Jobs and pods; asks the pure
:func:`~datapipeline.controller.step.step` what to do; creates/deletes Jobs (idempotently); and
only then saves the new status (only if the run did not change meanwhile). Killed anywhere in
between, the next pass converges: Job names are deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf

from datapipeline.controller import caches, errors, metrics, run_index
from datapipeline.controller.facts import (
    Instance,
    attempt_facts,
    attempt_instance,
    busy_instances,
    job_facts,
    job_instance,
    pod_job_name,
    running_since,
)
from datapipeline.controller.frozen import (
    FROZEN_GENERATION,
    FROZEN_HASH,
    FROZEN_SPEC,
    FROZEN_VALUES,
    freeze,
    frozen_problem,
    size_problem,
)
from datapipeline.controller.lifecycle import VIEWS, PipelineView, queue_reason, run_lifecycle, view_of
from datapipeline.controller.settings import SETTINGS
from datapipeline.controller.step import StepResult, merge_patch, step
from datapipeline.controller.workers import Outcome, Then, Workers, spread
from datapipeline.core import taskattempt
from datapipeline.core.crossrun import ExternalState, node_intervals
from datapipeline.core.definition import GROUP, VERSION, parse_pipeline
from datapipeline.core.model import DEFAULT_SCHEDULE, PipelineDefinition
from datapipeline.core.problems import DefinitionError
from datapipeline.core.resolve import RunContext
from datapipeline.core.runstate import (
    FINAL_PHASES,
    PHASE_FAILED,
    SUCCEEDED,
    Emit,
    JobFact,
    Rerun,
    RunSpec,
    RunState,
    attempt_job_name,
    only_awaits_job_ends,
    only_awaits_runners,
    only_first_attempts,
    only_started,
    worth_posting,
)
from datapipeline.core.schedule import Interval, effective_start, format_time, interval_at, parse_time
from datapipeline.core.task import KIND_ACTIVITY
from datapipeline.core.values import run_values
from datapipeline.k8s import api as kube
from datapipeline.k8s import async_api as writes
from datapipeline.k8s.jobs import (
    LABEL_KIND,
    LABEL_PIPELINE,
    LABEL_RUN,
    Owner,
    label_value,
)

PLURAL = "pipelineruns"
RUN_STARTUP_SPREAD = 10.0  # seconds
QUEUE_RECHECK = timedelta(seconds=10)  # a queued on-demand run looks again this often at the latest
UNSAVED = "unsaved"  # worker cache: (run uid, the stored status, the status a waiting save will write)
# Queued on-demand runs by (namespace, pipeline): a run of that pipeline ending wakes them at once.
QUEUED: dict[tuple[str, str], set[str]] = {}


# ---------------------------------------------------------------------------- filters
def run_is_live(spec: Mapping[str, Any], status: Mapping[str, Any], meta: Mapping[str, Any], **_: Any) -> bool:
    """The run needs a worker: not final, or a request not yet handled."""
    if meta.get("deletionTimestamp"):
        return False
    phase = status.get("phase")
    if phase not in FINAL_PHASES:
        return True
    rerun = spec.get("rerun") or {}
    if rerun.get("id") and str(rerun.get("id")) != str(status.get("handledRerun")):
        return True
    if spec.get("cancel") and phase != "Cancelled":
        return True
    handled = set(status.get("handledMarkFinished") or ())
    return any(name not in handled for name in spec.get("markFinished") or ())


# ---------------------------------------------------------------------------- handlers
def _pass(namespace: str, name: str, cache: dict[str, Any], logger: logging.Logger) -> Outcome | Then:
    return reconcile_run(namespace, name, cache, logger)


def _report(namespace: str, name: str, error: BaseException, cache: dict[str, Any], logger: logging.Logger) -> None:
    errors.report(PLURAL, namespace, name, error, cache, logger)


RUNS = Workers("run", _pass, lambda: SETTINGS.resync_interval, metrics.RECONCILE.observe, _report,
               caches.run_snapshot)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def run_event(type: str | None, name: str, namespace: str | None, spec: kopf.Spec, status: kopf.Status,
                    meta: kopf.Meta, **kwargs: Any) -> None:
    """A run that needs work gets a worker; a spec change (cancel, rerun, markFinished) wakes it."""
    caches.capture(kwargs)
    namespace = namespace or "default"
    pipeline = str((spec.get("pipelineRef") or {}).get("name") or "")
    if type == "DELETED" or status.get("phase") in FINAL_PHASES:
        for queued in list(QUEUED.get((namespace, pipeline), ())):
            RUNS.wake(namespace, queued)  # room for the next on-demand run (maxActiveInstances)
    key, changed = run_index.observe(namespace, spec, status, name, type == "DELETED")
    if changed:  # runs waiting for (or failed because of) other runs of this pipeline look again
        for watcher in run_index.watchers(key):
            if watcher != name:
                RUNS.ensure(namespace, watcher, wake=True)
    if type == "DELETED":
        RUNS.wake(namespace, name)  # it finds the run gone and exits
        return
    if run_is_live(spec, status, meta):
        changed = meta.get("generation") != status.get("observedGeneration")
        # A run whose status is current waits a little for its first pass after a restart (its Jobs' events
        # wake it at once): new runs and changed ones come first.
        RUNS.ensure(namespace, name, wake=changed, first_delay=0.0 if changed else spread(RUN_STARTUP_SPREAD))


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT})
async def job_event(meta: kopf.Meta, namespace: str | None, **kwargs: Any) -> None:
    """A Job of a run changed (started, became ready, finished, deleted): the run looks at once."""
    caches.capture(kwargs)
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "PipelineRun":
            RUNS.wake(namespace or "default", str(ref.get("name")))


@kopf.on.event(GROUP, VERSION, taskattempt.PLURAL)
async def attempt_event(meta: kopf.Meta, namespace: str | None, **kwargs: Any) -> None:
    """A TaskAttempt was claimed, renewed, finished or deleted: its run looks at once."""
    caches.capture(kwargs)
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "PipelineRun":
            RUNS.wake(namespace or "default", str(ref.get("name")))


# ---------------------------------------------------------------------------- one pass
@dataclass
class Observed:
    """What one pass of a run read (from the watch caches; from the API only without them)."""

    run: dict[str, Any]
    stored: dict[str, Any]  # the status as the API server holds it: the status patch is computed against it
    status: dict[str, Any]  # the same, with the frozen definition when this pass makes it
    now: datetime
    pipeline: str
    full: PipelineDefinition  # every schedule's activities
    definition: PipelineDefinition  # this run's schedule's
    generation: int
    values: dict[str, Any]
    run_spec: RunSpec
    state: RunState
    attempts: list[dict[str, Any]]  # TaskAttempts (poll worker groups)
    facts: dict[str, JobFact]  # every Job and TaskAttempt of the run


def reconcile_run(namespace: str, name: str, cache: dict[str, Any],
                  logger: logging.Logger | logging.LoggerAdapter[Any]) -> Outcome | Then:
    """One pass over a run: observe and decide (pure) here, in a thread; act on the event loop. Its outcome:
    whether the run still needs work and when to look again."""
    snap: caches.Snapshot | None = cache.pop("snapshot", None)
    observed = _observe(namespace, name, cache, snap)
    if not isinstance(observed, Observed):
        return observed  # gone, or refused
    result = _decide(namespace, name, observed, snap)

    async def act() -> Outcome:
        new_status, save_at = await _act(namespace, name, observed, result, cache)
        wake_at = _earliest(result.wake_at, attempt_wake_at(observed.attempts, observed.now), save_at)
        if observed.run_spec.queued:
            wake_at = min(wake_at or observed.now + QUEUE_RECHECK, observed.now + QUEUE_RECHECK)
        return run_is_live(observed.run.get("spec") or {}, new_status, observed.run["metadata"]), wake_at

    return Then(act)


def _observe(namespace: str, name: str, cache: dict[str, Any],
             snap: caches.Snapshot | None) -> Observed | Outcome | Then:
    run = caches.freshest(snap.run, cache) if snap is not None else kube.get_object(namespace, PLURAL, name)
    if run is None or run["metadata"].get("deletionTimestamp"):
        return False, None
    spec = run.get("spec") or {}
    now = datetime.now(UTC)
    pipeline = str((spec.get("pipelineRef") or {}).get("name") or "")
    seen = (run.get("status") or {}).get(caches.SEEN_DIGEST)
    stored = {k: v for k, v in (run.get("status") or {}).items() if k != caches.SEEN_DIGEST}  # not the cache's
    status = _unsaved(run, stored, cache) or stored
    if FROZEN_HASH not in status:
        frozen = _freeze(namespace, name, run, pipeline, now, snap, cache)
        if isinstance(frozen, Then):
            return frozen
        status = {**status, **frozen}  # saved with the pass's first decisions: one status write, not two
    full, generation, problem = _definition(namespace, name, status, seen, cache)
    if full is None:
        return _refuse(namespace, name, run, "InvalidDefinition", problem or "", now)
    schedule = str(spec.get("schedule") or DEFAULT_SCHEDULE)
    if schedule != DEFAULT_SCHEDULE and schedule not in full.schedules:
        return _refuse(namespace, name, run, "InvalidDefinition", f'spec.schedule: the Pipeline has no schedule '
                       f'named "{schedule}" (its schedules: {", ".join(full.schedules) or "none"})', now)
    definition = full.for_schedule(schedule)
    # Checked once and then fixed (editing spec.values later changes nothing); checked again on every pass.
    values, refused = run_values(definition, status[FROZEN_VALUES] if FROZEN_VALUES in status else spec.get("values"))
    if refused:
        return _refuse(namespace, name, run, "InvalidValues", "; ".join(str(p) for p in refused), now)
    run_spec = _with_lifecycle(namespace, pipeline, run, run_spec_of(run, definition), snap)
    if any(definition.external_dependencies(n) for n in definition.activities):
        run_spec = replace(run_spec, external=_external(namespace, pipeline, full, schedule, run_spec, cache))
    _note_queued(namespace, pipeline, name, bool(run_spec.queued))
    state = RunState.from_dict(status)
    pods = snap.pods if snap is not None else kube.list_pods(namespace, name)
    jobs = caches.with_created(snap.jobs, cache.setdefault("created_jobs", {})) if snap is not None \
        else kube.list_jobs(namespace, name)
    attempts = caches.with_created(snap.attempts, cache.setdefault("created_attempts", {})) if snap is not None \
        else kube.list_attempts(namespace, name)
    facts = {**job_facts(jobs, pods), **attempt_facts(attempts, now)}
    _read_progress(namespace, name, definition, state, facts, pods)
    return Observed(run=run, stored=stored, status=status, now=now, pipeline=pipeline, full=full,
                    definition=definition, generation=generation, values=dict(values), run_spec=run_spec,
                    state=state, attempts=attempts, facts=facts)


def _decide(namespace: str, name: str, obs: Observed, snap: caches.Snapshot | None) -> StepResult:
    """The state machine's step (pure) with what it needs around it."""
    capacity = _capacity(namespace, obs.pipeline, name, obs.definition, snap)
    schedule = obs.definition.run_schedule
    context = RunContext(pipeline=obs.pipeline, run=name, scheduled_start=obs.run_spec.scheduled_start,
                         scheduled_end=obs.run_spec.scheduled_end,
                         trigger_time=_time(obs.run["metadata"].get("creationTimestamp")), overrides=obs.values,
                         intervals=_node_intervals(namespace, obs.pipeline, obs.full, schedule, obs.run_spec))
    owner = Owner(name=name, uid=str(obs.run["metadata"]["uid"]))
    return step(obs.definition, obs.run_spec, obs.state, obs.facts, obs.now, context=context, namespace=namespace,
                owner=owner, pipeline=obs.pipeline, capacity=capacity)


async def _act(namespace: str, name: str, obs: Observed, result: StepResult,
               cache: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
    """Jobs and TaskAttempts first, then the status (conditional on what was read), then the Events; returns
    the new status and, when its write waits (an attempt's start only), when it is due."""
    created, created_attempts = cache.setdefault("created_jobs", {}), cache.setdefault("created_attempts", {})
    for command, manifest in result.create:
        polled = manifest.get("kind") == taskattempt.KIND
        made = await writes.create_object(namespace, taskattempt.PLURAL, manifest) if polled \
            else await writes.create_job(namespace, manifest)
        if made:
            metrics.JOBS_CREATED.labels(namespace, command.kind).inc()
        # Until the watch shows it (made now, or by an earlier pass).
        (created_attempts if polled else created)[command.name] = dict(manifest)
    polled_names = {str(a["metadata"]["name"]) for a in obs.attempts}
    for delete in result.delete:
        if delete.name in polled_names:
            await writes.delete_object(namespace, taskattempt.PLURAL, delete.name)  # the poller stops the task
        else:
            await writes.delete_job(namespace, delete.name)
        created.pop(delete.name, None)
        created_attempts.pop(delete.name, None)
    await _settle_lost_claims(namespace, obs.attempts, obs.facts, obs.now)
    new_status = {**build_status(obs.status, result.state, obs.run, obs.generation, obs.now),
                  FROZEN_VALUES: obs.values}
    patch = merge_patch(obs.stored, new_status)
    save_at = _save_waits(obs, result, cache) if patch else None
    if save_at is not None:
        cache[UNSAVED] = (obs.run["metadata"].get("uid"), obs.stored, new_status)
        return obs.stored, save_at
    cache.pop(UNSAVED, None)
    if patch:
        await caches.save_status(PLURAL, namespace, obs.run, patch, cache, caches.trim_run)
    for emit in [*result.events, *_no_worker_warnings(obs.attempts, obs.now, cache)]:
        if worth_posting(emit, SETTINGS.every_event):
            kopf.event(cast(Any, obs.run), type=emit.type, reason=emit.reason, message=emit.message[:1000])
        _count(namespace, obs.pipeline, emit.reason)
    if result.state.phase in FINAL_PHASES and new_status.get("phase") != obs.status.get("phase"):
        metrics.RUNS.labels(namespace, obs.pipeline, result.state.phase).inc()
        if obs.pipeline:
            from datapipeline.controller.pipelines import PIPELINES

            PIPELINES.wake_within(namespace, obs.pipeline, SETTINGS.status_delay)  # maxActiveRuns, health
    return new_status, None


def _save_waits(obs: Observed, result: StepResult, cache: dict[str, Any]) -> datetime | None:
    """When the pass's status may be saved later, the time it is due: ``status_delay`` after the first pass
    that waited; up to ``pending_status_limit`` after it while the status would only say what the pods already
    contradict or add nothing to: a new run whose first attempts all wait for their pods (it waits for a
    runner), or attempts shown running whose pods have all ended (their Jobs' ends come within seconds).
    Only what a later pass derives again from the Pipeline and the Jobs may wait (an attempt's start; a new
    run's first attempts, whose Jobs keep their names), so an operator stopping meanwhile loses nothing; the
    state waiting is the next pass's starting point (``_unsaved``)."""
    posts = any(worth_posting(e, SETTINGS.every_event) for e in result.events)
    new = FROZEN_HASH not in obs.stored
    if new:
        polled = any(manifest.get("kind") == taskattempt.KIND for _, manifest in result.create)
        derived = not polled and only_first_attempts(result.state)
    else:
        derived = not result.create and only_started(RunState.from_dict(obs.stored), result.state)
    if SETTINGS.status_delay <= 0 or posts or result.delete or not derived:
        _forget_wait(cache)
        return None
    since: datetime = cache.setdefault("save_since", obs.now)
    if (new and only_awaits_runners(result.state)) \
            or only_awaits_job_ends(result.state, obs.facts, str(obs.run["metadata"]["name"])):
        due = since + timedelta(seconds=max(SETTINGS.status_delay, SETTINGS.pending_status_limit))
    else:
        latest = obs.now + timedelta(seconds=SETTINGS.status_delay)
        due = min(cache.get("save_due", latest), latest)  # later passes never push a start's save back
    if obs.now >= due:
        _forget_wait(cache)
        return None
    cache["save_due"] = due
    return due


def _forget_wait(cache: dict[str, Any]) -> None:
    cache.pop("save_due", None)
    cache.pop("save_since", None)


def _unsaved(run: Mapping[str, Any], stored: Mapping[str, Any], cache: dict[str, Any]) -> dict[str, Any] | None:
    """The status an earlier pass decided and has not saved yet (its save waits), if the run's stored status
    is still the one it was decided from: after another operator wrote it (the lease moved and back), the
    stored one wins."""
    held = cache.get(UNSAVED)
    if held is None:
        return None
    uid, base, status = held
    if uid != run["metadata"].get("uid") or base != stored:
        cache.pop(UNSAVED, None)
        _forget_wait(cache)
        return None
    return dict(status)


async def _settle_lost_claims(namespace: str, attempts: list[dict[str, Any]], facts: Mapping[str, JobFact],
                              now: datetime) -> None:
    """A claim whose lease ran out is failed on the object too (terminal: the lost poller's late writes are
    refused), only if nobody wrote it since it was seen (a late heartbeat wins)."""
    for obj in attempts:
        name = str(obj["metadata"]["name"])
        fact = facts.get(name)
        lost = fact is not None and fact.reason == taskattempt.REASON_WORKER_LOST
        if not lost or (obj.get("status") or {}).get("phase") != taskattempt.CLAIMED:
            continue
        patch = taskattempt.lost_patch(obj, now)
        try:
            await writes.patch_status(namespace, taskattempt.PLURAL, name, patch["status"],
                                      resource_version=patch["metadata"]["resourceVersion"])
        except writes.ApiException as error:
            if error.status not in (404, 409, 422):
                raise


def _no_worker_warnings(attempts: list[dict[str, Any]], now: datetime, cache: dict[str, Any]) -> list[Emit]:
    """One Warning per attempt that no poller has claimed for a minute (its group may have no poller)."""
    warned: set[str] = cache.setdefault("no_worker_warned", set())
    found = []
    for obj in attempts:
        name = str(obj["metadata"]["name"])
        created = _time(obj["metadata"].get("creationTimestamp"))
        if name in warned or not taskattempt.is_unclaimed(obj) or created is None \
                or now < created + taskattempt.NO_WORKER_WARNING:
            continue
        warned.add(name)
        group = (obj.get("spec") or {}).get("workerGroup")
        found.append(Emit("NoWorker", f'attempt {name}: no poller of worker group "{group}" has claimed it for '
                          f"{int(taskattempt.NO_WORKER_WARNING.total_seconds())} s; start one with "
                          f"`datapipeline-runner poll --worker-group {group}` (docs/worker-groups.md)", "Warning"))
    return found


def attempt_wake_at(attempts: list[dict[str, Any]], now: datetime) -> datetime | None:
    """When a TaskAttempt needs a look without an event: a lease running out, an unclaimed one to warn about."""
    times = []
    for obj in attempts:
        expires = taskattempt.lease_expires(obj)
        if expires is not None:
            times.append(expires)
        created = _time(obj["metadata"].get("creationTimestamp"))
        if created is not None and taskattempt.is_unclaimed(obj):
            times.append(created + taskattempt.NO_WORKER_WARNING)
    return min((t for t in times if t > now), default=None)


def _earliest(*times: datetime | None) -> datetime | None:
    return min((t for t in times if t is not None), default=None)


def _external(namespace: str, pipeline: str, full: PipelineDefinition, schedule: str, run_spec: RunSpec,
              cache: dict[str, Any]) -> dict[str, ExternalState]:
    """The states of other schedules' activities this run depends on, from the watch-fed run index. An
    instance counted as done only because no run of it is known is confirmed with one LIST per worker (the
    watch may not have delivered every run yet after a restart)."""
    interval = Interval(run_spec.scheduled_start, run_spec.scheduled_end)
    key, view = (namespace, pipeline), _view(namespace, pipeline)
    limit = SETTINGS.limits.max_instances_per_wait
    found = run_index.external_states(full, schedule, interval, view, key, limit)
    if any(state.assumed for state in found.values()) and not cache.get("listed"):
        run_index.observe_listed(namespace, kube.list_runs(namespace, pipeline))
        cache["listed"] = True
        found = run_index.external_states(full, schedule, interval, view, key, limit)
    return found


def _node_intervals(namespace: str, pipeline: str, full: PipelineDefinition, schedule: str,
                    run_spec: RunSpec) -> dict[str, tuple[datetime, datetime]]:
    """Data nodes on another schedule are evaluated in that schedule's interval covering this run's start."""
    if len(full.schedules) < 2:
        return {}
    view = _view(namespace, pipeline)
    starts = {n: effective_start(s, view.activated_at) for n, s in full.schedules.items()}
    return node_intervals(full, schedule, run_spec.scheduled_start, starts)


def _note_queued(namespace: str, pipeline: str, name: str, queued: bool) -> None:
    names = QUEUED.setdefault((namespace, pipeline), set())
    if queued:
        names.add(name)
    else:
        names.discard(name)
        if not names:
            QUEUED.pop((namespace, pipeline), None)


def _view(namespace: str, pipeline: str, snap: caches.Snapshot | None = None) -> PipelineView:
    """The Pipeline as its runs see it: the newest view known, else from the cache, else read once."""
    known = VIEWS.get((namespace, pipeline))
    if known is not None:
        return known
    source = _pipeline_object(namespace, pipeline, snap)
    if source is None:
        return PipelineView(activated=True)  # gone: nothing to pause or cancel for it
    view = view_of(source.get("spec") or {}, source.get("status") or {})
    VIEWS[(namespace, pipeline)] = view
    return view


def _pipeline_object(namespace: str, pipeline: str, snap: caches.Snapshot | None) -> Mapping[str, Any] | None:
    if not pipeline:
        return None
    if snap is not None:
        return snap.pipeline
    return kube.get_object(namespace, "pipelines", pipeline)


def _with_lifecycle(namespace: str, pipeline: str, run: Mapping[str, Any], run_spec: RunSpec,
                    snap: caches.Snapshot | None = None) -> RunSpec:
    """Pause, deactivation and the on-demand queue, as the Pipeline asks them of this run."""
    view = _view(namespace, pipeline, snap)
    wanted = run_lifecycle(view, run)
    queued = None
    phase = (run.get("status") or {}).get("phase")
    if view.ondemand and phase in (None, "", "Pending"):  # only a run that has not started lists the others
        others = snap.pipeline_runs if snap is not None else kube.list_runs(namespace, pipeline)
        queued = queue_reason(view, run, others)
    if wanted.cancel_reason and not run_spec.cancel:
        run_spec = replace(run_spec, cancel=True, cancel_reason=wanted.cancel_reason)
    return replace(run_spec, paused=wanted.paused, queued=queued)


def _read_progress(namespace: str, run: str, definition: PipelineDefinition, state: RunState,
                   facts: dict[str, JobFact], pods: list[dict[str, Any]]) -> None:
    """For running attempts of activities with reportProgressTimeout only: the newest log line's time."""
    for activity_name, activity in definition.activities.items():
        st = state.activities.get(activity_name)
        if activity.report_progress_timeout is None or st is None or not st.job_expected:
            continue
        job = attempt_job_name(run, activity_name, st.attempt)
        fact = facts.get(job)
        if fact is None or fact.state != "active" or not fact.running:
            continue
        mine = [p for p in pods if pod_job_name(p) == job and running_since(p) is not None]
        if not mine:
            continue
        pod = max(mine, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))
        latest = kube.last_log_time(namespace, str(pod["metadata"]["name"]))
        if latest is not None and (fact.progress_at is None or latest > fact.progress_at):
            facts[job] = replace(fact, progress_at=latest)


def _count(namespace: str, pipeline: str, reason: str) -> None:
    outcome = {"ActivityFinished": "FINISHED", "AttemptFailed": "FAILED", "ActivityFailed": "FAILED"}.get(reason)
    if outcome:
        metrics.ATTEMPTS.labels(namespace, pipeline, outcome).inc()


def _freeze(namespace: str, name: str, run: Mapping[str, Any], pipeline: str, now: datetime,
            snap: caches.Snapshot | None = None,
            cache: dict[str, Any] | None = None) -> Then | dict[str, Any]:
    """The copy of the Pipeline's spec for the run's status, once: the run's one source of truth (a tuple: the
    run was refused). It is saved with the first pass's state, in one status write.

    Only the operator may write a run's status, so no other object (and no one who can merely create
    runs or ConfigMaps) can change what the run executes; its hash is checked on every read. Should that first
    write fail, the next pass copies the Pipeline again: the Jobs made meanwhile keep their deterministic names.
    """
    source = _pipeline_object(namespace, pipeline, snap)
    if source is None:
        return _refuse(namespace, name, run, "PipelineNotFound",
                       f'spec.pipelineRef.name: no Pipeline named "{pipeline}" in namespace {namespace}', now)
    spec = source.get("spec") or {}
    if problem := size_problem(spec):
        return _refuse(namespace, name, run, "InvalidDefinition", problem, now)
    frozen = freeze(spec, int(source["metadata"].get("generation") or 0))
    if cache is not None:
        cache.pop("definition", None)
        cache["frozen"] = frozen  # the copy about to be written: no read of it
    return dict(frozen)


def _definition(namespace: str, name: str, status: Mapping[str, Any], seen: Any,
                cache: dict[str, Any]) -> tuple[PipelineDefinition | None, int, str | None]:
    """The run's frozen definition, parsed once per worker (the frozen copy never changes).

    The cache keeps the copy's digest, not the copy: the copy is read (and checked against its hash) once per
    worker, and again only if the digest the watch saw no longer matches the definition parsed."""
    generation = int(status.get(FROZEN_GENERATION) or 0)
    expected = str(status.get(FROZEN_HASH) or "")
    if seen is not None and seen != expected:
        return None, generation, (f"status.{FROZEN_SPEC}: the run's frozen definition does not match its hash "
                                  f"{expected}; it was changed after the run started, so the run is refused")
    if cache.get("hash") == expected and "definition" in cache:
        return cache["definition"], generation, None
    full = _frozen_status(namespace, name, status, cache)
    problem = frozen_problem(full)  # hashed whenever the copy is read
    if problem:
        return None, generation, problem
    try:
        definition = parse_pipeline(full[FROZEN_SPEC], limits=SETTINGS.limits)
    except DefinitionError as error:
        return None, generation, "; ".join(str(p) for p in error.problems)[:1000]
    cache["definition"], cache["hash"] = definition, expected
    return definition, generation, None


def _frozen_status(namespace: str, name: str, status: Mapping[str, Any], cache: dict[str, Any]) -> Mapping[str, Any]:
    """A status holding the frozen copy: this one, the copy this worker just wrote, or the run read once."""
    if FROZEN_SPEC in status:
        return status
    written = cache.pop("frozen", None)
    if written is not None and written.get(FROZEN_HASH) == status.get(FROZEN_HASH):
        return dict(written)
    run = kube.get_object(namespace, PLURAL, name)
    return (run or {}).get("status") or {}


def _refuse(namespace: str, name: str, run: Mapping[str, Any], reason: str, message: str,
            now: datetime) -> Then:
    """End the run as Failed before any Job exists, with a condition and an Event naming the cause."""
    status = run.get("status") or {}
    new_status = {**status, "phase": PHASE_FAILED, "completionTime": status.get("completionTime") or format_time(now),
                  "conditions": conditions(status, PHASE_FAILED, reason, message, run["metadata"].get("generation"),
                                           now)}
    patch = merge_patch(status, new_status)

    async def act() -> Outcome:
        if patch:
            await caches.save_status(PLURAL, namespace, run, patch, {}, caches.trim_run)
            kopf.event(cast(Any, run), type="Warning", reason=reason, message=message[:1000])
        return False, None

    return Then(act)


def run_spec_of(run: Mapping[str, Any], definition: PipelineDefinition) -> RunSpec:
    spec = run.get("spec") or {}
    created = _time(run["metadata"].get("creationTimestamp")) or datetime.now(UTC)
    start = _time(spec.get("scheduledStartTime")) or created
    end = _time(spec.get("scheduledEndTime"))
    if end is None:
        interval = None
        schedule = definition.own_schedule
        if schedule is not None and (schedule.cron or schedule.period):
            try:
                interval = interval_at(schedule, start, start)
            except ValueError:
                interval = None
        end = interval.end if interval else start
    rerun_raw = spec.get("rerun") or {}
    rerun = None
    if rerun_raw.get("id"):
        rerun = Rerun(id=str(rerun_raw["id"]), activities=tuple(rerun_raw.get("activities") or ()),
                      failed_only=bool(rerun_raw.get("failedOnly")), downstream=bool(rerun_raw.get("downstream")))
    return RunSpec(name=run["metadata"]["name"], scheduled_start=start, scheduled_end=end,
                   cancel=bool(spec.get("cancel")), rerun=rerun,
                   mark_finished=tuple(str(n) for n in spec.get("markFinished") or ()))


def _capacity(namespace: str, pipeline: str, run: str, definition: PipelineDefinition,
              snap: caches.Snapshot | None = None) -> dict[str, int]:
    limited = {n: a.max_active_instances for n, a in definition.activities.items() if a.max_active_instances}
    if not limited:
        return {}
    instances: Iterable[Instance | None]
    if snap is not None:
        instances = snap.pipeline_instances
    else:
        selector = f"{LABEL_PIPELINE}={label_value(pipeline)},{LABEL_KIND}={KIND_ACTIVITY}"
        jobs = kube.batch().list_namespaced_job(namespace, label_selector=selector).items
        instances = [*(job_instance(kube.plain(j)) for j in jobs),
                     *(attempt_instance(a) for a in kube.list_pipeline_attempts(namespace, selector))]
    busy = busy_instances(run, instances)
    return {n: int(limit) - busy.get(n, 0) for n, limit in limited.items() if limit}


# ---------------------------------------------------------------------------- status
def conditions(old: Mapping[str, Any], phase: str, reason: str, message: str, generation: Any,
               now: datetime) -> list[dict[str, Any]]:
    succeeded = "True" if phase == SUCCEEDED else "False" if phase in FINAL_PHASES else "Unknown"
    ready = "True" if phase == SUCCEEDED else "False"
    previous = {c.get("type"): c for c in old.get("conditions") or ()}
    out = []
    for kind, value in (("Ready", ready), ("Succeeded", succeeded)):
        before = previous.get(kind) or {}
        changed = before.get("status") != value
        out.append({"type": kind, "status": value, "reason": reason, "message": message[:1000],
                    "observedGeneration": generation,
                    "lastTransitionTime": format_time(now) if changed or not before.get("lastTransitionTime")
                    else before["lastTransitionTime"]})
    return out


def build_status(old: Mapping[str, Any], state: RunState, run: Mapping[str, Any], generation: int,
                 now: datetime) -> dict[str, Any]:
    data = state.to_dict()
    phase = state.phase
    failed = [n for n, a in state.activities.items() if a.status in ("FAILED", "TIMEDOUT", "CASCADE_FAILED")
              or a.precondition_failed]
    if phase == SUCCEEDED:
        reason, message = "Succeeded", f"all {len(state.activities)} activities finished"
    elif phase == PHASE_FAILED:
        reason, message = "Failed", "failed: " + ", ".join(failed[:10])
    elif phase == "Cancelled":
        reason, message = "Cancelled", "the run was cancelled"
    else:
        reason, message = phase or "Pending", f"{state.progress()} activities finished"
    status: dict[str, Any] = {
        **data,
        **{key: old[key] for key in (FROZEN_SPEC, FROZEN_HASH) if key in old},
        FROZEN_GENERATION: generation,
        "observedGeneration": run["metadata"].get("generation"),
        "conditions": conditions(old, phase, reason, message, run["metadata"].get("generation"), now),
    }
    return status


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(str(value))
