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

from datapipeline.core.model import DEFAULT_PRECONDITION_RETRY_DELAY, Activity, PipelineDefinition
from datapipeline.core.task import EXIT_INVALID_TASK, EXIT_PRECONDITION_NOT_MET, TaskResult

# Activity states (AWS names)
WAITING_ON_DEPENDENCIES = "WAITING_ON_DEPENDENCIES"
WAITING_FOR_RUNNER = "WAITING_FOR_RUNNER"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
CASCADE_FAILED = "CASCADE_FAILED"
CANCELED = "CANCELED"
TIMEDOUT = "TIMEDOUT"
SKIPPED = "SKIPPED"
ACTIVITY_STATES = (WAITING_ON_DEPENDENCIES, WAITING_FOR_RUNNER, RUNNING, FINISHED, FAILED, CASCADE_FAILED,
                   CANCELED, TIMEDOUT, SKIPPED)
TERMINAL = frozenset({FINISHED, FAILED, CASCADE_FAILED, CANCELED, TIMEDOUT, SKIPPED})
SUCCESSFUL = frozenset({FINISHED, SKIPPED})
UNSUCCESSFUL = TERMINAL - SUCCESSFUL

# Run phases
PENDING, PHASE_RUNNING, SUCCEEDED, PHASE_FAILED, CANCELLED = "Pending", "Running", "Succeeded", "Failed", "Cancelled"
FINAL_PHASES = frozenset({SUCCEEDED, PHASE_FAILED, CANCELLED})

# Job kinds
KIND_ACTIVITY, KIND_PRECONDITION, KIND_ACTION = "activity", "precondition", "action"

# Precondition check states
CHECKING, MET, NOT_MET = "CHECKING", "MET", "FAILED"

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
    first: datetime | None = None  # when the first check was created
    next_at: datetime | None = None  # None while a check Job runs
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "checks": self.checks}
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
                     first=_parse(data.get("first")), next_at=_parse(data.get("nextAt")), message=data.get("message"))


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
    result: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)  # action events already fired: late, fail:3, success:2

    @property
    def job_expected(self) -> bool:
        """A Job for the newest attempt exists (or existed)."""
        return self.status in (WAITING_FOR_RUNNER, RUNNING) and self.retry_at is None and self.attempt > 0

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
                                 "result": self.result}
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
            result=dict(data["result"]) if data.get("result") else None,
            attempts=[Attempt.from_dict(a) for a in data.get("attempts") or ()] or _implied_attempt(data),
            checks={str(k): Check.from_dict(v) for k, v in (data.get("checks") or {}).items()},
            fired=[str(f) for f in data.get("fired") or ()],
        )


@dataclass
class RunState:
    phase: str = ""
    activities: dict[str, ActivityState] = field(default_factory=dict)
    start_time: datetime | None = None
    completion_time: datetime | None = None
    handled_rerun: str | None = None
    handled_mark_finished: list[str] = field(default_factory=list)

    def progress(self) -> str:
        done = sum(1 for a in self.activities.values() if a.status in SUCCESSFUL)
        return f"{done}/{len(self.activities)}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"phase": self.phase, "progress": self.progress(),
                                "activities": {n: a.to_dict() for n, a in self.activities.items()}}
        if self.start_time:
            data["startTime"] = _fmt(self.start_time)
        data["completionTime"] = _fmt(self.completion_time) if self.completion_time else None
        if self.handled_rerun is not None:
            data["handledRerun"] = self.handled_rerun
        if self.handled_mark_finished:
            data["handledMarkFinished"] = list(self.handled_mark_finished)
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any] | None) -> RunState:
        data = data or {}
        return RunState(
            phase=str(data.get("phase") or ""),
            activities={str(n): ActivityState.from_dict(a) for n, a in (data.get("activities") or {}).items()},
            start_time=_parse(data.get("startTime")), completion_time=_parse(data.get("completionTime")),
            handled_rerun=data.get("handledRerun"),
            handled_mark_finished=[str(n) for n in data.get("handledMarkFinished") or ()],
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


@dataclass(frozen=True)
class DeleteJob:
    name: str
    reason: str


@dataclass(frozen=True)
class Emit:
    reason: str
    message: str
    type: str = "Normal"  # Normal | Warning


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

    def node_fields(self, name: str, st: ActivityState) -> dict[str, Any]:
        """The runtime fields an action or precondition sees as node.*."""
        fields: dict[str, Any] = {
            "@id": name, "name": name, "@status": st.status, "@attemptCount": st.attempt,
            "@scheduledStartTime": _fmt(self.spec.scheduled_start),
            "@scheduledEndTime": _fmt(self.spec.scheduled_end),
        }
        if st.start_time:
            fields["@actualStartTime"] = _fmt(st.start_time)
        if st.end_time:
            fields["@actualEndTime"] = _fmt(st.end_time)
        for key, value in (("errorId", st.error_id), ("errorMessage", st.error_message),
                           ("@cascadeFailedOn", st.cascade_failed_on), ("@waitingOn", st.waiting_on)):
            if value:
                fields[key] = value
        return fields

    def fire(self, name: str, st: ActivityState, event: str, actions: Iterable[str]) -> None:
        key = f"{event}:{st.attempt}" if event != "late" else "late"
        actions = list(actions)
        if key in st.fired or not actions:
            return
        st.fired.append(key)
        for action in actions:
            obj = self.d.objects.get("actions", {}).get(action)
            if obj is None:
                continue
            if obj.type == "Terminate":
                if event == "late" and st.status not in TERMINAL:
                    self.cancel_activity(name, st, f"terminated by action {action} (late)")
                continue
            self.commands.append(CreateJob(
                name=action_job_name(self.spec.name, name, key.replace(":", ""), action), kind=KIND_ACTION,
                object=action, activity=name, attempt=st.attempt, event=event, node=self.node_fields(name, st)))
            self.emit("ActionFired", f"{event} action {action} for activity {name}")

    def cancel_activity(self, name: str, st: ActivityState, reason: str) -> None:
        if st.job_expected:
            self.commands.append(DeleteJob(self.attempt_job(name, st), reason))
            self._close_attempt(st, CANCELED, None, reason)
        for key, check in st.checks.items():
            if check.status == CHECKING and check.next_at is None and check.checks:
                self.commands.append(DeleteJob(check_job_name(self.spec.name, name, key, check.checks), reason))
        st.status = CANCELED
        st.retry_at = None
        st.waiting_on = None
        st.error_message = reason
        st.end_time = st.end_time or self.now
        self.emit("ActivityCanceled", f"activity {name}: {reason}", "Warning")

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
        for name in self.order:
            self.observe(name)
        for name in self.order:
            self.late(name)
        self.cascade()
        for name in self.order:
            self.advance(name)
        self.cascade()
        self.settle()

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
        chosen: set[str]
        if request.activities:
            chosen = {a for a in request.activities if a in self.d.activities}
        elif request.failed_only:
            chosen = {n for n, s in self.state.activities.items() if s.status in UNSUCCESSFUL}
        else:
            chosen = set(self.d.activities)
        extra: set[str] = set()
        for name in chosen:
            if request.downstream or self.d.activities[name].failure_and_rerun_mode == "cascade":
                extra |= self.d.downstream_of(name)
        if request.failed_only:
            extra = {n for n in extra if self.state.activities[n].status not in SUCCESSFUL}
        chosen |= extra
        done = []
        for name in self.order:
            st = self.act(name)
            if name not in chosen or st.status not in TERMINAL:
                continue
            checks = {k: Check(checks=c.checks) for k, c in st.checks.items()}  # check numbers keep growing
            fresh = ActivityState(attempt=st.attempt, round_start=st.attempt, attempts=st.attempts, fired=st.fired,
                                  checks=checks)
            self.state.activities[name] = fresh
            done.append(name)
        if done:
            self.state.phase = PHASE_RUNNING
            self.state.completion_time = None
        self.emit("RerunStarted", f"rerun {request.id}: {', '.join(done) or 'nothing to rerun'}")

    def cancel(self) -> None:
        for name in self.order:
            st = self.act(name)
            if st.status not in TERMINAL:
                self.cancel_activity(name, st, "run cancelled")
        if self.state.phase != CANCELLED:
            self.state.phase = CANCELLED
            self.state.completion_time = self.now
            self.emit("RunCancelled", f"run {self.spec.name} cancelled", "Warning")

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
            record = next((a for a in st.attempts if a.n == st.attempt), None)
            if fact.running and st.status != RUNNING:
                st.status = RUNNING
                st.waiting_on = None
                st.start_time = st.start_time or fact.started or self.now
                if record is not None:
                    record.status, record.start = RUNNING, fact.started or self.now
                self.emit("ActivityRunning", f"activity {name} attempt {st.attempt} running")
            timeout = activity.attempt_timeout
            if timeout is not None and fact.started is not None:
                limit = fact.started + timeout + DEADLINE_MARGIN
                if self.now >= limit:
                    self.commands.append(DeleteJob(job, "attempt timeout"))
                    self.attempt_failed(name, activity, st, replace(fact, reason="DeadlineExceeded"),
                                        "AttemptTimeout", f"attempt {st.attempt} ran longer than {timeout}")
                    return
                self.wake(limit)
            stall = activity.report_progress_timeout
            if stall is not None and fact.running:
                # No container runs (it just ended, the Job's status lags behind): nothing to judge.
                since = fact.progress_at
                if since is not None:
                    limit = since + stall
                    if self.now >= limit:
                        self.commands.append(DeleteJob(job, "no progress reported"))
                        self.attempt_failed(name, activity, st, replace(fact, finished=self.now, reason="Stalled"),
                                            "ProgressTimeout", f"attempt {st.attempt} reported no progress for "
                                            f"{stall} (reportProgressTimeout); its last log line was at "
                                            f"{_fmt(since)}, so it was stopped")
                    else:
                        self.wake(limit)
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
            self.attempt_failed(name, activity, st, fact, "AttemptTimeout",
                                f"attempt {st.attempt} ran longer than {activity.attempt_timeout}")
            return
        result = fact.result
        error_id = (result.error_id if result and result.error_id else
                    "InvalidTask" if fact.exit_code == EXIT_INVALID_TASK else "ActivityFailed")
        message = (result.error_message if result and result.error_message else
                   f"exit code {fact.exit_code}" if fact.exit_code is not None else fact.reason or "the Job failed")
        self.attempt_failed(name, activity, st, fact, error_id, message)

    def attempt_failed(self, name: str, activity: Activity, st: ActivityState, fact: JobFact | None,
                       error_id: str, message: str) -> None:
        timed_out = error_id == "AttemptTimeout"
        self._close_attempt(st, TIMEDOUT if timed_out else FAILED, fact, message)
        st.error_id, st.error_message = error_id, _clip(message)
        if fact is not None:
            st.exit_code = fact.exit_code
            st.start_time = st.start_time or fact.started
            if fact.result is not None:
                st.result = _result(fact.result)
        used = st.attempt - st.round_start
        retryable = not (fact is not None and fact.exit_code == EXIT_INVALID_TASK)
        if retryable and used <= activity.maximum_retries:
            st.status = WAITING_FOR_RUNNER
            st.retry_at = (fact.finished if fact and fact.finished else self.now) + activity.retry_delay
            st.waiting_on = f"retry at {_fmt(st.retry_at)}"
            self.emit("AttemptFailed", f"activity {name} attempt {st.attempt} failed ({message}); retry "
                      f"{used}/{activity.maximum_retries} at {_fmt(st.retry_at)}", "Warning")
            return
        st.status = TIMEDOUT if timed_out else FAILED
        st.retry_at, st.waiting_on = None, None
        st.end_time = (fact.finished if fact and fact.finished else None) or self.now
        self.emit("ActivityFailed", f"activity {name} failed after {used} attempt(s): {message}", "Warning")
        self.fire(name, st, "fail", activity.on_fail)

    def observe_check(self, name: str, key: str, check: Check) -> None:
        job = check_job_name(self.spec.name, name, key, check.checks)
        fact = self.jobs.get(job)
        if fact is not None and fact.state == "active":
            return
        if fact is not None and fact.state == "succeeded":
            check.status, check.message = MET, None
            self.emit("PreconditionMet", f"activity {name}: precondition {key} holds")
            return
        precondition = self.d.objects["preconditions"][_check_precondition(key)]
        delay = precondition.get("retryDelay") or DEFAULT_PRECONDITION_RETRY_DELAY
        if fact is None:
            check.message = "the check's Job was deleted"
        elif fact.exit_code == EXIT_PRECONDITION_NOT_MET or (fact.result and fact.result.status == "FALSE"):
            check.message = "not met yet"
        else:
            check.message = _clip((fact.result.error_message if fact.result else None)
                                  or f"check failed (exit code {fact.exit_code})")
        check.next_at = self.now + delay

    def late(self, name: str) -> None:
        st = self.act(name)
        activity = self.d.activities[name]
        if activity.late_after_timeout is None or "late" in st.fired or st.status in TERMINAL:
            return
        if st.start_time is not None or st.status == RUNNING:
            return
        deadline = self.spec.scheduled_start + activity.late_after_timeout
        if self.now < deadline:
            self.wake(deadline)
            return
        self.emit("ActivityLate", f"activity {name} has not started {activity.late_after_timeout} after the "
                  "scheduled start", "Warning")
        self.fire(name, st, "late", activity.on_late_action)

    def cascade(self) -> None:
        for name in self.order:
            st = self.state.activities[name]
            if st.status not in (FAILED, TIMEDOUT, CASCADE_FAILED):
                continue
            if st.status != CASCADE_FAILED and self.d.activities[name].failure_and_rerun_mode != "cascade":
                continue
            root = st.cascade_failed_on or name
            for child in self.d.activities:
                if name not in self.d.activities[child].depends_on:
                    continue
                cst = self.state.activities[child]
                if cst.status in TERMINAL or cst.job_expected:
                    continue
                cst.status, cst.cascade_failed_on = CASCADE_FAILED, root
                cst.retry_at, cst.waiting_on = None, None
                cst.error_id, cst.error_message = "CascadeFailed", f"upstream activity {root} failed"
                cst.end_time = self.now
                self.emit("ActivityCascadeFailed", f"activity {child}: upstream {root} failed", "Warning")

    def advance(self, name: str) -> None:
        st = self.state.activities[name]
        activity = self.d.activities[name]
        if st.status == WAITING_FOR_RUNNER and st.retry_at is not None:
            if self.now < st.retry_at:
                self.wake(st.retry_at)
                return
            self.start_attempt(name, activity, st)
            return
        if st.status != WAITING_ON_DEPENDENCIES:
            return
        pending = [d for d in activity.depends_on if self.state.activities[d].status not in SUCCESSFUL]
        if pending:
            st.waiting_on = ", ".join(pending)
            return
        if not self.preconditions_hold(name, activity, st):
            return
        if name in self.capacity:
            if self.capacity[name] <= 0:
                st.waiting_on = "maxActiveInstances"
                return
            self.capacity[name] -= 1
        self.start_attempt(name, activity, st)

    def preconditions_hold(self, name: str, activity: Activity, st: ActivityState) -> bool:
        keys = list(_check_keys(self.d, activity))
        waiting: list[str] = []
        for key, precondition_name, guarded in keys:
            check = st.checks.setdefault(key, Check())
            if check.status == MET:
                continue
            precondition = self.d.objects["preconditions"][precondition_name]
            timeout: timedelta | None = precondition.get("preconditionTimeout")
            if check.first is not None and timeout is not None and self.now >= check.first + timeout:
                if check.next_at is None and check.checks:
                    self.commands.append(DeleteJob(check_job_name(self.spec.name, name, key, check.checks),
                                                   "precondition timeout"))
                check.status = NOT_MET
                st.status, st.waiting_on, st.end_time = FAILED, None, self.now
                st.error_id = "PreconditionFailed"
                st.error_message = _clip(f"precondition {precondition_name} did not hold within {timeout}"
                                         + (f" ({check.message})" if check.message else ""))
                self.emit("PreconditionFailed", f"activity {name}: {st.error_message}", "Warning")
                self.fire(name, st, "fail", activity.on_fail)
                return False
            if timeout is not None and check.first is not None:
                self.wake(check.first + timeout)
            waiting.append(precondition_name)
            if check.checks and check.next_at is None:
                continue  # a check is running
            if check.next_at is not None and self.now < check.next_at:
                self.wake(check.next_at)
                continue
            check.checks += 1
            check.first = check.first or self.now
            check.next_at = None
            attempt_timeout = precondition.get("attemptTimeout")
            self.commands.append(CreateJob(
                name=check_job_name(self.spec.name, name, key, check.checks), kind=KIND_PRECONDITION,
                object=precondition_name, activity=name, attempt=check.checks, guarded_node=guarded,
                deadline=attempt_timeout, node=self.node_fields(name, st)))
        if waiting:
            st.waiting_on = "precondition " + ", ".join(waiting)
            return False
        return True

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
                                       activity=name, attempt=st.attempt, deadline=_deadline(self.d, activity)))
        self.emit("AttemptCreated", f"activity {name} attempt {st.attempt}")

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
        elif st.phase in FINAL_PHASES or st.phase == "":
            st.phase = PHASE_RUNNING
        if st.phase in FINAL_PHASES:
            st.completion_time = st.completion_time or self.now
            if previous != st.phase:
                self.emit("Run" + st.phase, f"run {self.spec.name} {st.phase.lower()} ({st.progress()})",
                          "Normal" if st.phase == SUCCEEDED else "Warning")
        else:
            st.completion_time = None
            if previous in ("", PENDING) and st.phase == PHASE_RUNNING:
                self.emit("RunStarted", f"run {self.spec.name} started")

    def _can_progress(self) -> bool:
        """False when every unfinished activity waits behind a failure (failureAndRerunMode none)."""
        blocked: set[str] = set()
        for name in self.order:
            a = self.state.activities[name]
            if a.status in UNSUCCESSFUL or (a.status == WAITING_ON_DEPENDENCIES and any(d in blocked for d in self.d.activities[name].depends_on)):
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


def _deadline(definition: PipelineDefinition, activity: Activity) -> timedelta | None:
    limits = [activity.attempt_timeout]
    if activity.runs_on:
        profile = definition.find(activity.runs_on, ("computeProfiles", "clusterProfiles"))
        if profile is not None:
            limits.append(profile.get("terminateAfter"))
    present = [x for x in limits if x is not None]
    return min(present) if present else None


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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
