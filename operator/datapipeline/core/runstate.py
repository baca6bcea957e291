"""The run state machine: what to do next for one PipelineRun, decided as data.

:func:`reconcile` takes the pipeline definition, the run's spec (cancel, rerun, markFinished), the
per-activity state kept in the run's status, the Jobs that exist for the run (as :class:`JobFact`)
and the current time, and returns the new state plus a list of commands (create a Job, delete a
Job, emit an Event) and the time to look again. It never performs I/O, so it is tested in
milliseconds, and it is level-triggered: called again with the same facts it asks for the same Jobs
(with the same deterministic names), so an adapter killed between acting and saving converges.

Contract with the adapter: run the commands (``AlreadyExists`` on create and ``NotFound`` on delete
are success), then save the state. Because a Job is always created before the state that names it is
saved, a Job the state names but the facts lack was deleted: that attempt failed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from datapipeline.core.crossrun import DONE as DONE_EXTERNAL
from datapipeline.core.crossrun import FAILED as FAILED_EXTERNAL
from datapipeline.core.crossrun import WAITING as WAITING_EXTERNAL
from datapipeline.core.crossrun import ExternalState
from datapipeline.core.durations import format_duration
from datapipeline.core.model import (
    DEFAULT_PRECONDITION_MAXIMUM_RETRIES,
    DEFAULT_PRECONDITION_RETRY_DELAY,
    Activity,
    PipelineDefinition,
    PipelineObject,
)
from datapipeline.core.task import (
    EXIT_INVALID_TASK,
    EXIT_PRECONDITION_NOT_MET,
    NODE_TEXT_KEYS,
    TaskResult,
    utc_text,
)

# Activity states (AWS names)
WAITING_ON_DEPENDENCIES = "WAITING_ON_DEPENDENCIES"
WAITING_FOR_RUNNER = "WAITING_FOR_RUNNER"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
CASCADE_FAILED = "CASCADE_FAILED"
CANCELED = "CANCELED"
TIMEDOUT = "TIMEDOUT"  # a resource state (terminateAfter); activities saved by older versions may still hold it
SKIPPED = "SKIPPED"
PAUSED = "PAUSED"
ACTIVITY_STATES = (WAITING_ON_DEPENDENCIES, WAITING_FOR_RUNNER, RUNNING, FINISHED, FAILED, CASCADE_FAILED,
                   CANCELED, SKIPPED, PAUSED)
TERMINAL = frozenset({FINISHED, FAILED, CASCADE_FAILED, CANCELED, TIMEDOUT, SKIPPED})
SUCCESSFUL = frozenset({FINISHED, SKIPPED})
UNSUCCESSFUL = TERMINAL - SUCCESSFUL

# Run phases
PENDING, PHASE_RUNNING, SUCCEEDED, PHASE_FAILED, CANCELLED = "Pending", "Running", "Succeeded", "Failed", "Cancelled"
PHASE_PAUSED = "Paused"
FINAL_PHASES = frozenset({SUCCEEDED, PHASE_FAILED, CANCELLED})
# status.external: how the run depends on other schedules' runs. "waiting": every unfinished activity waits
# for them (the run does not count against maxActiveRuns); "blocked": some activity waits for them or failed
# because of them (a producer's event wakes the run, even a finished one: a rerun of the producer reaches it).
WAITING_EXTERNAL_KEY = "external"
EXTERNAL_WAITING, EXTERNAL_BLOCKED = "waiting", "blocked"

# Job kinds
KIND_ACTIVITY, KIND_PRECONDITION, KIND_ACTION = "activity", "precondition", "action"

# Precondition check states (NOT_MET: the precondition failed for good: timed out or out of retries)
CHECKING, MET, NOT_MET, CHECK_CANCELED = "CHECKING", "MET", "FAILED", "CANCELED"

# Error ids the machine sets itself
ATTEMPT_TIMEOUT, RESOURCE_TIMEOUT, CASCADE_FAILED_ID = "AttemptTimeout", "ResourceTimeout", "CascadeFailed"

MAX_ATTEMPTS_KEPT = 10
MAX_ERROR_MESSAGE = 200
# A Job with activeDeadlineSeconds is stopped by Kubernetes; the operator steps in only after this margin.
DEADLINE_MARGIN = timedelta(seconds=30)
MAX_NAME = 63


# ---------------------------------------------------------------------------- names
def kube_name_part(text: str) -> str:
    """Text as part of a Kubernetes object name: lower case letters, digits and '-' (a check's key holds '/')."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower())


def _short(text: str, limit: int) -> str:
    text = kube_name_part(text)
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: limit - 9].rstrip('-')}-{digest}"


def job_name(run: str, activity: str, suffix: str) -> str:
    """``<run>-<activity>-<suffix>``, shortened with a hash to at most 63 characters, deterministic."""
    full = kube_name_part(f"{run}-{activity}-{suffix}")
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    tail = kube_name_part(f"-{digest}-{suffix}")
    return f"{full[: MAX_NAME - len(tail)].rstrip('-')}{tail}"


def attempt_job_name(run: str, activity: str, attempt: int) -> str:
    return job_name(run, activity, str(attempt))


def check_job_name(run: str, activity: str, key: str, check: int) -> str:
    return job_name(run, activity, f"{_short(key, 20)}-c{check}")


def action_job_name(run: str, activity: str, event: str, action: str) -> str:
    return job_name(run, activity, f"{_short(event, 12)}-{_short(action, 16)}")


# ---------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Rerun:
    id: str
    activities: tuple[str, ...] = ()
    failed_only: bool = False
    downstream: bool = False


@dataclass(frozen=True)
class RunSpec:
    name: str
    scheduled_start: datetime
    scheduled_end: datetime
    cancel: bool = False
    rerun: Rerun | None = None
    mark_finished: tuple[str, ...] = ()
    cancel_reason: str = "run cancelled"  # cancellationReason of what a cancel stops
    paused: bool = False  # the pipeline is paused: nothing new starts, running attempts go on
    queued: str | None = None  # why the run may not start yet (maxActiveInstances of an on-demand pipeline)
    # Activities of other schedules' runs that this run's activities depend on: what their instances for this
    # run's interval say (core.crossrun). Missing means not observed yet: waiting.
    external: Mapping[str, ExternalState] = field(default_factory=dict)


@dataclass(frozen=True)
class JobFact:
    """What the adapter observed about one Job (and its pod)."""

    name: str
    state: str  # active | succeeded | failed
    started: datetime | None = None  # the Job's startTime
    running: bool = False  # a container is running (else it is still waiting for a node/image)
    finished: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None  # DeadlineExceeded, BackoffLimitExceeded, ...
    result: TaskResult | None = None
    # When the attempt last showed a sign of life: its newest log line, else its container's start. The
    # adapter reads it only for attempts of activities with reportProgressTimeout.
    progress_at: datetime | None = None
    # Every pod of the still active Job has ended: the Job controller writes the Job's end within seconds.
    pods_ended: bool = False


# ---------------------------------------------------------------------------- state
@dataclass
class Attempt:
    n: int
    status: str
    start: datetime | None = None
    end: datetime | None = None
    exit_code: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"n": self.n, "status": self.status}
        if self.start:
            data["start"] = _fmt(self.start)
        if self.end:
            data["end"] = _fmt(self.end)
        if self.exit_code is not None:
            data["exitCode"] = self.exit_code
        if self.error:
            data["error"] = self.error
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Attempt:
        return Attempt(n=int(data["n"]), status=str(data["status"]), start=_parse(data.get("start")),
                       end=_parse(data.get("end")), exit_code=data.get("exitCode"), error=data.get("error"))


@dataclass
class Check:
    """One precondition of an activity (its own, or one guarding an input data node)."""

    status: str = CHECKING
    checks: int = 0  # check Jobs created so far
    errors: int = 0  # checks that erred (not "not met"): past maximumRetries the precondition fails
    first: datetime | None = None  # when the first check was created
    next_at: datetime | None = None  # None while a check Job runs
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "checks": self.checks}
        if self.errors:
            data["errors"] = self.errors
        if self.first:
            data["first"] = _fmt(self.first)
        if self.next_at:
            data["nextAt"] = _fmt(self.next_at)
        if self.message:
            data["message"] = self.message
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Check:
        return Check(status=str(data.get("status", CHECKING)), checks=int(data.get("checks", 0)),
                     errors=int(data.get("errors", 0)), first=_parse(data.get("first")), next_at=_parse(data.get("nextAt")), message=data.get("message"))


@dataclass
class ActivityState:
    status: str = WAITING_ON_DEPENDENCIES
    attempt: int = 0  # number of the newest attempt (its Job exists unless retry_at is set)
    round_start: int = 0  # attempts before the current round (a rerun restarts the retry budget)
    retry_at: datetime | None = None  # the next attempt's Job is created at this time
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    waiting_on: str | None = None
    error_id: str | None = None
    error_message: str | None = None
    cascade_failed_on: str | None = None
    cancellation_reason: str | None = None
    resource_status: str | None = None  # TIMEDOUT: the compute profile's terminateAfter stopped the attempt
    result: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)  # action events already fired: late, fail:3, success:2

    @property
    def job_expected(self) -> bool:
        """A Job for the newest attempt exists (or existed)."""
        return self.status in (WAITING_FOR_RUNNER, RUNNING) and self.retry_at is None and self.attempt > 0

    @property
    def precondition_failed(self) -> bool:
        """It waits on a precondition that failed for good (its failureAndRerunMode is none)."""
        return self.status == WAITING_ON_DEPENDENCIES and any(c.status == NOT_MET for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        if self.attempt:
            data["attempt"] = self.attempt
        if self.round_start:
            data["roundStart"] = self.round_start
        for key, value in (("retryAt", self.retry_at), ("startTime", self.start_time), ("endTime", self.end_time)):
            if value:
                data[key] = _fmt(value)
        extra: dict[str, Any] = {"exitCode": self.exit_code, "waitingOn": self.waiting_on, "errorId": self.error_id,
                                 "errorMessage": self.error_message, "cascadeFailedOn": self.cascade_failed_on,
                                 "cancellationReason": self.cancellation_reason,
                                 "resourceStatus": self.resource_status,
                                 "result": self.result or None}  # {} reads back as none: one write, not two
        data.update({k: v for k, v in extra.items() if v is not None})
        if len(self.attempts) > 1 or (self.attempts and self.attempts[0].error):
            # One clean attempt says nothing the summary does not: history only when there is some.
            data["attempts"] = [a.to_dict() for a in self.attempts[-MAX_ATTEMPTS_KEPT:]]
        if self.checks:
            data["checks"] = {k: c.to_dict() for k, c in self.checks.items()}
        if self.fired:
            data["fired"] = list(self.fired)
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ActivityState:
        return ActivityState(
            status=str(data.get("status", WAITING_ON_DEPENDENCIES)), attempt=int(data.get("attempt", 0)),
            round_start=int(data.get("roundStart", 0)), retry_at=_parse(data.get("retryAt")),
            start_time=_parse(data.get("startTime")), end_time=_parse(data.get("endTime")),
            exit_code=data.get("exitCode"), waiting_on=data.get("waitingOn"), error_id=data.get("errorId"),
            error_message=data.get("errorMessage"), cascade_failed_on=data.get("cascadeFailedOn"),
            cancellation_reason=data.get("cancellationReason"), resource_status=data.get("resourceStatus"),
            result=dict(data["result"]) if data.get("result") else None,
            attempts=[Attempt.from_dict(a) for a in data.get("attempts") or ()] or _implied_attempt(data),
            checks={str(k): Check.from_dict(v) for k, v in (data.get("checks") or {}).items()},
            fired=[str(f) for f in data.get("fired") or ()],
        )


@dataclass
class NodeState:
    """A data node of the run, kept once something happened to it: ready, failed, cascade-failed."""

    status: str = WAITING_ON_DEPENDENCIES
    end_time: datetime | None = None
    error_message: str | None = None
    cascade_failed_on: str | None = None
    fired: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        extra = {"endTime": _fmt(self.end_time) if self.end_time else None, "errorMessage": self.error_message,
                 "cascadeFailedOn": self.cascade_failed_on, "fired": list(self.fired) or None}
        data.update({k: v for k, v in extra.items() if v is not None})
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> NodeState:
        return NodeState(status=str(data.get("status", WAITING_ON_DEPENDENCIES)), end_time=_parse(data.get("endTime")),
                         error_message=data.get("errorMessage"), cascade_failed_on=data.get("cascadeFailedOn"),
                         fired=[str(f) for f in data.get("fired") or ()])


@dataclass
class RunState:
    phase: str = ""
    activities: dict[str, ActivityState] = field(default_factory=dict)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    start_time: datetime | None = None
    completion_time: datetime | None = None
    handled_rerun: str | None = None
    handled_mark_finished: list[str] = field(default_factory=list)
    external: str | None = None  # EXTERNAL_WAITING | EXTERNAL_BLOCKED | None

    def progress(self) -> str:
        done = sum(1 for a in self.activities.values() if a.status in SUCCESSFUL)
        return f"{done}/{len(self.activities)}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"phase": self.phase, "progress": self.progress(),
                                "activities": {n: a.to_dict() for n, a in self.activities.items()}}
        if self.nodes:
            data["dataNodes"] = {n: x.to_dict() for n, x in self.nodes.items()}
        if self.start_time:
            data["startTime"] = _fmt(self.start_time)
        data["completionTime"] = _fmt(self.completion_time) if self.completion_time else None
        if self.handled_rerun is not None:
            data["handledRerun"] = self.handled_rerun
        if self.handled_mark_finished:
            data["handledMarkFinished"] = list(self.handled_mark_finished)
        data[WAITING_EXTERNAL_KEY] = self.external
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any] | None) -> RunState:
        data = data or {}
        return RunState(
            phase=str(data.get("phase") or ""),
            activities={str(n): ActivityState.from_dict(a) for n, a in (data.get("activities") or {}).items()},
            nodes={str(n): NodeState.from_dict(x) for n, x in (data.get("dataNodes") or {}).items()},
            start_time=_parse(data.get("startTime")), completion_time=_parse(data.get("completionTime")),
            handled_rerun=data.get("handledRerun"),
            handled_mark_finished=[str(n) for n in data.get("handledMarkFinished") or ()],
            external=data.get(WAITING_EXTERNAL_KEY),
        )


# ---------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class CreateJob:
    name: str
    kind: str  # activity | precondition | action
    object: str  # the activity, precondition or action to run
    activity: str  # the activity it is for
    attempt: int  # activity attempt; check number for a precondition; triggering attempt for an action
    deadline: timedelta | None = None  # activeDeadlineSeconds
    guarded_node: str | None = None  # precondition of an input data node
    event: str | None = None  # action: late | fail | success
    node: Mapping[str, Any] = field(default_factory=dict)  # action/precondition: the triggering object's fields
    rerun: bool = False  # an attempt of a rerun: it does not count against maxActiveInstances


@dataclass(frozen=True)
class DeleteJob:
    name: str
    reason: str


@dataclass(frozen=True)
class Emit:
    reason: str
    message: str
    type: str = "Normal"  # Normal | Warning


# Events that only repeat what the run's status already holds (each attempt's creation, start and end): posted
# only when the operator is asked for every event (DATAPIPELINE_EVENTS=all). The run's own transitions, every
# failure, lateness, action, rerun and cancel, and every Warning are always posted.
# The run's start is its status too (startTime, the Ready condition); its end is posted.
PROGRESS_REASONS = frozenset({"AttemptCreated", "ActivityRunning", "ActivityFinished", "DataNodeReady",
                              "PreconditionMet", "RunStarted"})


def worth_posting(emit: Emit, every_event: bool) -> bool:
    return every_event or emit.type == "Warning" or emit.reason not in PROGRESS_REASONS


def only_started(old: RunState, new: RunState) -> bool:
    """``new`` differs from ``old`` only in activities whose attempt's Job started (waiting for a runner, now
    RUNNING, same attempt): all a later pass derives again from the Job itself, with the same start time (the
    pod's). Saving such a state may wait a little, so that a short attempt costs one status write at its end
    instead of two (issue #12); anything else (a phase, an end, a new attempt, a fired action) may not."""
    if old.to_dict() == new.to_dict():
        return False
    activities = dict(new.activities)
    for name, after in new.activities.items():
        before = old.activities.get(name)
        if before is not None and before.status == WAITING_FOR_RUNNER and after.status == RUNNING \
                and before.attempt == after.attempt:
            activities[name] = _unstarted(after, before)
    return old.to_dict() == replace(new, activities=activities).to_dict()


def _unstarted(after: ActivityState, before: ActivityState) -> ActivityState:
    """``after`` with what its attempt's start changed (status, times, the attempt's record) as in ``before``."""
    records = {a.n: a for a in before.attempts}
    attempts = [records.get(a.n, a) if a.n == after.attempt else a for a in after.attempts]
    return replace(after, status=before.status, start_time=before.start_time, waiting_on=before.waiting_on,
                   attempts=attempts)


def only_first_attempts(new: RunState) -> bool:
    """``new`` is all a run's first passes decided, before anything of it was saved: the run is pending or
    running, its ready activities' first attempts (and their preconditions' first checks) were made and may
    have started; nothing failed, fired, ended or was asked for. A later pass decides all of it again from
    the Pipeline and the Jobs (whose names are fixed by run, activity and number), so saving it may wait a
    little, and a one-activity run whose attempt ends meanwhile costs one status write, not two (issue #12)."""
    if new.phase not in (PENDING, PHASE_RUNNING) or new.completion_time or new.handled_rerun is not None \
            or new.handled_mark_finished or new.external:
        return False
    if any(n.status != FINISHED or n.fired or n.error_message or n.cascade_failed_on for n in new.nodes.values()):
        return False
    return all(_first_attempt_at_most(a) for a in new.activities.values())


def only_awaits_runners(state: RunState) -> bool:
    """Some activity's attempt waits for its pod and none runs: all the run's status could say is that it waits
    for a runner (a run held by capacity or dependencies, with no Job yet, says why it waits: not this)."""
    found = [st.status for st in state.activities.values()]
    return WAITING_FOR_RUNNER in found and RUNNING not in found


def only_awaits_job_ends(state: RunState, facts: Mapping[str, JobFact], run: str) -> bool:
    """Some activity's attempt runs and the pods of every running one have ended, their Jobs' ends not yet
    written: a status saying they run would be out of date when saved, and their ends come within seconds."""
    running = [attempt_job_name(run, name, st.attempt) for name, st in state.activities.items()
               if st.status == RUNNING]
    return bool(running) and all((fact := facts.get(job)) is not None and fact.pods_ended for job in running)


def _first_attempt_at_most(st: ActivityState) -> bool:
    if st.fired or st.round_start or st.retry_at or st.end_time or st.exit_code is not None or st.result \
            or st.error_id or st.error_message or st.cascade_failed_on or st.cancellation_reason \
            or st.resource_status:
        return False
    if any(c.status not in (CHECKING, MET) or c.checks > 1 or c.errors or c.message for c in st.checks.values()):
        return False
    if st.status == WAITING_ON_DEPENDENCIES:
        return st.attempt == 0 and not st.attempts
    return st.status in (WAITING_FOR_RUNNER, RUNNING) and st.attempt == 1 and \
        [(a.n, a.error, a.end) for a in st.attempts] == [(1, None, None)]


Command = CreateJob | DeleteJob | Emit


@dataclass(frozen=True)
class Decision:
    state: RunState
    commands: tuple[Command, ...]
    wake_at: datetime | None  # reconcile again at this time even if nothing happens

    @property
    def jobs_to_create(self) -> list[CreateJob]:
        return [c for c in self.commands if isinstance(c, CreateJob)]


# ---------------------------------------------------------------------------- the machine
def reconcile(definition: PipelineDefinition, spec: RunSpec, state: RunState, jobs: Mapping[str, JobFact],
              now: datetime, capacity: Mapping[str, int] | None = None) -> Decision:
    """Decide the next step of a run. ``capacity``: activity -> how many more runs may start it now
    (``maxActiveInstances`` across runs; missing means unlimited)."""
    machine = _Machine(definition, spec, _copy(state), jobs, now, capacity or {})
    machine.run()
    return Decision(machine.state, tuple(machine.commands), machine.wake_at)


def _copy(state: RunState) -> RunState:
    return RunState.from_dict(state.to_dict())


class _Machine:
    def __init__(self, definition: PipelineDefinition, spec: RunSpec, state: RunState,
                 jobs: Mapping[str, JobFact], now: datetime, capacity: Mapping[str, int]) -> None:
        self.d = definition
        self.spec = spec
        self.state = state
        self.jobs = jobs
        self.now = now
        self.capacity = dict(capacity)
        self.commands: list[Command] = []
        self.wake_at: datetime | None = None
        self.order = definition.topological_order()
        self.initial_phase = state.phase  # the phase the run had before this step
        self.children = _children(definition)
        self.readers = _readers(definition)

    # -------------------------------------------------------------- helpers
    def wake(self, moment: datetime | None) -> None:
        if moment is not None and (self.wake_at is None or moment < self.wake_at):
            self.wake_at = moment

    def emit(self, reason: str, message: str, kind: str = "Normal") -> None:
        self.commands.append(Emit(reason, message, kind))

    def act(self, name: str) -> ActivityState:
        return self.state.activities.setdefault(name, ActivityState())

    def attempt_job(self, name: str, st: ActivityState) -> str:
        return attempt_job_name(self.spec.name, name, st.attempt)

    def runtime_fields(self, obj: PipelineObject, status: str, attempt: int, start: datetime | None,
                       end: datetime | None, **text: str | None) -> dict[str, Any]:
        """An object's runtime fields as actions and preconditions see them (node.*): every field validation
        lets an expression read is present; what does not apply is empty."""
        fields: dict[str, Any] = {
            "@id": obj.name, "name": obj.name, "type": obj.type, "@status": status, "@attemptCount": attempt,
            "@scheduledStartTime": _fmt(self.spec.scheduled_start), "@scheduledEndTime": _fmt(self.spec.scheduled_end),
            "@actualStartTime": _fmt(start) if start else "", "@actualEndTime": _fmt(end) if end else "",
        }
        for key in NODE_TEXT_KEYS:
            fields[key] = text.get(key.lstrip("@")) or ""
        return fields

    def node_fields(self, name: str, st: ActivityState) -> dict[str, Any]:
        """The activity's runtime fields (node.* of its actions and preconditions)."""
        return self.runtime_fields(
            self.d.activities[name], st.status, st.attempt, st.start_time, st.end_time, errorId=st.error_id,
            errorMessage=st.error_message, cascadeFailedOn=st.cascade_failed_on, waitingOn=st.waiting_on,
            cancellationReason=st.cancellation_reason,
            failureReason=st.error_message if st.status in UNSUCCESSFUL else None)

    def data_node_fields(self, node: str, ns: NodeState) -> dict[str, Any]:
        return self.runtime_fields(self.d.objects["dataNodes"][node], ns.status, 0, None, ns.end_time,
                                   errorMessage=ns.error_message, cascadeFailedOn=ns.cascade_failed_on,
                                   failureReason=ns.error_message)

    def precondition_fields(self, key: str, check: Check) -> dict[str, Any]:
        status = {MET: FINISHED, NOT_MET: FAILED, CHECK_CANCELED: CANCELED}.get(check.status, RUNNING)
        failed = check.message if check.status == NOT_MET else None
        return self.runtime_fields(self.precondition(key), status, check.checks, check.first, self.now,
                                   errorId="PreconditionFailed" if failed else None, errorMessage=failed,
                                   failureReason=failed)

    def precondition(self, key: str) -> PipelineObject:
        return self.d.objects["preconditions"][_check_precondition(key)]

    def node(self, name: str) -> NodeState:
        return self.state.nodes.setdefault(name, NodeState())

    # -------------------------------------------------------------- actions
    def fire(self, name: str, st: ActivityState, event: str, actions: Iterable[str]) -> None:
        """An activity's onSuccess/onFail (once per attempt) or onLateAction (once per run)."""
        key = f"{event}:{st.attempt}" if event != "late" else "late"
        actions = list(actions)
        if key in st.fired or not actions:
            return
        st.fired.append(key)
        terminate = self.launch(actions, event, name, key.replace(":", ""), name, st.attempt,
                                self.node_fields(name, st), f"activity {name}")
        for action in terminate:
            if event == "late" and st.status not in TERMINAL:
                self.cancel_activity(name, st, f"terminated by action {action}: the activity was late")

    def fire_check(self, name: str, key: str, check: Check, event: str) -> None:
        """A precondition's own onSuccess/onFail, once per check that decided it."""
        obj = self.precondition(key)
        actions = obj.refs("onSuccess" if event == "success" else "onFail")
        st = self.act(name)
        tag = f"p{event}:{key}:{check.checks}"
        if tag in st.fired or not actions:
            return
        st.fired.append(tag)
        self.launch(actions, event, name, f"p{event}-{key}-{check.checks}", name, check.checks,
                    self.precondition_fields(key, check), f"precondition {obj.name} of activity {name}")

    def fire_node(self, node: str, ns: NodeState, event: str, via: str) -> None:
        """A data node's onSuccess (it is ready) or onFail, once per run (a rerun may fire them again)."""
        actions = self.d.objects["dataNodes"][node].refs("onSuccess" if event == "success" else "onFail")
        if event in ns.fired or not actions:
            return
        ns.fired.append(event)
        self.launch(actions, event, node, f"n{event}", via, 0, self.data_node_fields(node, ns), f"data node {node}")

    def launch(self, actions: Iterable[str], event: str, owner: str, suffix: str, activity: str, attempt: int,
               node: Mapping[str, Any], what: str) -> list[str]:
        """Create the Jobs of the actions; return the Terminate actions (the caller knows what they stop)."""
        terminate: list[str] = []
        for action in actions:
            obj = self.d.objects.get("actions", {}).get(action)
            if obj is None:
                continue
            if obj.type == "Terminate":
                terminate.append(action)
                continue
            self.commands.append(CreateJob(
                name=action_job_name(self.spec.name, owner, suffix, action), kind=KIND_ACTION, object=action,
                activity=activity, attempt=attempt, event=event, node=node))
            self.emit("ActionFired", f"{event} action {action} for {what}")
        return terminate

    def cancel_activity(self, name: str, st: ActivityState, reason: str) -> None:
        if st.job_expected:
            self.commands.append(DeleteJob(self.attempt_job(name, st), reason))
            self._close_attempt(st, CANCELED, None, reason)
        self.cancel_checks(name, st, reason)
        st.status = CANCELED
        st.retry_at = None
        st.waiting_on = None
        st.error_message = st.cancellation_reason = reason
        st.end_time = st.end_time or self.now
        self.emit("ActivityCanceled", f"activity {name}: {reason}", "Warning")

    def cancel_checks(self, name: str, st: ActivityState, reason: str, node: str | None = None) -> None:
        """Stop the checks still under way (all, or those guarding one data node): they are CANCELED."""
        for key, check in st.checks.items():
            if check.status != CHECKING or (node is not None and _check_node(key) != node):
                continue
            if check.next_at is None and check.checks:
                self.commands.append(DeleteJob(check_job_name(self.spec.name, name, key, check.checks), reason))
            check.status, check.next_at, check.message = CHECK_CANCELED, None, _clip(reason)

    def _close_attempt(self, st: ActivityState, status: str, fact: JobFact | None, error: str | None) -> None:
        record = next((a for a in st.attempts if a.n == st.attempt), None)
        if record is None:
            record = Attempt(st.attempt, status)
            st.attempts.append(record)
        record.status = status
        if fact is not None:
            record.start = record.start or fact.started
            record.end = fact.finished or self.now
            record.exit_code = fact.exit_code
        else:
            record.end = record.end or self.now
        record.error = _clip(error) if error else None
        del st.attempts[:-MAX_ATTEMPTS_KEPT]

    # -------------------------------------------------------------- the steps
    def run(self) -> None:
        st = self.state
        if not st.phase:
            st.phase = PENDING
            st.start_time = st.start_time or self.now
        for name in self.d.activities:
            self.act(name)
        for name in [n for n in st.activities if n not in self.d.activities]:
            del st.activities[name]
        self.mark_finished()
        self.rerun()
        if self.spec.cancel:
            self.cancel()
            return
        self.rearm_external()
        for name in self.order:
            self.observe(name)
        for name in self.order:
            self.late(name)
        self.cascade()
        for name in self.order:
            self.advance(name)
        self.cascade()
        self.settle()
        self.state.external = self.external_mark()

    def external_mark(self) -> str | None:
        """How this run depends on other runs now (status.external; see WAITING_EXTERNAL_KEY)."""
        blocked = {n for n, st in self.state.activities.items() if self.d.external_dependencies(n) and (
            (st.status == WAITING_ON_DEPENDENCIES and not self.external_done(n))
            or (st.status == CASCADE_FAILED and "@" in (st.cascade_failed_on or "")))}
        if not blocked or self.state.phase in (SUCCEEDED, CANCELLED):
            return None
        for name in self.order:  # and what waits behind them in this run
            if self.state.activities[name].status == WAITING_ON_DEPENDENCIES and any(
                    d in blocked for d in self.d.activities[name].depends_on):
                blocked.add(name)
        unfinished = {n for n, st in self.state.activities.items() if st.status not in TERMINAL}
        waiting = self.state.phase not in FINAL_PHASES and unfinished and unfinished <= blocked
        return EXTERNAL_WAITING if waiting else EXTERNAL_BLOCKED

    def external_done(self, name: str) -> bool:
        return all(self.external(d).state == DONE_EXTERNAL for d in self.d.external_dependencies(name))

    def mark_finished(self) -> None:
        for name in self.spec.mark_finished:
            if name in self.state.handled_mark_finished or name not in self.d.activities:
                continue
            self.state.handled_mark_finished.append(name)
            st = self.act(name)
            if st.status == FINISHED:
                continue
            if st.job_expected:
                self.commands.append(DeleteJob(self.attempt_job(name, st), "marked finished"))
                self._close_attempt(st, CANCELED, None, "marked finished")
            st.status, st.retry_at, st.waiting_on = FINISHED, None, None
            st.error_id, st.error_message, st.cascade_failed_on = None, "marked finished", None
            st.end_time = self.now
            self.emit("ActivityMarkedFinished", f"activity {name} marked finished")

    def rerun(self) -> None:
        request = self.spec.rerun
        if request is None or request.id == self.state.handled_rerun:
            return
        self.state.handled_rerun = request.id
        chosen = self.rerun_targets(request)
        done = []
        for name in self.order:
            st = self.act(name)
            if name not in chosen or not (st.status in TERMINAL or self.stuck(name, st)):
                continue
            checks = {k: Check(checks=c.checks) for k, c in st.checks.items()}  # check numbers keep growing
            fresh = ActivityState(attempt=st.attempt, round_start=st.attempt, attempts=st.attempts, fired=st.fired,
                                  checks=checks)
            self.state.activities[name] = fresh
            done.append(name)
            activity = self.d.activities[name]
            for node in (*activity.inputs, *activity.outputs):
                if node in self.state.nodes and self.state.nodes[node].status in UNSUCCESSFUL:
                    del self.state.nodes[node]  # a failed or cascade-failed node waits again (and may fire again)
        if done:
            self.state.phase = PHASE_RUNNING
            self.state.completion_time = None
        self.emit("RerunStarted", f"rerun {request.id}: {', '.join(done) or 'nothing to rerun'}")

    def rerun_targets(self, request: Rerun) -> set[str]:
        chosen: set[str]
        if request.activities:
            chosen = {a for a in request.activities if a in self.d.activities}
        elif request.failed_only:
            chosen = {n for n, s in self.state.activities.items() if s.status in UNSUCCESSFUL or self.stuck(n, s)}
        else:
            chosen = set(self.d.activities)
        if request.downstream:  # asked for: everything downstream, finished or not
            extra: set[str] = set()
            for name in chosen:
                extra |= self.d.downstream_of(name)
            if request.failed_only:
                extra = {n for n in extra if self.state.activities[n].status not in SUCCESSFUL}
            chosen |= extra
        return chosen | self.cascade_rerun(chosen)

    def cascade_rerun(self, targets: set[str]) -> set[str]:
        """Consumers a rerun reaches by failureAndRerunMode cascade: only those in CASCADE_FAILED, transitively."""
        found: set[str] = set()
        frontier = list(targets)
        while frontier:
            for consumer in self.consumers(frontier.pop()):
                st = self.state.activities[consumer]
                if consumer in found or consumer in targets or st.status != CASCADE_FAILED:
                    continue
                if self.d.activities[consumer].failure_and_rerun_mode == "cascade":
                    found.add(consumer)
                    frontier.append(consumer)
        return found

    def consumers(self, name: str) -> list[str]:
        """Activities that depend on an activity, directly or through a data node it outputs."""
        out = list(self.children.get(name, ()))
        for node in self.d.activities[name].outputs:
            out.extend(self.readers.get(node, ()))
        return out

    def cancel(self) -> None:
        for name in self.order:
            st = self.act(name)
            if st.status not in TERMINAL:
                self.cancel_activity(name, st, self.spec.cancel_reason)
        if self.state.phase != CANCELLED:
            self.state.phase = CANCELLED
            self.state.completion_time = self.now
            self.emit("RunCancelled", f"run {self.spec.name} cancelled: {self.spec.cancel_reason}", "Warning")

    def observe(self, name: str) -> None:
        st = self.act(name)
        activity = self.d.activities[name]
        if st.job_expected:
            self.observe_attempt(name, activity, st)
        if st.status == WAITING_ON_DEPENDENCIES:
            for key, check in st.checks.items():
                if check.status == CHECKING and check.next_at is None and check.checks:
                    self.observe_check(name, key, check)

    def observe_attempt(self, name: str, activity: Activity, st: ActivityState) -> None:
        job = self.attempt_job(name, st)
        fact = self.jobs.get(job)
        if fact is None:
            self.attempt_failed(name, activity, st, None, "JobDeleted", f"the Job {job} of attempt {st.attempt} "
                                "was deleted")
            return
        if fact.state == "active":
            self.observe_active(name, activity, st, job, fact)
            return
        if fact.state == "succeeded":
            self._close_attempt(st, FINISHED, fact, None)
            st.status, st.waiting_on = FINISHED, None
            st.start_time = st.start_time or fact.started
            st.end_time = fact.finished or self.now
            st.exit_code = fact.exit_code if fact.exit_code is not None else 0
            st.error_id = st.error_message = None
            if fact.result is not None:
                st.result = _result(fact.result)
            self.emit("ActivityFinished", f"activity {name} finished (attempt {st.attempt})")
            self.fire(name, st, "success", activity.on_success)
            return
        if fact.reason == "DeadlineExceeded":
            self.timed_out(name, activity, st, fact)
            return
        result = fact.result
        error_id = (result.error_id if result and result.error_id else
                    "InvalidTask" if fact.exit_code == EXIT_INVALID_TASK else "ActivityFailed")
        message = (result.error_message if result and result.error_message else
                   f"exit code {fact.exit_code}" if fact.exit_code is not None else fact.reason or "the Job failed")
        self.attempt_failed(name, activity, st, fact, error_id, message)

    def observe_active(self, name: str, activity: Activity, st: ActivityState, job: str, fact: JobFact) -> None:
        record = next((a for a in st.attempts if a.n == st.attempt), None)
        if fact.running and st.status != RUNNING:
            st.status = RUNNING
            st.waiting_on = None
            st.start_time = st.start_time or fact.started or self.now
            if record is not None:
                record.status, record.start = RUNNING, fact.started or self.now
            self.emit("ActivityRunning", f"activity {name} attempt {st.attempt} running")
        deadline = _deadline(self.d, activity)
        if deadline is not None and fact.started is not None:
            limit = fact.started + deadline + DEADLINE_MARGIN
            if self.now >= limit:  # the Job ignored its activeDeadlineSeconds: the operator stops it
                self.commands.append(DeleteJob(job, "attempt timeout"))
                self.timed_out(name, activity, st, replace(fact, reason="DeadlineExceeded"))
                return
            self.wake(limit)
        self.check_progress(name, activity, st, job, fact)

    def check_progress(self, name: str, activity: Activity, st: ActivityState, job: str, fact: JobFact) -> None:
        stall = activity.report_progress_timeout
        # No container runs (it just ended, the Job's status lags behind): nothing to judge.
        if stall is None or not fact.running or fact.progress_at is None:
            return
        since = fact.progress_at
        limit = since + stall
        if self.now < limit:
            self.wake(limit)
            return
        self.commands.append(DeleteJob(job, "no progress reported"))
        self.attempt_failed(name, activity, st, replace(fact, finished=self.now, reason="Stalled"),
                            "ProgressTimeout", f"attempt {st.attempt} reported no progress for "
                            f"{stall} (reportProgressTimeout); its last log line was at "
                            f"{_fmt(since)}, so it was stopped")

    def timed_out(self, name: str, activity: Activity, st: ActivityState, fact: JobFact) -> None:
        """The Job's deadline passed: the attempt's own attemptTimeout (retried), or the terminateAfter of the
        profile it runs on (the resource is TIMEDOUT; not retried)."""
        hit = _first_limit(self.d, activity)
        if hit is None or hit[1] == "attemptTimeout":
            limit = f" ({format_duration(hit[0])})" if hit else ""
            self.attempt_failed(name, activity, st, fact, ATTEMPT_TIMEOUT,
                                f"attempt {st.attempt} ran longer than its attemptTimeout{limit} and was stopped")
            return
        st.resource_status = TIMEDOUT
        self.attempt_failed(name, activity, st, fact, RESOURCE_TIMEOUT,
                            f"attempt {st.attempt} was stopped by the terminateAfter ({format_duration(hit[0])}) of "
                            f"{hit[1]}: the resource TIMEDOUT, so the activity is not retried", retryable=False)

    def attempt_failed(self, name: str, activity: Activity, st: ActivityState, fact: JobFact | None,
                       error_id: str, message: str, retryable: bool = True) -> None:
        self._close_attempt(st, FAILED, fact, message)
        st.error_id, st.error_message = error_id, _clip(message)
        if fact is not None:
            st.exit_code = fact.exit_code
            st.start_time = st.start_time or fact.started
            if fact.result is not None:
                st.result = _result(fact.result)
        used = st.attempt - st.round_start
        retryable = retryable and not (fact is not None and fact.exit_code == EXIT_INVALID_TASK)
        if retryable and used <= activity.maximum_retries:
            st.status = WAITING_FOR_RUNNER
            st.retry_at = (fact.finished if fact and fact.finished else self.now) + activity.retry_delay
            st.waiting_on = f"retry at {_fmt(st.retry_at)}"
            self.emit("AttemptFailed", f"activity {name} attempt {st.attempt} failed ({message}); retry "
                      f"{used}/{activity.maximum_retries} at {_fmt(st.retry_at)}", "Warning")
            return
        st.status = FAILED
        st.retry_at, st.waiting_on = None, None
        st.end_time = (fact.finished if fact and fact.finished else None) or self.now
        self.emit("ActivityFailed", f"activity {name} failed after {used} attempt(s): {message}", "Warning")
        self.fire(name, st, "fail", activity.on_fail)

    # -------------------------------------------------------------- preconditions and data nodes
    def observe_check(self, name: str, key: str, check: Check) -> None:
        fact = self.jobs.get(check_job_name(self.spec.name, name, key, check.checks))
        if fact is not None and fact.state == "active":
            return
        if fact is not None and fact.state == "succeeded":
            check.status, check.message = MET, None
            self.emit("PreconditionMet", f"activity {name}: precondition {key} holds")
            self.fire_check(name, key, check, "success")
            return
        precondition = self.precondition(key)
        check.next_at = self.now + (precondition.get("retryDelay") or DEFAULT_PRECONDITION_RETRY_DELAY)
        if fact is not None and (fact.exit_code == EXIT_PRECONDITION_NOT_MET or
                                 (fact.result is not None and fact.result.status == "FALSE")):
            check.message = "not met yet"
            return
        check.errors += 1
        check.message = _clip("the check's Job was deleted" if fact is None else
                              (fact.result.error_message if fact.result else None)
                              or f"check failed (exit code {fact.exit_code})")
        retries = precondition.get("maximumRetries", DEFAULT_PRECONDITION_MAXIMUM_RETRIES)
        if check.errors > retries:
            self.give_up(name, key, check, f"its check failed {check.errors} time(s), more than its maximumRetries "
                         f"({retries}): {check.message}")

    def give_up(self, name: str, key: str, check: Check, why: str) -> None:
        """The precondition failed for good: its onFail, then its data node's onFail."""
        check.status, check.next_at, check.message = NOT_MET, None, _clip(why)
        precondition = _check_precondition(key)
        self.emit("PreconditionFailed", f"activity {name}: precondition {precondition} failed: {why}", "Warning")
        self.fire_check(name, key, check, "fail")
        node = _check_node(key)
        if node is not None:
            self.node_failed(node, f"precondition {precondition} failed: {why}", name)

    def check_timeout(self, name: str, key: str, check: Check) -> None:
        timeout: timedelta | None = self.precondition(key).get("preconditionTimeout")
        if check.status != CHECKING or timeout is None or check.first is None:
            return
        if self.now < check.first + timeout:
            self.wake(check.first + timeout)
            return
        if check.next_at is None and check.checks:
            self.commands.append(DeleteJob(check_job_name(self.spec.name, name, key, check.checks),
                                           "precondition timeout"))
        last = f"; last check: {check.message}" if check.message else ""
        self.give_up(name, key, check, f"it did not hold within {format_duration(timeout)} (preconditionTimeout)"
                     + last)

    def node_failed(self, node: str, why: str, via: str) -> None:
        ns = self.node(node)
        if ns.status in TERMINAL:
            return
        ns.status, ns.error_message, ns.end_time = FAILED, _clip(why), self.now
        self.emit("DataNodeFailed", f"data node {node}: {why}", "Warning")
        self.fire_node(node, ns, "fail", via)

    def node_ready(self, node: str, via: str) -> None:
        obj = self.d.objects.get("dataNodes", {}).get(node)
        if obj is None or not (obj.refs("precondition") or obj.refs("onSuccess") or obj.refs("onFail")):
            return  # nothing to tell: no state kept for it
        ns = self.node(node)
        if ns.status in TERMINAL:
            return
        ns.status, ns.end_time = FINISHED, self.now
        if obj.refs("precondition"):
            self.emit("DataNodeReady", f"data node {node} is ready: its preconditions hold")
        self.fire_node(node, ns, "success", via)

    def preconditions_hold(self, name: str, activity: Activity, st: ActivityState) -> bool:
        if self.input_failed(name, activity, st):
            return False
        keys = list(_check_keys(self.d, activity))
        for key, _, _ in keys:
            self.check_timeout(name, key, st.checks.setdefault(key, Check()))
        failed = [key for key, _, _ in keys if st.checks[key].status == NOT_MET]
        if failed:
            check = st.checks[failed[0]]
            self.dependency_failed(name, activity, st, _check_precondition(failed[0]),
                                   f"precondition {_check_precondition(failed[0])} failed: {check.message}")
            return False
        waiting = []
        for key, precondition, guarded in keys:
            if st.checks[key].status != MET:
                waiting.append(precondition)
                self.schedule_check(name, st, key, precondition, guarded)
        for node in activity.inputs:
            if all(st.checks[k].status == MET for k, _, g in keys if g == node):
                self.node_ready(node, name)
        if waiting:
            st.waiting_on = "precondition " + ", ".join(waiting)
            return False
        return True

    def input_failed(self, name: str, activity: Activity, st: ActivityState) -> bool:
        """An input data node failed or was cascade-failed: this activity cannot start."""
        for node in activity.inputs:
            ns = self.state.nodes.get(node)
            if ns is not None and ns.status in (FAILED, CASCADE_FAILED):
                why = f"data node {node} {ns.status}" + (f": {ns.error_message}" if ns.error_message else "")
                self.cancel_checks(name, st, why, node)
                self.dependency_failed(name, activity, st, ns.cascade_failed_on or node, why)
                return True
        return False

    def dependency_failed(self, name: str, activity: Activity, st: ActivityState, root: str, why: str) -> None:
        """A dependency failed: with failureAndRerunMode cascade the activity is CASCADE_FAILED, else it waits."""
        if activity.failure_and_rerun_mode == "cascade":
            self.cascade_fail(name, st, root, why)
        else:
            st.waiting_on = _clip(why)

    def schedule_check(self, name: str, st: ActivityState, key: str, precondition: str, guarded: str | None) -> None:
        check = st.checks[key]
        if check.checks and check.next_at is None:
            return  # a check is running
        if check.next_at is not None and self.now < check.next_at:
            self.wake(check.next_at)
            return
        check.checks += 1
        check.first = check.first or self.now
        check.next_at = None
        self.commands.append(CreateJob(
            name=check_job_name(self.spec.name, name, key, check.checks), kind=KIND_PRECONDITION,
            object=precondition, activity=name, attempt=check.checks, guarded_node=guarded,
            deadline=self.precondition(key).get("attemptTimeout"), node=self.node_fields(name, st)))

    # -------------------------------------------------------------- lateness and cascades
    def late(self, name: str) -> None:
        """lateAfterTimeout counts from when the run is due; an activity not completed by then is late.
        It never applies to on-demand pipelines."""
        activity = self.d.activities[name]
        if self.d.schedule_type == "ondemand" or activity.late_after_timeout is None:
            return
        st = self.act(name)
        if "late" in st.fired or st.status in TERMINAL:
            return
        due = self.spec.scheduled_end if self.d.schedule_type == "timeseries" else self.spec.scheduled_start
        deadline = due + activity.late_after_timeout
        if self.now < deadline:
            self.wake(deadline)
            return
        self.emit("ActivityLate", f"activity {name} has not completed {format_duration(activity.late_after_timeout)} "
                  f"after the run was due ({_fmt(due)})", "Warning")
        self.fire(name, st, "late", activity.on_late_action)
        if "late" not in st.fired:
            st.fired.append("late")

    def external(self, dep: str) -> ExternalState:
        return self.spec.external.get(dep) or ExternalState(WAITING_EXTERNAL, f"{dep} (not observed yet)")

    def external_failed(self, name: str) -> ExternalState | None:
        """The first dependency on another schedule's activity that failed, if any."""
        for dep in self.d.external_dependencies(name):
            found = self.external(dep)
            if found.state == FAILED_EXTERNAL:
                return found
        return None

    def cascade_external(self) -> None:
        """A failed (or cancelled) instance of another schedule's activity cascades to consumers that cascade."""
        for name in self.order:
            st = self.state.activities[name]
            failed = self.external_failed(name)
            if failed is None or st.status in TERMINAL or st.job_expected:
                continue
            if self.d.activities[name].failure_and_rerun_mode == "cascade":
                self.cascade_fail(name, st, failed.root or name, f"upstream activity {failed.waiting_on}")

    def rearm_external(self) -> None:
        """The guide: a rerun of a target object propagates to its consumers in CASCADE_FAILED. Across runs the
        operator writes no spec, so the consumer sees it: an activity CASCADE_FAILED on another run's instance
        that is no longer failed waits again, with what cascaded from it in this run."""
        roots = {st.cascade_failed_on for st in self.state.activities.values()
                 if st.status == CASCADE_FAILED and st.cascade_failed_on and "@" in st.cascade_failed_on}
        failing = {self.external(d).root for n in self.d.activities for d in self.d.external_dependencies(n)
                   if self.external(d).state == FAILED_EXTERNAL}
        cleared = roots - failing
        if not cleared:
            return
        rearmed = []
        for name in self.order:
            st = self.state.activities[name]
            if st.status == CASCADE_FAILED and st.cascade_failed_on in cleared:
                checks = {k: Check(checks=c.checks) for k, c in st.checks.items()}
                self.state.activities[name] = ActivityState(attempt=st.attempt, round_start=st.attempt,
                                                            attempts=st.attempts, fired=st.fired, checks=checks)
                rearmed.append(name)
        for node, ns in list(self.state.nodes.items()):
            if ns.status == CASCADE_FAILED and ns.cascade_failed_on in cleared:
                del self.state.nodes[node]
        self.emit("CascadeRerun", f"{', '.join(rearmed)} wait again: {', '.join(sorted(cleared))} is being rerun")

    def cascade(self) -> None:
        self.cascade_external()
        changed = True
        while changed:
            changed = False
            for name in self.order:
                st = self.state.activities[name]
                if st.status not in (FAILED, TIMEDOUT, CASCADE_FAILED):
                    continue
                root = st.cascade_failed_on or name
                for child in self.children.get(name, ()):
                    changed |= self.cascade_to(child, root)
                for node in self.d.activities[name].outputs:
                    changed |= self.cascade_node(node, root, name)

    def cascade_to(self, name: str, root: str) -> bool:
        st = self.state.activities[name]
        if self.d.activities[name].failure_and_rerun_mode != "cascade" or st.status in TERMINAL or st.job_expected:
            return False
        self.cascade_fail(name, st, root, f"upstream activity {root} failed")
        return True

    def cascade_node(self, node: str, root: str, via: str) -> bool:
        """An output data node with failureAndRerunMode cascade fails with its producer; so do its readers
        that cascade (the others wait, their checks of the node CANCELED)."""
        obj = self.d.objects.get("dataNodes", {}).get(node)
        if obj is None or obj.get("failureAndRerunMode", "none") != "cascade":
            return False
        ns = self.node(node)
        if ns.status in TERMINAL:
            return False
        ns.status, ns.cascade_failed_on, ns.end_time = CASCADE_FAILED, root, self.now
        ns.error_message = f"upstream activity {root} failed"
        self.emit("DataNodeCascadeFailed", f"data node {node}: upstream activity {root} failed", "Warning")
        self.fire_node(node, ns, "fail", via)
        for reader in self.readers.get(node, ()):
            rst = self.state.activities[reader]
            if rst.status not in TERMINAL and not rst.job_expected:
                self.cancel_checks(reader, rst, f"data node {node} CASCADE_FAILED", node)
                self.cascade_to(reader, root)
        return True

    def cascade_fail(self, name: str, st: ActivityState, root: str, why: str) -> None:
        """CASCADE_FAILED: its checks are CANCELED and its onFail fires (node.@cascadeFailedOn names the root)."""
        if st.status in TERMINAL or st.job_expected:
            return
        self.cancel_checks(name, st, "cascade failure")
        st.status, st.cascade_failed_on = CASCADE_FAILED, root
        st.retry_at, st.waiting_on = None, None
        st.error_id, st.error_message = CASCADE_FAILED_ID, _clip(why)
        st.end_time = self.now
        self.emit("ActivityCascadeFailed", f"activity {name}: {why}", "Warning")
        self.fire(name, st, "fail", self.d.activities[name].on_fail)

    # -------------------------------------------------------------- starting
    def advance(self, name: str) -> None:
        st = self.state.activities[name]
        activity = self.d.activities[name]
        if self.spec.paused:
            self.pause(st)
            return
        if st.status == PAUSED:
            st.status = WAITING_FOR_RUNNER if st.retry_at is not None else WAITING_ON_DEPENDENCIES
            st.waiting_on = f"retry at {_fmt(st.retry_at)}" if st.retry_at is not None else None
        if st.status == WAITING_FOR_RUNNER and st.retry_at is not None:
            if self.now < st.retry_at:
                self.wake(st.retry_at)
                return
            self.start_attempt(name, activity, st)
            return
        if st.status != WAITING_ON_DEPENDENCIES:
            return
        if self.spec.queued:
            st.waiting_on = self.spec.queued
            return
        pending = [d for d in activity.depends_on
                   if d in self.state.activities and self.state.activities[d].status not in SUCCESSFUL]
        if pending:
            st.waiting_on = ", ".join(pending)
            return
        if self.waits_external(name, activity, st):
            return
        if not self.preconditions_hold(name, activity, st):
            return
        if name in self.capacity and st.round_start == 0:  # reruns do not count against maxActiveInstances
            if self.capacity[name] <= 0:
                st.waiting_on = "maxActiveInstances"
                return
            self.capacity[name] -= 1
        self.start_attempt(name, activity, st)

    def waits_external(self, name: str, activity: Activity, st: ActivityState) -> bool:
        """Instances of other schedules' activities not done yet: @waitingOn names them (and their runs)."""
        failed = self.external_failed(name)
        if failed is not None:
            self.dependency_failed(name, activity, st, failed.root or name, f"upstream activity {failed.waiting_on}")
            return True
        waiting = [self.external(d).waiting_on for d in self.d.external_dependencies(name)
                   if self.external(d).state != DONE_EXTERNAL]
        if waiting:
            st.waiting_on = _clip("; ".join(waiting))
            return True
        return False

    def pause(self, st: ActivityState) -> None:
        """Nothing new starts: waiting activities and pending retries are PAUSED; running attempts go on."""
        if st.status == WAITING_ON_DEPENDENCIES or (st.status == WAITING_FOR_RUNNER and st.retry_at is not None):
            st.status, st.waiting_on = PAUSED, "the pipeline is paused"

    def start_attempt(self, name: str, activity: Activity, st: ActivityState) -> None:
        st.attempt += 1
        st.retry_at = None
        st.status = WAITING_FOR_RUNNER
        st.waiting_on = "runner"
        st.attempts.append(Attempt(st.attempt, WAITING_FOR_RUNNER, start=self.now))
        del st.attempts[:-MAX_ATTEMPTS_KEPT]
        if self.state.phase == PENDING:
            self.state.phase = PHASE_RUNNING
        self.commands.append(CreateJob(name=self.attempt_job(name, st), kind=KIND_ACTIVITY, object=name,
                                       activity=name, attempt=st.attempt, deadline=_deadline(self.d, activity),
                                       rerun=st.round_start > 0))
        self.emit("AttemptCreated", f"activity {name} attempt {st.attempt}")

    # -------------------------------------------------------------- the run's phase
    def settle(self) -> None:
        st = self.state
        statuses = {n: a.status for n, a in st.activities.items()}
        previous = self.initial_phase
        if all(s in TERMINAL for s in statuses.values()):
            values = set(statuses.values())
            st.phase = (SUCCEEDED if values <= SUCCESSFUL
                        else CANCELLED if CANCELED in values and not values & {FAILED, TIMEDOUT, CASCADE_FAILED}
                        else PHASE_FAILED)
        elif not self._can_progress():
            st.phase = PHASE_FAILED
        elif self.spec.paused:
            st.phase = PHASE_PAUSED
        elif st.phase in FINAL_PHASES or st.phase == PHASE_PAUSED:
            st.phase = PHASE_RUNNING if any(a.attempt for a in st.activities.values()) else PENDING
        if st.phase in FINAL_PHASES:
            st.completion_time = st.completion_time or self.now
            if previous != st.phase:
                self.emit("Run" + st.phase, f"run {self.spec.name} {st.phase.lower()} ({st.progress()})",
                          "Normal" if st.phase == SUCCEEDED else "Warning")
            return
        st.completion_time = None
        if previous != st.phase and PHASE_PAUSED in (previous, st.phase):
            self.emit("RunPaused" if st.phase == PHASE_PAUSED else "RunResumed",
                      f"run {self.spec.name} {'paused' if st.phase == PHASE_PAUSED else 'resumed'}")
        elif previous in ("", PENDING) and st.phase == PHASE_RUNNING:
            self.emit("RunStarted", f"run {self.spec.name} started")

    def stuck(self, name: str, st: ActivityState) -> bool:
        """Waiting on a dependency that failed for good (a precondition, an input data node), without cascade."""
        if st.status != WAITING_ON_DEPENDENCIES:
            return False
        if any(c.status in (NOT_MET, CHECK_CANCELED) for c in st.checks.values()):
            return True
        if self.external_failed(name) is not None:
            return True
        return any(self.state.nodes[n].status in (FAILED, CASCADE_FAILED)
                   for n in self.d.activities[name].inputs if n in self.state.nodes)

    def _can_progress(self) -> bool:
        """False when every unfinished activity waits behind a failure (failureAndRerunMode none)."""
        blocked: set[str] = set()
        for name in self.order:
            a = self.state.activities[name]
            if a.status in UNSUCCESSFUL or self.stuck(name, a) or (
                    a.status == WAITING_ON_DEPENDENCIES and any(d in blocked for d in self.d.activities[name].depends_on)):
                blocked.add(name)
        return any(a.status not in TERMINAL and n not in blocked for n, a in self.state.activities.items())


# ---------------------------------------------------------------------------- helpers
def _check_keys(definition: PipelineDefinition, activity: Activity) -> Iterable[tuple[str, str, str | None]]:
    """(key, precondition, guarded data node) for every precondition an activity waits on."""
    for name in activity.preconditions:
        yield name, name, None
    nodes = definition.objects.get("dataNodes", {})
    for node_name in activity.inputs:
        node = nodes.get(node_name)
        if node is None:
            continue
        for name in node.refs("precondition"):
            yield f"{node_name}/{name}", name, node_name


def _check_precondition(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _check_node(key: str) -> str | None:
    """The data node a check guards (its key is node/precondition), or None for the activity's own."""
    return key.rsplit("/", 1)[0] if "/" in key else None


def _children(definition: PipelineDefinition) -> dict[str, list[str]]:
    """activity -> the activities that name it in dependsOn."""
    out: dict[str, list[str]] = {}
    for activity in definition.activities.values():
        for dep in activity.depends_on:
            out.setdefault(dep, []).append(activity.name)
    return out


def _readers(definition: PipelineDefinition) -> dict[str, list[str]]:
    """data node -> the activities that read it (input)."""
    out: dict[str, list[str]] = {}
    for activity in definition.activities.values():
        for node in activity.inputs:
            out.setdefault(node, []).append(activity.name)
    return out


def _limits(definition: PipelineDefinition, activity: Activity) -> list[tuple[timedelta, str]]:
    """The limits on an attempt's time, (limit, what): the profile's terminateAfter first (it wins a tie)."""
    limits: list[tuple[timedelta, str]] = []
    if activity.runs_on:
        profile = definition.find(activity.runs_on, ("computeProfiles", "clusterProfiles"))
        if profile is not None and profile.get("terminateAfter") is not None:
            kind = "compute profile" if profile.section == "computeProfiles" else "cluster profile"
            limits.append((profile.get("terminateAfter"), f"{kind} {profile.name}"))
    if activity.attempt_timeout is not None:
        limits.append((activity.attempt_timeout, "attemptTimeout"))
    return limits


def _first_limit(definition: PipelineDefinition, activity: Activity) -> tuple[timedelta, str] | None:
    limits = _limits(definition, activity)
    return min(limits, key=lambda item: item[0]) if limits else None


def _deadline(definition: PipelineDefinition, activity: Activity) -> timedelta | None:
    hit = _first_limit(definition, activity)
    return hit[0] if hit else None


def _result(result: TaskResult) -> dict[str, Any]:
    data: dict[str, Any] = {}
    rows = result.rows_written if result.rows_written is not None else result.rows_read
    if rows is not None:
        data["rows"] = rows
    if result.bytes is not None:
        data["bytes"] = result.bytes
    if result.output_uris:
        data["uris"] = list(result.output_uris[:5])
    return data


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_MESSAGE else text[: MAX_ERROR_MESSAGE - 3] + "..."


def _fmt(moment: datetime) -> str:
    return utc_text(moment)


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _implied_attempt(data: Mapping[str, Any]) -> list[Attempt]:
    """The one attempt of an activity whose status carries no history list."""
    n = int(data.get("attempt", 0))
    if n != 1:
        return []
    status = str(data.get("status"))
    if status in (WAITING_FOR_RUNNER, WAITING_ON_DEPENDENCIES):
        status = WAITING_FOR_RUNNER
    return [Attempt(n, status, start=_parse(data.get("startTime")), end=_parse(data.get("endTime")),
                    exit_code=data.get("exitCode"))]


def initial_state(definition: PipelineDefinition) -> RunState:
    return RunState(activities={name: ActivityState() for name in definition.activities})


def summary_counts(state: RunState) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in state.activities.values():
        counts[a.status] = counts.get(a.status, 0) + 1
    return counts


def active_job_names(state: RunState, run: str) -> Sequence[str]:
    """Jobs the state says may still be running (for cleanup and for tests)."""
    names = []
    for name, st in state.activities.items():
        if st.job_expected:
            names.append(attempt_job_name(run, name, st.attempt))
    return names
