"""The TaskAttempt contract between the operator and the pollers of a worker group (docs/worker-groups.md).

An attempt routed to a ``mode: poll`` worker group is a TaskAttempt object instead of a Job. The operator
writes its spec once; a poller claims it by writing its status (conditional on the resourceVersion it saw),
renews the claim, and writes the verdict. Everything both sides need to agree on lives here: names, phases,
reasons, the lease arithmetic and the translation of an object into the state machine's :class:`JobFact`.
Pure: plain dicts in, plain dicts out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from datapipeline.core.runstate import JobFact
from datapipeline.core.task import TaskResult, utc_text

KIND = "TaskAttempt"
PLURAL = "taskattempts"
SHORT_NAME = "dpta"

# status.phase
CLAIMED = "Claimed"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)

# status.reason of a failed attempt
REASON_DEADLINE = "DeadlineExceeded"  # the same reason the Job controller gives: the state machine's timeout
REASON_WORKER_LOST = "WorkerLost"  # the claim was not renewed within leaseSeconds
REASON_POLLER_STOPPED = "PollerStopped"  # the poller was asked to stop while the task ran

LOG_TAIL_BYTES = 8192  # status.logTail: the end of the task's output
NO_WORKER_WARNING = timedelta(seconds=60)  # unclaimed this long: one Warning event


@dataclass(frozen=True)
class SecretEnvRef:
    """An environment variable of the task filled from a Secret's key: a reference, never the value."""

    name: str
    secret: str
    key: str


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def lease_seconds(obj: Mapping[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("leaseSeconds") or 60)


def lease_expires(obj: Mapping[str, Any]) -> datetime | None:
    """When a claimed, unfinished attempt's claim runs out unless renewed (None: unclaimed or finished)."""
    status = obj.get("status") or {}
    if status.get("phase") != CLAIMED:
        return None
    renewed = _time(status.get("renewTime")) or _time(status.get("claimTime"))
    return renewed + timedelta(seconds=lease_seconds(obj)) if renewed else None


def is_unclaimed(obj: Mapping[str, Any]) -> bool:
    return not (obj.get("status") or {}).get("claimedBy")


def _result(status: Mapping[str, Any]) -> TaskResult | None:
    text = status.get("result")
    if not text:
        return None
    try:
        return TaskResult.from_json(str(text))
    except (ValueError, TypeError, KeyError):
        return TaskResult("FAILED", error_id="Runner", error_message=str(text)[:200])


def attempt_fact(obj: Mapping[str, Any], now: datetime) -> JobFact:
    """A TaskAttempt as the state machine sees a Job: started at its claim, running while claimed, its
    heartbeats as progress; a claim not renewed in time is a failure (the poller is gone)."""
    name = str(obj["metadata"]["name"])
    status = obj.get("status") or {}
    phase = status.get("phase")
    started = _time(status.get("claimTime"))
    finished = _time(status.get("finishTime"))
    exit_code = status.get("exitCode")
    if phase == SUCCEEDED:
        return JobFact(name, "succeeded", started=started, finished=finished,
                       exit_code=int(exit_code) if exit_code is not None else 0, result=_result(status))
    if phase == FAILED:
        return JobFact(name, "failed", started=started, finished=finished,
                       exit_code=int(exit_code) if exit_code is not None else None, reason=status.get("reason"),
                       result=_result(status))
    expires = lease_expires(obj)
    if expires is not None and now >= expires:
        return JobFact(name, "failed", started=started, finished=expires, reason=REASON_WORKER_LOST,
                       result=lost_result(obj))
    if phase == CLAIMED:
        progress = _time(status.get("progressTime")) or started
        return JobFact(name, "active", started=started, running=True, progress_at=progress)
    return JobFact(name, "active")


def lost_result(obj: Mapping[str, Any]) -> TaskResult:
    status = obj.get("status") or {}
    renewed = status.get("renewTime") or status.get("claimTime")
    return TaskResult("FAILED", error_id="Runner.WorkerLost",
                      error_message=f"the poller {status.get('claimedBy')} stopped renewing its claim (last at "
                                    f"{renewed}; leaseSeconds {lease_seconds(obj)}): the attempt is counted as "
                                    "failed")


def lost_patch(obj: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The operator's verdict on a lost claim: terminal, so the lost poller's late writes are refused.
    Conditional on the resourceVersion seen: a heartbeat that arrived meanwhile wins."""
    result = lost_result(obj)
    return {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "status": {"phase": FAILED, "reason": REASON_WORKER_LOST, "finishTime": utc_text(now),
                       "result": result.to_json()}}


def claim_patch(obj: Mapping[str, Any], poller: str, now: datetime) -> dict[str, Any]:
    """A poller's claim: applied only if nobody wrote the object since ``obj`` was read."""
    stamp = utc_text(now)
    return {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "status": {"phase": CLAIMED, "claimedBy": poller, "claimTime": stamp, "renewTime": stamp}}


def renew_patch(now: datetime, progress: datetime | None) -> dict[str, Any]:
    status = {"renewTime": utc_text(now)}
    if progress is not None:
        status["progressTime"] = utc_text(progress)
    return {"status": status}


def verdict_patch(result: TaskResult, exit_code: int, now: datetime, reason: str | None,
                  log_tail: str) -> dict[str, Any]:
    phase = SUCCEEDED if exit_code == 0 else FAILED  # a precondition not met is exit code 75, as in a Job
    status: dict[str, Any] = {"phase": phase, "exitCode": exit_code, "finishTime": utc_text(now),
                              "result": result.to_json(), "renewTime": utc_text(now), "logTail": log_tail}
    if reason:
        status["reason"] = reason
    return {"status": status}


def secret_env(spec: Mapping[str, Any]) -> list[SecretEnvRef]:
    return [SecretEnvRef(str(e["name"]), str(e["secret"]), str(e["key"])) for e in spec.get("secretEnv") or ()]


def plain_env(spec: Mapping[str, Any]) -> dict[str, str]:
    return {str(e["name"]): str(e.get("value", "")) for e in spec.get("env") or ()}


def task_json(spec: Mapping[str, Any]) -> str:
    """The TaskSpec JSON (a string in the object, so it is byte for byte what a Job's env var holds)."""
    text = spec.get("task")
    if not isinstance(text, str):
        raise ValueError("spec.task is not a string")
    json.loads(text)  # must parse
    return text
