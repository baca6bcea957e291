"""The day-2 operations, one implementation for the CLI (``cli/ops.py``) and the web console.

Each takes ``kube``, the API calls to make (the module :mod:`datapipeline.k8s.api`, acting as the kube
context's user or as a console request's bearer token; a stand-in in tests), and returns what happened in
one line. Input the operation cannot accept (an unknown run, a malformed time, a parameter the Pipeline
refuses) is a :class:`Day2Error` with one sentence; what the API server refuses stays its ``ApiException``.

They only touch the API like kubectl would: runs are created with the same deterministic names the
operator uses, and requests (cancel, rerun, markFinished, activated, paused...) are patches of a spec.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from datapipeline.controller.frozen import FROZEN_SPEC
from datapipeline.core.model import DEFAULT_SCHEDULE, Schedule
from datapipeline.core.schedule import (
    ScheduleError,
    backfill_intervals,
    effective_start,
    format_time,
    parse_time,
    run_name,
)

LOG_KEY = "{uri}/{pipeline}/{run}/{activity}/attempt-{attempt}.log"  # where attempt logs are kept in S3
LIFECYCLE_VERBS = ("activate", "deactivate", "pause", "resume")
LIFECYCLE_DONE = {"activate": "activated", "deactivate": "deactivated", "pause": "paused", "resume": "resumed"}


class Day2Error(ValueError):
    """Input an operation cannot accept, said in one sentence (the CLI prints it after ``error: ``)."""


class NotFound(Day2Error):
    """The Pipeline or PipelineRun named does not exist."""


class KubeApi(Protocol):
    """The calls the operations make (:mod:`datapipeline.k8s.api` provides them)."""

    def get_object(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None: ...

    def create_object(self, namespace: str, plural: str, body: Mapping[str, Any]) -> bool: ...

    def patch_spec(self, namespace: str, plural: str, name: str, patch: Mapping[str, Any]) -> None: ...

    def core(self) -> Any: ...


# ---------------------------------------------------------------------------- input
def parse_time_option(value: str, option: str) -> datetime:
    """An RFC 3339 value (--at, --from, --to); a clear message naming the option otherwise."""
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise Day2Error(f'{option}: "{value[:60]}" is not a date-time; write it like '
                        "2026-01-31T00:00:00Z") from None


def parse_params(items: Iterable[str] | None) -> dict[str, str]:
    """NAME=VALUE items (--param) as a mapping."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise Day2Error(f"--param {item!r}: write it as NAME=VALUE")
        out[key] = value
    return out


def checked_params(pipeline: Mapping[str, Any], raw: Mapping[str, str]) -> dict[str, str | list[str]]:
    """Parameter values, checked as the operator will check them (type, allowedValues, pattern, overridable)."""
    from datapipeline.cli.validate import cli_limits
    from datapipeline.core.definition import parse_pipeline
    from datapipeline.core.problems import DefinitionError
    from datapipeline.core.values import run_values

    if not raw:
        return {}
    try:
        definition = parse_pipeline(pipeline.get("spec") or {}, limits=cli_limits())
    except DefinitionError as error:
        raise Day2Error(f"Pipeline {pipeline['metadata']['name']} is invalid: {error.problems[0]}") from None
    values, problems = run_values(definition, dict(raw), path="--param")
    if problems:
        raise Day2Error("\n".join(str(p).replace("--param.", "--param ", 1) for p in problems))
    return values


def get_pipeline(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    pipeline = kube.get_object(namespace, "pipelines", name)
    if pipeline is None:
        raise NotFound(f"no Pipeline {name} in {namespace}")
    return dict(pipeline)


def get_run(kube: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    run = kube.get_object(namespace, "pipelineruns", name)
    if run is None:
        raise NotFound(f"no PipelineRun {name} in {namespace}")
    return dict(run)


# ---------------------------------------------------------------------------- new runs
def start_run(kube: KubeApi, namespace: str, pipeline_name: str, *, at: datetime | None = None,
              params: Mapping[str, str] | None = None, name: str | None = None,
              schedule: str = DEFAULT_SCHEDULE) -> str:
    """Creates a Manual run of the pipeline for ``at`` (default: now); returns the run's name."""
    from datapipeline.controller.pipelines import run_manifest

    moment = at or datetime.now(UTC).replace(microsecond=0)
    pipeline = get_pipeline(kube, namespace, pipeline_name)
    values = checked_params(pipeline, params or {})
    known = list((pipeline.get("spec") or {}).get("schedules") or {})
    if schedule != DEFAULT_SCHEDULE and schedule not in known:
        raise Day2Error(f'--schedule: the Pipeline has no schedule named "{schedule}" '
                        f"(its schedules: {', '.join([DEFAULT_SCHEDULE, *known])})")
    kind = "manual" if schedule == DEFAULT_SCHEDULE else f"{schedule}-manual"
    run = name or run_name(pipeline_name, moment, kind)
    body = run_manifest(pipeline_name, namespace, moment, None, "Manual", name=run, values=values, owner=pipeline,
                        schedule=schedule)
    if not kube.create_object(namespace, "pipelineruns", body):
        raise Day2Error(f"PipelineRun {run} already exists")
    return run


def backfill(kube: KubeApi, namespace: str, pipeline_name: str, range_from: datetime, range_to: datetime, *,
             schedule: str | None = None, params: Mapping[str, str] | None = None, dry_run: bool = False,
             report: Callable[[str], None] = lambda line: None) -> None:
    """Creates a Backfill run for every interval between the two times; ``report`` hears of each one."""
    from datapipeline.cli.validate import cli_limits
    from datapipeline.core.definition import parse_pipeline

    pipeline = get_pipeline(kube, namespace, pipeline_name)
    definition = parse_pipeline(pipeline.get("spec") or {}, limits=cli_limits())
    if definition.schedule is None:
        raise Day2Error("an ondemand pipeline has no intervals to backfill; use `datapipeline run`")
    names = definition.schedule_names
    if schedule is not None:
        if schedule not in names:
            raise Day2Error(f'--schedule: no activity runs on a schedule named "{schedule}" '
                            f"(schedules with activities: {', '.join(names)})")
        names = [schedule]
    activated = (pipeline.get("status") or {}).get("activatedAt")
    values = checked_params(pipeline, params or {})
    for name in names:  # fine schedules first: a coarse run waits for the fine runs created beside it
        _backfill_schedule(kube, namespace, pipeline, definition.schedules[name], name, activated, values,
                           (range_from, range_to), dry_run, report)


def _backfill_schedule(kube: KubeApi, namespace: str, pipeline: Mapping[str, Any], schedule: Schedule, name: str,
                       activated: str | None, values: Mapping[str, Any], window: tuple[datetime, datetime],
                       dry_run: bool, report: Callable[[str], None]) -> None:
    from datapipeline.controller.pipelines import run_manifest

    pipeline_name = str(pipeline["metadata"]["name"])
    start = effective_start(schedule, parse_time(activated) if activated else window[0])
    assert start is not None
    try:
        intervals = backfill_intervals(schedule, start, window[0], window[1])
    except ScheduleError as error:
        where = "" if name == DEFAULT_SCHEDULE else f"schedule {name}: "
        raise Day2Error(f"{where}{error}") from error
    for interval in intervals:
        body = run_manifest(pipeline_name, namespace, interval.start, interval.end, "Backfill",
                            values=values, owner=pipeline, schedule=name)
        if dry_run:
            report(f"would create {body['metadata']['name']} for {format_time(interval.start)}")
            continue
        created = kube.create_object(namespace, "pipelineruns", body)
        report(f"pipelinerun/{body['metadata']['name']} {'created' if created else 'exists'}")


# ---------------------------------------------------------------------------- requests to a run
def _patch_run(kube: KubeApi, namespace: str, run: str, patch: Mapping[str, Any], done: str) -> str:
    from kubernetes.client.exceptions import ApiException

    try:
        kube.patch_spec(namespace, "pipelineruns", run, patch)
    except ApiException as error:
        if error.status == 404:
            raise NotFound(f"no PipelineRun {run} in {namespace}") from None
        raise
    return f"pipelinerun/{run} {done}"


def cancel_run(kube: KubeApi, namespace: str, run: str) -> str:
    """Asks the operator to stop the run's Jobs and mark the rest CANCELED."""
    return _patch_run(kube, namespace, run, {"spec": {"cancel": True}}, "cancel requested")


def rerun_run(kube: KubeApi, namespace: str, run: str, *, failed_only: bool = False,
              activities: Iterable[str] = (), downstream: bool = False) -> str:
    """Asks for a rerun of the run: all of it, only its failed activities, or the named ones (and downstream)."""
    names = list(activities)
    if names:
        _check_activities(kube, namespace, run, names)
    rerun: dict[str, Any] = {"id": uuid.uuid4().hex[:8], "failedOnly": bool(failed_only),
                             "downstream": bool(downstream), "activities": names}
    return _patch_run(kube, namespace, run, {"spec": {"cancel": False, "rerun": rerun}},
                      f"rerun {rerun['id']} requested")


def mark_finished(kube: KubeApi, namespace: str, run: str, activities: Iterable[str]) -> str:
    """Marks activities FINISHED without running them (AWS MARK_FINISHED), adding to what was marked before."""
    found = get_run(kube, namespace, run)
    wanted = list(activities)
    if not wanted:
        raise Day2Error("name at least one activity to mark finished")
    _check_activities(kube, namespace, run, wanted, found)
    names = list(dict.fromkeys([*((found.get("spec") or {}).get("markFinished") or []), *wanted]))
    return _patch_run(kube, namespace, run, {"spec": {"markFinished": names}}, "mark-finished requested")


def _check_activities(kube: KubeApi, namespace: str, run: str, names: list[str],
                      found: Mapping[str, Any] | None = None) -> None:
    """Each name is an activity of the run (once the operator has listed them in its status)."""
    known = ((found or get_run(kube, namespace, run)).get("status") or {}).get("activities") or {}
    unknown = [n for n in names if known and n not in known]
    if unknown:
        raise Day2Error(f'run {run} has no activity named "{unknown[0]}" (its activities: {", ".join(known)})')


# ---------------------------------------------------------------------------- the pipeline's lifecycle
def lifecycle_patch(verb: str, start_timestamp: str | None = None, cancel_active: bool = True) -> dict[str, Any]:
    """The Pipeline spec patch of activate, deactivate, pause and resume (the same fields GitOps writes)."""
    if verb == "activate":
        spec: dict[str, Any] = {"activated": True}
        if start_timestamp:
            spec["activateFrom"] = format_time(parse_time_option(start_timestamp, "--start-timestamp"))
        return {"spec": spec}
    if verb == "deactivate":
        return {"spec": {"activated": False, "cancelActiveOnDeactivate": cancel_active}}
    if verb in ("pause", "resume"):
        return {"spec": {"paused": verb == "pause"}}
    raise Day2Error(f'"{verb}" is not one of {", ".join(LIFECYCLE_VERBS)}')


def change_lifecycle(kube: KubeApi, namespace: str, pipeline: str, verb: str, *, start_timestamp: str | None = None,
                     cancel_active: bool = True) -> str:
    """Activates, deactivates, pauses or resumes a pipeline by patching its spec."""
    from kubernetes.client.exceptions import ApiException

    patch = lifecycle_patch(verb, start_timestamp, cancel_active)
    try:
        kube.patch_spec(namespace, "pipelines", pipeline, patch)
    except ApiException as error:
        if error.status == 404:
            raise NotFound(f"no Pipeline {pipeline} in {namespace}") from None
        raise
    done = LIFECYCLE_DONE[verb]
    if verb == "deactivate":
        done += "; its active runs are cancelled" if cancel_active else "; its active runs may finish"
    if patch["spec"].get("activateFrom"):
        done += f" from {patch['spec']['activateFrom']} (earlier intervals are SKIPPED)"
    return f"pipeline/{pipeline} {done}"


# ---------------------------------------------------------------------------- logs
@dataclass(frozen=True)
class AttemptLog:
    activity: str
    attempt: int
    job: str
    text: str
    source: str  # "pod", "pipelineLogUri", "TaskAttempt" (a poller's tail) or "none"


def attempt_logs(kube: KubeApi, namespace: str, run: str, activity: str | None = None,
                 attempt: int | None = None, tail_lines: int | None = None) -> list[AttemptLog]:
    """The log of each activity's attempt (the newest unless ``attempt``): from the pod while it exists, then
    from the run's pipelineLogUri. ``tail_lines`` keeps only a live log's last lines."""
    from datapipeline.core.runstate import attempt_job_name

    found = get_run(kube, namespace, run)
    activities = (found.get("status") or {}).get("activities") or {}
    if activity is not None and activities and activity not in activities:
        raise Day2Error(f'run {run} has no activity named "{activity}" (its activities: {", ".join(activities)})')
    logs = []
    for name in [activity] if activity else list(activities):
        number = int(attempt or (activities.get(name) or {}).get("attempt") or 1)
        job = attempt_job_name(run, name, number)
        pods = kube.core().list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        if pods:
            extra = {"tail_lines": tail_lines} if tail_lines else {}
            text = str(kube.core().read_namespaced_pod_log(pods[-1].metadata.name, namespace, **extra))
            logs.append(AttemptLog(name, number, job, text, "pod"))
            continue
        stored = _s3_log(found, name, number)
        if stored is not None:
            logs.append(AttemptLog(name, number, job, stored, "pipelineLogUri"))
            continue
        tail = _attempt_log_tail(kube, namespace, job)
        logs.append(AttemptLog(name, number, job, tail or "(no pod and no stored log)",
                               "TaskAttempt" if tail else "none"))
    return logs


def _attempt_log_tail(kube: KubeApi, namespace: str, name: str) -> str | None:
    """An attempt a poller ran (worker group in mode poll): the end of its output, kept in the TaskAttempt."""
    from datapipeline.core import taskattempt

    found = kube.get_object(namespace, taskattempt.PLURAL, name)
    status = (found or {}).get("status") or {}
    if found is None or not status.get("logTail"):
        return None
    return (f"(run by poller {status.get('claimedBy')}; the last {taskattempt.LOG_TAIL_BYTES} bytes of its "
            f"output; set pipelineLogUri to keep whole logs)\n{status['logTail']}")


def log_key(uri: str, pipeline: str, run: str, activity: str, attempt: int) -> str:
    return LOG_KEY.format(uri=uri.rstrip("/"), pipeline=pipeline, run=run, activity=activity, attempt=attempt)


def _s3_log(run: Mapping[str, Any], activity: str, attempt: int) -> str | None:
    spec = (run.get("status") or {}).get(FROZEN_SPEC) or {}
    uri = spec.get("pipelineLogUri")
    if not uri:
        return None
    import boto3

    aws = spec.get("aws") or {}
    url = log_key(uri, (run.get("spec") or {}).get("pipelineRef", {}).get("name", ""), run["metadata"]["name"],
                  activity, attempt)
    bucket, _, key = url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=aws.get("s3EndpointUrl"), region_name=aws.get("region", "us-east-1"))
    try:
        return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(errors="replace"))
    except Exception as error:  # the log may never have been uploaded
        return f"(no stored log at {url}: {error})"
