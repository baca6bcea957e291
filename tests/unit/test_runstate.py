"""The run state machine as a pure function, driven by a tiny simulated cluster."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.runstate import (
    CANCELLED,
    CASCADE_FAILED,
    FAILED,
    FINISHED,
    PENDING,
    PHASE_FAILED,
    PHASE_RUNNING,
    RUNNING,
    SUCCEEDED,
    WAITING_FOR_RUNNER,
    WAITING_ON_DEPENDENCIES,
    CreateJob,
    Decision,
    DeleteJob,
    Emit,
    JobFact,
    Rerun,
    RunSpec,
    RunState,
    action_job_name,
    attempt_job_name,
    job_name,
    reconcile,
)
from datapipeline.core.task import EXIT_INVALID_TASK, EXIT_PRECONDITION_NOT_MET, TaskResult

T0 = datetime(2026, 11, 21, 3, tzinfo=UTC)
RUN = "daily-20261121t0300z"


def shell(name: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "ShellCommandActivity", "command": "true", **({"dependsOn": list(deps)} if deps
                                                                                 else {}), **extra}


def pipeline(*activities: dict[str, Any], **sections: Any) -> PipelineDefinition:
    return parse_pipeline({"scheduleType": "ondemand", "activities": list(activities), **sections})


class Sim:
    """Applies commands like the adapter would and lets a test finish Jobs."""

    def __init__(self, definition: PipelineDefinition, **spec: Any) -> None:
        self.d = definition
        self.spec = RunSpec(name=RUN, scheduled_start=T0, scheduled_end=T0 + timedelta(days=1), **spec)
        self.state = RunState()
        self.jobs: dict[str, JobFact] = {}
        self.created: list[CreateJob] = []
        self.deleted: list[str] = []
        self.events: list[Emit] = []
        self.now = T0
        self.last: Decision | None = None

    def step(self, seconds: float = 0, **spec: Any) -> Decision:
        self.now += timedelta(seconds=seconds)
        if spec:
            self.spec = RunSpec(**{**self.spec.__dict__, **spec})
        # Round-trip through the status dict, as the adapter does.
        state = RunState.from_dict(json.loads(json.dumps(self.state.to_dict())))
        decision = reconcile(self.d, self.spec, state, self.jobs, self.now)
        for command in decision.commands:
            if isinstance(command, CreateJob):
                self.created.append(command)
                self.jobs.setdefault(command.name, JobFact(command.name, "active", started=self.now, running=True))
            elif isinstance(command, DeleteJob):
                self.deleted.append(command.name)
                self.jobs.pop(command.name, None)
            else:
                self.events.append(command)
        self.state = decision.state
        self.last = decision
        return decision

    def finish(self, name: str, code: int = 0, result: TaskResult | None = None, reason: str | None = None) -> None:
        fact = self.jobs[name]
        self.jobs[name] = JobFact(name, "succeeded" if code == 0 and reason is None else "failed",
                                  started=fact.started, finished=self.now, exit_code=code, result=result, reason=reason)

    def job(self, activity: str, attempt: int) -> str:
        return attempt_job_name(RUN, activity, attempt)

    def status(self, activity: str) -> str:
        return self.state.activities[activity].status

    def created_kinds(self, kind: str) -> list[str]:
        return [c.name for c in self.created if c.kind == kind]

    def checks_say_not_yet(self, rounds: int, seconds: float) -> None:
        """Every running precondition check answers "not met", then time moves on, ``rounds`` times."""
        for _ in range(rounds):
            for name in self.created_kinds("precondition"):
                if self.jobs[name].state == "active":
                    self.finish(name, code=EXIT_PRECONDITION_NOT_MET)
            self.step(seconds)


def test_chain_runs_in_order_and_succeeds() -> None:
    sim = Sim(pipeline(shell("a"), shell("b", "a"), shell("c", "b")))
    sim.step()
    assert sim.created_kinds("activity") == [sim.job("a", 1)]
    assert sim.state.phase == PHASE_RUNNING
    assert sim.status("b") == WAITING_ON_DEPENDENCIES and sim.state.activities["b"].waiting_on == "a"
    sim.step(1)
    assert sim.status("a") == RUNNING
    sim.finish(sim.job("a", 1), result=TaskResult("FINISHED", rows_written=7, bytes=100, output_uris=("s3://b/k",)))
    sim.step(1)
    assert sim.status("a") == FINISHED and sim.state.activities["a"].result == {"rows": 7, "bytes": 100,
                                                                                "uris": ["s3://b/k"]}
    assert sim.created_kinds("activity") == [sim.job("a", 1), sim.job("b", 1)]
    assert sim.state.progress() == "1/3"
    sim.finish(sim.job("b", 1))
    sim.step(1)
    sim.finish(sim.job("c", 1))
    sim.step(1)
    assert sim.state.phase == SUCCEEDED and sim.state.completion_time == sim.now
    assert sim.state.progress() == "3/3"
    assert any(e.reason == "RunSucceeded" for e in sim.events)
    # Level-triggered: nothing more to do, nothing created twice.
    assert sim.step(1).jobs_to_create == []


def test_same_facts_same_commands_idempotent() -> None:
    d = pipeline(shell("a"), shell("b"))
    first = reconcile(d, RunSpec(RUN, T0, T0), RunState(), {}, T0)
    # The adapter crashed before saving the state: the same call asks for the same Jobs.
    again = reconcile(d, RunSpec(RUN, T0, T0), RunState(), {}, T0 + timedelta(seconds=5))
    assert [c.name for c in first.jobs_to_create] == [c.name for c in again.jobs_to_create]
    # With the state saved and the Jobs there, nothing new.
    jobs = {c.name: JobFact(c.name, "active") for c in first.jobs_to_create}
    third = reconcile(d, RunSpec(RUN, T0, T0), first.state, jobs, T0 + timedelta(seconds=6))
    assert third.jobs_to_create == []


def test_diamond() -> None:
    sim = Sim(pipeline(shell("a"), shell("b", "a"), shell("c", "a"), shell("d", "b", "c")))
    sim.step()
    sim.finish(sim.job("a", 1))
    sim.step(1)
    assert set(sim.created_kinds("activity")) == {sim.job("a", 1), sim.job("b", 1), sim.job("c", 1)}
    sim.finish(sim.job("b", 1))
    sim.step(1)
    assert sim.status("d") == WAITING_ON_DEPENDENCIES and sim.state.activities["d"].waiting_on == "c"
    sim.finish(sim.job("c", 1))
    sim.step(1)
    assert sim.job("d", 1) in sim.created_kinds("activity")
    sim.finish(sim.job("d", 1))
    sim.step(1)
    assert sim.state.phase == SUCCEEDED


def test_retries_with_delay_then_cascade() -> None:
    sim = Sim(pipeline(shell("a", maximumRetries=2, retryDelay="30s", onFail=["alarm"]),
                       shell("b", "a"), shell("c", "b"), defaults={"failureAndRerunMode": "cascade"},
                       actions=[{"name": "alarm", "type": "SnsAlarm", "topicArn": "arn:x", "message": "#{node.errorMessage}"}]))
    sim.step()
    for attempt in (1, 2):
        sim.finish(sim.job("a", attempt), code=1)
        d = sim.step(1)
        st = sim.state.activities["a"]
        assert st.status == WAITING_FOR_RUNNER and st.retry_at == sim.now + timedelta(seconds=29)
        assert st.attempts[-1].status == FAILED and st.attempts[-1].exit_code == 1
        assert d.wake_at == st.retry_at and d.jobs_to_create == []
        sim.step(10)
        assert sim.job("a", attempt + 1) not in sim.jobs
        sim.step(19)
        assert sim.job("a", attempt + 1) in sim.jobs
    sim.finish(sim.job("a", 3), code=1, result=TaskResult("FAILED", error_id="S3.NoSuchBucket", error_message="boom"))
    sim.step(1)
    a = sim.state.activities["a"]
    assert a.status == FAILED and a.attempt == 3 and len(a.attempts) == 3
    assert a.error_id == "S3.NoSuchBucket" and a.error_message == "boom"
    assert sim.status("b") == CASCADE_FAILED and sim.status("c") == CASCADE_FAILED
    assert sim.state.activities["c"].cascade_failed_on == "a"
    assert sim.state.phase == PHASE_FAILED
    actions = [c for c in sim.created if c.kind == "action"]
    assert len(actions) == 1 and actions[0].object == "alarm" and actions[0].node["errorMessage"] == "boom"
    assert actions[0].name == action_job_name(RUN, "a", "fail3", "alarm")
    sim.step(1)
    assert len([c for c in sim.created if c.kind == "action"]) == 1  # fired once


def test_failure_without_cascade_leaves_downstream_waiting_and_run_failed() -> None:
    sim = Sim(pipeline(shell("a", maximumRetries=0), shell("b", "a"), shell("x")))
    sim.step()
    sim.finish(sim.job("a", 1), code=1)
    sim.step(1)
    assert sim.status("b") == WAITING_ON_DEPENDENCIES and sim.state.phase == PHASE_RUNNING  # x still running
    sim.finish(sim.job("x", 1))
    sim.step(1)
    assert sim.status("b") == WAITING_ON_DEPENDENCIES and sim.state.phase == PHASE_FAILED


def test_invalid_task_is_not_retried() -> None:
    sim = Sim(pipeline(shell("a", maximumRetries=5)))
    sim.step()
    sim.finish(sim.job("a", 1), code=EXIT_INVALID_TASK)
    sim.step(1)
    assert sim.status("a") == FAILED and sim.state.activities["a"].error_id == "InvalidTask"


def test_job_deleted_by_hand_counts_as_failed_attempt() -> None:
    sim = Sim(pipeline(shell("a", maximumRetries=1, retryDelay="1s")))
    sim.step()
    del sim.jobs[sim.job("a", 1)]
    sim.step(1)
    st = sim.state.activities["a"]
    assert st.attempts[0].status == FAILED and st.error_id == "JobDeleted" and st.status == WAITING_FOR_RUNNER


def test_waiting_for_runner_until_pod_runs() -> None:
    sim = Sim(pipeline(shell("a")))
    sim.step()
    name = sim.job("a", 1)
    sim.jobs[name] = JobFact(name, "active", started=sim.now, running=False)
    sim.step(1)
    assert sim.status("a") == WAITING_FOR_RUNNER
    sim.jobs[name] = JobFact(name, "active", started=sim.now, running=True)
    sim.step(1)
    assert sim.status("a") == RUNNING and sim.state.activities["a"].start_time is not None


def test_cancel_deletes_running_jobs_and_marks_the_rest() -> None:
    sim = Sim(pipeline(shell("a"), shell("b", "a"), shell("c")))
    sim.step()
    sim.finish(sim.job("c", 1))
    sim.step(1)
    sim.step(1, cancel=True)
    assert sim.job("a", 1) in sim.deleted
    assert sim.status("a") == "CANCELED" and sim.status("b") == "CANCELED" and sim.status("c") == FINISHED
    assert sim.state.phase == CANCELLED and sim.state.completion_time is not None
    assert sim.step(1).jobs_to_create == []


def test_rerun_failed_only_keeps_history_and_new_attempt_numbers() -> None:
    sim = Sim(pipeline(shell("a"), shell("b", maximumRetries=0), shell("c", "b")))
    sim.step()
    sim.finish(sim.job("a", 1))
    sim.finish(sim.job("b", 1), code=1)
    sim.step(1)
    assert sim.state.phase == PHASE_FAILED
    sim.step(1, rerun=Rerun(id="r1", failed_only=True))
    assert sim.state.handled_rerun == "r1"
    assert sim.status("a") == FINISHED  # not rerun
    assert sim.job("b", 2) in sim.jobs and sim.job("a", 2) not in sim.jobs
    assert [a.n for a in sim.state.activities["b"].attempts] == [1, 2]
    assert sim.state.phase == PHASE_RUNNING and sim.state.completion_time is None
    sim.finish(sim.job("b", 2))
    sim.step(1)
    sim.finish(sim.job("c", 1))
    sim.step(1)
    assert sim.state.phase == SUCCEEDED
    # The same rerun id is not handled twice.
    assert sim.step(1).jobs_to_create == []


def test_rerun_activity_with_downstream() -> None:
    sim = Sim(pipeline(shell("a"), shell("b", "a"), shell("c", "b"), shell("x")))
    sim.step()
    for act in ("a", "x"):
        sim.finish(sim.job(act, 1))
    sim.step(1)
    sim.finish(sim.job("b", 1))
    sim.step(1)
    sim.finish(sim.job("c", 1))
    sim.step(1)
    assert sim.state.phase == SUCCEEDED
    sim.step(1, rerun=Rerun(id="2", activities=("b",), downstream=True))
    assert sim.status("b") == WAITING_FOR_RUNNER and sim.status("c") == WAITING_ON_DEPENDENCIES
    assert sim.status("a") == FINISHED and sim.status("x") == FINISHED
    sim.finish(sim.job("b", 2))
    sim.step(1)
    assert sim.job("c", 2) in sim.jobs


def test_rerun_single_activity_without_downstream() -> None:
    sim = Sim(pipeline(shell("a"), shell("b", "a")))
    sim.step()
    sim.finish(sim.job("a", 1))
    sim.step(1)
    sim.finish(sim.job("b", 1))
    sim.step(1)
    sim.step(1, rerun=Rerun(id="3", activities=("a",)))
    assert sim.status("a") == WAITING_FOR_RUNNER and sim.status("b") == FINISHED


def test_mark_finished_unblocks_downstream() -> None:
    sim = Sim(pipeline(shell("a", maximumRetries=0), shell("b", "a")))
    sim.step()
    sim.finish(sim.job("a", 1), code=1)
    sim.step(1)
    assert sim.state.phase == PHASE_FAILED
    sim.step(1, mark_finished=("a",))
    assert sim.status("a") == FINISHED and sim.job("b", 1) in sim.jobs
    assert sim.state.phase == PHASE_RUNNING


def test_precondition_becomes_true_later() -> None:
    d = pipeline(shell("a", precondition=["ready"]),
                 preconditions=[{"name": "ready", "type": "ShellCommandPrecondition", "command": "test -f /x",
                                 "retryDelay": "10s", "preconditionTimeout": "5 minutes"}])
    sim = Sim(d)
    sim.step()
    checks = sim.created_kinds("precondition")
    assert len(checks) == 1 and sim.status("a") == WAITING_ON_DEPENDENCIES
    assert sim.state.activities["a"].waiting_on == "precondition ready"
    assert sim.state.phase == PENDING
    sim.finish(checks[0], code=EXIT_PRECONDITION_NOT_MET)
    decision = sim.step(1)
    assert decision.wake_at == sim.now + timedelta(seconds=10)
    sim.step(10)
    checks = sim.created_kinds("precondition")
    assert len(checks) == 2 and checks[0] != checks[1]
    sim.finish(checks[1], code=0)
    sim.step(1)
    assert sim.job("a", 1) in sim.jobs
    assert sim.state.activities["a"].checks["ready"].status == "MET"


def test_max_active_instances_capacity() -> None:
    d = pipeline(shell("a"))
    decision = reconcile(d, RunSpec(RUN, T0, T0), RunState(), {}, T0, capacity={"a": 0})
    assert decision.jobs_to_create == [] and decision.state.activities["a"].waiting_on == "maxActiveInstances"


def test_job_names_are_short_and_unique() -> None:
    long_run = "p" * 40 + "-20261121t030005z"
    names = {attempt_job_name(long_run, "activity-with-a-long-name" * 2, n) for n in range(1, 20)}
    assert len(names) == 19 and all(len(n) <= 63 for n in names)
    assert all(n.endswith(f"-{i}") for i, n in zip(range(1, 20), sorted(names, key=lambda s: int(s.rsplit('-', 1)[1])),
                                                   strict=True))
    assert job_name("r", "Load_Data", "1") == "r-load-data-1"


def _big_status(n: int) -> Mapping[str, Any]:
    d = pipeline(*[shell(f"activity-{i:03d}", *([f"activity-{i - 1:03d}"] if i % 10 else [])) for i in range(n)])
    sim = Sim(d)
    sim.step()
    for _ in range(12):
        for name, fact in list(sim.jobs.items()):
            if fact.state == "active":
                sim.finish(name, result=TaskResult("FINISHED", rows_written=123456, bytes=9876543,
                                                   output_uris=("s3://bucket/some/prefix/part-0000.csv",)))
        sim.step(3)
    assert sim.state.phase == SUCCEEDED
    return sim.state.to_dict()


def test_status_for_500_activities_stays_small() -> None:
    status = _big_status(500)
    size = len(json.dumps(status, separators=(",", ":")))
    assert size < 300_000, size


def test_progress_events_are_posted_only_when_every_event_is_asked_for() -> None:
    from datapipeline.core.runstate import Emit, worth_posting

    for reason in ("AttemptCreated", "ActivityRunning", "ActivityFinished", "DataNodeReady", "PreconditionMet",
                   "RunStarted"):
        assert not worth_posting(Emit(reason, "m"), every_event=False)
        assert worth_posting(Emit(reason, "m"), every_event=True)
    for reason in ("RunSucceeded", "AttemptFailed", "ActivityFailed", "ActivityLate", "RunCancelled"):
        assert worth_posting(Emit(reason, "m"), every_event=False)
    assert worth_posting(Emit("ActivityFinished", "m", "Warning"), every_event=False)


def _pending_job_sim() -> Sim:
    """A run of a, b (after a) whose first Job exists but has not started (its pod is pending)."""
    sim = Sim(pipeline(shell("a"), shell("b", "a")))
    sim.step()
    sim.jobs[sim.job("a", 1)] = JobFact(sim.job("a", 1), "active")
    sim.step()
    assert sim.status("a") == WAITING_FOR_RUNNER
    return sim


def test_an_attempt_starting_is_all_a_state_may_say_to_wait_for_its_save() -> None:
    from datapipeline.core.runstate import only_started

    sim = _pending_job_sim()
    saved = RunState.from_dict(sim.state.to_dict())
    assert not only_started(saved, RunState.from_dict(sim.state.to_dict()))  # nothing changed: nothing to wait for
    sim.jobs[sim.job("a", 1)] = JobFact(sim.job("a", 1), "active", started=T0 + timedelta(seconds=3), running=True)
    sim.step(5)
    assert sim.status("a") == RUNNING
    assert only_started(saved, sim.state)
    sim.finish(sim.job("a", 1))
    sim.step(2)  # a finished and b's Job made: none of it may wait
    assert not only_started(saved, sim.state)


def test_a_start_not_saved_is_derived_again_from_the_job_with_the_same_times() -> None:
    sim = _pending_job_sim()
    saved = json.loads(json.dumps(sim.state.to_dict()))
    sim.jobs[sim.job("a", 1)] = JobFact(sim.job("a", 1), "active", started=T0 + timedelta(seconds=3), running=True)
    sim.step(5)
    sim.finish(sim.job("a", 1))
    sim.step(2)
    with_start_saved = sim.state.to_dict()
    sim.state = RunState.from_dict(saved)  # the RUNNING state was never written (the save waited; a crash)
    sim.step()
    assert sim.state.to_dict() == with_start_saved
    assert sim.state.activities["a"].start_time == T0 + timedelta(seconds=3)


def test_a_new_attempt_a_phase_or_a_fired_action_is_never_only_a_start() -> None:
    from datapipeline.core.runstate import only_started

    sim = _pending_job_sim()
    saved = RunState.from_dict(sim.state.to_dict())
    moved = RunState.from_dict(sim.state.to_dict())
    moved.activities["a"].attempt = 2
    moved.activities["a"].status = RUNNING
    assert not only_started(saved, moved)
    moved = RunState.from_dict(sim.state.to_dict())
    moved.activities["a"].status = RUNNING
    moved.activities["a"].fired = ["late"]
    assert not only_started(saved, moved)
    moved = RunState.from_dict(sim.state.to_dict())
    moved.activities["a"].status = RUNNING
    moved.phase = SUCCEEDED
    assert not only_started(saved, moved)


def test_a_new_runs_first_attempts_may_wait_for_their_save_and_nothing_after_them() -> None:
    from datapipeline.core.runstate import only_first_attempts

    assert not only_first_attempts(RunState())  # nothing decided: nothing to wait for
    sim = Sim(pipeline(shell("a", maximumRetries=1, retryDelay="30s"), shell("b", "a"), shell("c")))
    sim.step()
    assert sim.created_kinds("activity") == [sim.job("a", 1), sim.job("c", 1)]
    assert only_first_attempts(sim.state)
    sim.step(3)  # both running
    assert only_first_attempts(sim.state)
    sim.finish(sim.job("c", 1))
    sim.step(1)  # c ended: its end is saved at once
    assert not only_first_attempts(sim.state)

    sim = Sim(pipeline(shell("a", maximumRetries=1, retryDelay="30s")))
    sim.step()
    sim.finish(sim.job("a", 1), code=1)
    sim.step(1)  # a retry waits: the failure is news
    assert not only_first_attempts(sim.state)

    sim = Sim(pipeline(shell("a")))
    sim.step()
    sim.finish(sim.job("a", 1))
    sim.step(1)
    assert sim.state.phase == SUCCEEDED and not only_first_attempts(sim.state)


def test_a_new_runs_first_status_waits_for_a_start_then_briefly(monkeypatch: Any) -> None:
    """Until one of its first attempts starts, a new run's status would only say it waits for a runner: it may
    wait up to pending_status_limit, then status_delay after the start is seen; a start's own save waits
    status_delay from the pass that saw it (issue #12: a one-activity run costs one status write, not three,
    when its pod starts late)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from datapipeline.controller import runs
    from datapipeline.controller.frozen import FROZEN_HASH
    from datapipeline.controller.step import StepResult
    from datapipeline.core.runstate import only_awaits_job_ends, only_awaits_runners

    monkeypatch.setattr(runs, "SETTINGS", replace(runs.SETTINGS, status_delay=5.0, pending_status_limit=30.0))

    def due(stored: dict[str, Any], state: RunState, seconds: float, cache: dict[str, Any],
            facts: dict[str, JobFact] | None = None) -> datetime | None:
        observed = SimpleNamespace(stored=stored, now=T0 + timedelta(seconds=seconds), facts=facts or {},
                                   run={"metadata": {"name": RUN}})
        return runs._save_waits(observed, StepResult(state=state), cache)  # type: ignore[arg-type]

    sim = Sim(pipeline(shell("a")))
    sim.step()
    waiting = sim.state
    sim.step(1)
    started = sim.state
    assert only_awaits_runners(waiting) and not only_awaits_runners(started)
    cache: dict[str, Any] = {}
    assert due({}, waiting, 0, cache) == T0 + timedelta(seconds=30)
    assert due({}, waiting, 20, cache) == T0 + timedelta(seconds=30)
    assert due({}, started, 24, cache) == T0 + timedelta(seconds=29)  # 5 s after the start is seen
    assert due({}, started, 27, cache) == T0 + timedelta(seconds=29)  # not pushed back by later passes
    assert due({}, started, 29, cache) is None and cache == {}  # due: saved now
    assert due({}, waiting, 0, cache) == T0 + timedelta(seconds=30)
    assert due({}, waiting, 30, cache) is None  # the pod still pending: saved anyway
    assert due({}, started, 1, {}) == T0 + timedelta(seconds=6)  # started on the first pass
    stored = {FROZEN_HASH: "h", **waiting.to_dict()}  # saved before the start: the start waits status_delay
    cache = {}
    assert due(stored, started, 40, cache) == T0 + timedelta(seconds=45)
    assert due(stored, started, 43, cache) == T0 + timedelta(seconds=45)
    assert due(stored, started, 45, cache) is None

    # The pod ended before the start's save was due: the Job's end comes within seconds, the start waits for it.
    ended = {sim.job("a", 1): replace(sim.jobs[sim.job("a", 1)], pods_ended=True)}
    assert only_awaits_job_ends(started, ended, RUN) and not only_awaits_job_ends(started, sim.jobs, RUN)
    cache = {}
    assert due(stored, started, 40, cache) == T0 + timedelta(seconds=45)
    assert due(stored, started, 44, cache, ended) == T0 + timedelta(seconds=70)  # at most the pending limit
    assert due(stored, started, 69, cache, ended) == T0 + timedelta(seconds=70)
    assert due(stored, started, 70, cache, ended) is None and cache == {}  # the Job never caught up: saved
    cache = {}
    assert due({}, waiting, 0, cache) == T0 + timedelta(seconds=30)
    assert due({}, started, 3, cache, ended) == T0 + timedelta(seconds=30)  # a new run's, too

    held = Sim(pipeline(shell("a")), queued="maxActiveInstances")  # no Job yet: its status says why it waits
    held.step()
    assert held.status("a") == WAITING_ON_DEPENDENCIES and not only_awaits_runners(held.state)
    assert due({}, held.state, 0, {}) == T0 + timedelta(seconds=5)


def test_a_first_precondition_check_may_wait_a_second_one_may_not() -> None:
    from datapipeline.core.runstate import only_first_attempts

    d = pipeline(shell("a", precondition=["ready"]),
                 preconditions=[{"name": "ready", "type": "ShellCommandPrecondition", "command": "test -f /x",
                                 "retryDelay": "10s", "preconditionTimeout": "5 minutes"}])
    sim = Sim(d)
    sim.step()
    assert len(sim.created_kinds("precondition")) == 1 and only_first_attempts(sim.state)
    sim.checks_say_not_yet(1, 10)
    assert not only_first_attempts(sim.state)


def test_a_new_run_whose_first_save_was_lost_decides_the_same_jobs_again() -> None:
    """The operator stopped while the first save waited: the next pass starts from nothing, makes the same
    Job names (the adapter adopts the Jobs that exist) and reads their progress from them."""
    sim = Sim(pipeline(shell("a"), shell("b", "a"), shell("c")))
    sim.step()
    sim.step(3)
    decided = {n: (a.status, a.attempt, a.start_time) for n, a in sim.state.activities.items()}
    made = list(sim.created)
    sim.state = RunState()  # nothing was saved
    sim.step(20)
    assert [c.name for c in sim.created[len(made):]] == [c.name for c in made]
    sim.step(1)
    assert {n: (a.status, a.attempt, a.start_time) for n, a in sim.state.activities.items()} == decided
    sim.finish(sim.job("a", 1))
    sim.step(1)
    assert sim.status("a") == FINISHED and sim.created[-1].name == sim.job("b", 1)


def test_a_state_reads_back_as_it_was_written() -> None:
    """Whatever a pass writes must read back the same, or the next pass writes again (an empty result once
    cost a second status write per attempt)."""
    sim = Sim(pipeline(shell("a"), shell("b", "a")))
    sim.step()
    sim.finish(sim.job("a", 1), result=TaskResult("FINISHED"))
    sim.step(1)
    written = sim.state.to_dict()
    assert RunState.from_dict(json.loads(json.dumps(written))).to_dict() == written
