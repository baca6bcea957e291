"""Turn Job and Pod objects (plain dicts, as the API returns them) into the state machine's JobFacts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from datapipeline.core.runstate import JobFact
from datapipeline.core.task import KIND_ACTIVITY, TaskResult
from datapipeline.core.taskattempt import TERMINAL_PHASES, attempt_fact
from datapipeline.k8s.jobs import LABEL_ACTIVITY, LABEL_KIND, LABEL_RERUN, LABEL_RUN

POD_ENDED = ("Succeeded", "Failed")  # a pod's phases once its containers stopped for good
Instance = tuple[str, str]  # (run, activity): one active instance of an activity, as maxActiveInstances counts


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        state = status.get("state") or {}
        if state.get("terminated"):
            return dict(state["terminated"])
    return None


def running_since(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod's container started running (None unless it runs now)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        running = (status.get("state") or {}).get("running")
        if running is not None:
            return _time(running.get("startedAt")) or _time((pod.get("status") or {}).get("startTime")) \
                or datetime.now(UTC)
    return None


def pod_ended(pod: Mapping[str, Any]) -> bool:
    """Every container of the pod has stopped for good (restartPolicy Never, as in every Job the operator
    makes). The kubelet says so first and sets the terminal phase a second or two later (seen on the dev
    cluster); the Job controller writes the Job's end after that."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or ()
    return status.get("phase") in POD_ENDED or \
        (bool(containers) and all((c.get("state") or {}).get("terminated") for c in containers))


def pod_job_name(pod: Mapping[str, Any]) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    name = labels.get("batch.kubernetes.io/job-name") or labels.get("job-name")
    return str(name) if name else None


def job_fact(job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]] = ()) -> JobFact:
    """One Job with its pods (any order) as a JobFact: state, times, exit code, runner's result."""
    name = str(job["metadata"]["name"])
    status = job.get("status") or {}
    started = _time(status.get("startTime"))
    pods = list(pods)
    pods.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    terminated = next((t for t in (_terminated(p) for p in reversed(pods)) if t), None)
    exit_code = terminated.get("exitCode") if terminated else None
    result: TaskResult | None = None
    message = terminated.get("message") if terminated else None
    if message:
        try:
            result = TaskResult.from_json(str(message))
        except (ValueError, TypeError, KeyError):
            result = TaskResult("FAILED", error_id="Runner", error_message=str(message)[:200])
    complete = _condition(job, "Complete") or (_condition(job, "SuccessCriteriaMet") if status.get("succeeded")
                                               else None)
    # Since Kubernetes 1.31 the Job controller sets FailureTarget (with the reason, e.g. DeadlineExceeded)
    # first, deletes or waits for the pods, and only then sets Failed: the attempt has failed already.
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if complete is not None or ((status.get("succeeded") or 0) > 0 and failed is None):
        return JobFact(name, "succeeded", started=started, finished=_time(status.get("completionTime"))
                       or _time((complete or {}).get("lastTransitionTime")), exit_code=exit_code or 0, result=result)
    if failed is not None:
        reason = failed.get("reason")
        finished = _time(failed.get("lastTransitionTime")) or (_time(terminated.get("finishedAt")) if terminated
                                                               else None)
        return JobFact(name, "failed", started=started, finished=finished, exit_code=exit_code, reason=reason,
                       result=result)
    # A pod that terminated while the Job has not yet caught up: report what the pod says.
    if terminated is not None and (status.get("active") or 0) == 0 and (status.get("failed") or 0) > 0:
        finished = _time(terminated.get("finishedAt"))
        reason = terminated.get("reason")
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline and started is not None and finished is not None \
                and (finished - started).total_seconds() >= float(deadline):
            reason = "DeadlineExceeded"  # stopped by the Job's deadline, the condition not yet written
        return JobFact(name, "failed", started=started, finished=finished, exit_code=exit_code, reason=reason,
                       result=result)
    since = [t for t in (running_since(p) for p in pods) if t is not None]
    running = (status.get("ready") or 0) > 0 or bool(since)
    ended = bool(pods) and all(pod_ended(p) for p in pods)
    return JobFact(name, "active", started=started, running=running, progress_at=max(since) if since else None,
                   pods_ended=ended)


def job_facts(jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> dict[str, JobFact]:
    by_job: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        owner = pod_job_name(pod)
        if owner:
            by_job.setdefault(owner, []).append(pod)
    facts = {}
    for job in jobs:
        if (job.get("metadata") or {}).get("deletionTimestamp"):
            continue  # being deleted: treat as gone
        fact = job_fact(job, by_job.get(str(job["metadata"]["name"]), ()))
        facts[fact.name] = fact
    return facts


def attempt_facts(attempts: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, JobFact]:
    """TaskAttempts (poll worker groups) as the same facts Jobs become."""
    return {str(a["metadata"]["name"]): attempt_fact(a, now) for a in attempts
            if not (a.get("metadata") or {}).get("deletionTimestamp")}


# ---------------------------------------------------------------------------- active instances
def _instance(obj: Mapping[str, Any], finished: bool) -> Instance | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if finished or labels.get(LABEL_KIND) != KIND_ACTIVITY or labels.get(LABEL_RERUN):
        return None  # reruns do not count toward the number of active instances
    return str(labels.get(LABEL_RUN) or ""), str(labels.get(LABEL_ACTIVITY) or "")


def job_instance(job: Mapping[str, Any]) -> Instance | None:
    """The activity instance an unfinished activity Job is (None when finished, a rerun's or not an activity's)."""
    status = job.get("status") or {}
    return _instance(job, bool(status.get("succeeded") or status.get("failed")))


def attempt_instance(attempt: Mapping[str, Any]) -> Instance | None:
    """The same for a TaskAttempt (poll worker groups): unclaimed, claimed or running counts."""
    return _instance(attempt, (attempt.get("status") or {}).get("phase") in TERMINAL_PHASES)


def busy_instances(run: str, instances: Iterable[Instance | None]) -> dict[str, int]:
    """Activity -> its active instances in the pipeline's other runs."""
    busy: dict[str, int] = {}
    for instance in instances:
        if instance is not None and instance[0] != run:
            busy[instance[1]] = busy.get(instance[1], 0) + 1
    return busy
