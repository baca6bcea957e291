"""The run state machine against the AWS Data Pipeline Developer Guide (issue #11, parts 2 and 3).

Each test's docstring quotes the sentence of the guide it enforces (doc_source/ of
awsdocs/aws-data-pipeline-developer-guide); docs/run-semantics.md says where we chose between readings.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from test_runstate import RUN, T0, Sim, pipeline, shell

from datapipeline.core.definition import NODE_FIELDS, parse_pipeline
from datapipeline.core.model import PipelineDefinition
from datapipeline.core.resolve import RunContext, resolve_command
from datapipeline.core.runstate import (
    CANCELED,
    CASCADE_FAILED,
    FAILED,
    FINISHED,
    PAUSED,
    PENDING,
    PHASE_FAILED,
    PHASE_PAUSED,
    PHASE_RUNNING,
    RUNNING,
    SUCCEEDED,
    TIMEDOUT,
    WAITING_FOR_RUNNER,
    WAITING_ON_DEPENDENCIES,
    CreateJob,
    JobFact,
    Rerun,
    RunSpec,
    RunState,
    action_job_name,
    reconcile,
)
from datapipeline.core.task import EXIT_PRECONDITION_NOT_MET

ALARM = {"name": "alarm", "type": "SnsAlarm", "topicArn": "arn:x", "message": "#{node.@id}: #{node.errorMessage}"}
CASCADE = {"failureAndRerunMode": "cascade"}


def scheduled(*activities: dict[str, Any], schedule_type: str = "cron", **sections: Any) -> PipelineDefinition:
    return parse_pipeline({"scheduleType": schedule_type, "activities": list(activities),
                           "schedule": {"period": "1 day", "startDateTime": "2026-11-01T03:00:00Z"}, **sections})


def actions(sim: Sim) -> list[CreateJob]:
    return [c for c in sim.created if c.kind == "action"]


def fail_for_good(sim: Sim, activity: str) -> None:
    sim.finish(sim.job(activity, 1), code=1)
    sim.step(1)


def render(definition: PipelineDefinition, action: CreateJob) -> dict[str, Any]:
    context = RunContext(pipeline="p", run=RUN, scheduled_start=T0, scheduled_end=T0 + timedelta(days=1),
                         trigger_time=T0)
    resolved = resolve_command(definition, context, action.kind, action.object, action.activity, action.attempt,
                               node=action.node)
    return dict(resolved.task.fields)


# ---------------------------------------------------------------------------- cascading failures
def test_cascade_failed_activity_fires_on_fail_and_knows_its_root() -> None:
    """"Pipeline objects affected by a cascade failure may trigger any retries or post-actions, such as
    `onFail`." (Cascading Failures and Reruns); "@cascadeFailedOn | The description of the dependency chain that
    caused the object failure." (ShellCommandActivity, Runtime Fields)"""
    told = {**ALARM, "message": "#{node.@id} #{node.@status} on #{node.@cascadeFailedOn}"}
    d = pipeline(shell("a", maximumRetries=0), shell("b", "a", onFail=["alarm"]), shell("c", "b", onFail=["alarm"]),
                 defaults=CASCADE, actions=[told])
    sim = Sim(d)
    sim.step()
    fail_for_good(sim, "a")
    assert sim.status("b") == CASCADE_FAILED and sim.status("c") == CASCADE_FAILED
    fired = {a.activity: a for a in actions(sim)}
    assert set(fired) == {"b", "c"}
    assert fired["c"].node["@cascadeFailedOn"] == "a" and fired["c"].node["@status"] == CASCADE_FAILED
    assert render(d, fired["c"])["message"] == "c CASCADE_FAILED on a"
    sim.step(1)
    assert len(actions(sim)) == 2  # once each


def test_failure_and_rerun_mode_is_the_consumers_behaviour() -> None:
    """"failureAndRerunMode | Describes consumer node behavior when dependencies fail or are rerun."
    (ShellCommandActivity, Optional Fields)"""
    d = pipeline(shell("a", maximumRetries=0, **CASCADE), shell("quiet", "a"), shell("loud", "a", **CASCADE))
    sim = Sim(d)
    sim.step()
    fail_for_good(sim, "a")
    assert sim.status("loud") == CASCADE_FAILED
    assert sim.status("quiet") == WAITING_ON_DEPENDENCIES and sim.state.phase == PHASE_FAILED


def test_failure_and_rerun_mode_on_data_nodes_and_preconditions() -> None:
    """"All activities, data nodes, and preconditions have a field named `failureAndRerunMode`"; "If a data node
    is configured as the output of an activity that fails, the data node changes to the `CASCADE_FAILED` state."
    (Cascading Failures and Reruns)"""
    d = pipeline(shell("a", maximumRetries=0, output=["out"]), shell("reader", input=["out"], **CASCADE),
                 shell("first", maximumRetries=0),
                 dataNodes=[{"name": "out", "type": "S3DataNode", "directoryPath": "s3://b/out/", "onFail": ["alarm"],
                             "precondition": ["ready"], **CASCADE}],
                 preconditions=[{"name": "ready", "type": "Exists", **CASCADE}], actions=[ALARM])
    sim = Sim(d)
    sim.step()
    # reader has no dependsOn on a: its check of "out" runs meanwhile; a's failure cancels it.
    check = next(c.name for c in sim.created if c.kind == "precondition")
    sim.finish(sim.job("first", 1))
    fail_for_good(sim, "a")
    assert sim.state.nodes["out"].status == CASCADE_FAILED and sim.state.nodes["out"].cascade_failed_on == "a"
    assert sim.status("reader") == CASCADE_FAILED and check in sim.deleted
    assert sim.state.activities["reader"].checks["out/ready"].status == CANCELED
    node_alarm = [a for a in actions(sim) if a.node["@id"] == "out"]
    assert len(node_alarm) == 1 and node_alarm[0].name == action_job_name(RUN, "out", "nfail", "alarm")
    assert render(d, node_alarm[0])["message"] == "out: upstream activity a failed"


def test_cascade_rerun_reruns_cascade_failed_consumers_only() -> None:
    """"setting the `failureAndRerunMode` field to `cascade` on a pipeline object allows a rerun command on a
    target object to propagate to all consumers, under the following conditions: The target object's consumers
    are in the `CASCADE_FAILED` state." (Cascading Failures and Reruns)"""
    d = pipeline(shell("a", maximumRetries=0), shell("b", "a"), shell("c", "b"),
                 shell("x"), shell("y", "x"), defaults=CASCADE)
    sim = Sim(d)
    sim.step()
    sim.finish(sim.job("x", 1))
    fail_for_good(sim, "a")
    sim.finish(sim.job("y", 1))
    sim.step(1)
    assert [sim.status(n) for n in "abcy"] == [FAILED, CASCADE_FAILED, CASCADE_FAILED, FINISHED]
    sim.step(1, rerun=Rerun(id="r1", activities=("a",)))
    assert sim.status("a") == WAITING_FOR_RUNNER
    assert sim.status("b") == WAITING_ON_DEPENDENCIES and sim.status("c") == WAITING_ON_DEPENDENCIES
    sim.step(1, rerun=Rerun(id="r2", activities=("x",)))
    assert sim.status("x") == WAITING_FOR_RUNNER and sim.status("y") == FINISHED  # finished work stays finished


def test_rerun_of_cascade_failed_object_with_failed_dependency_returns_to_cascade_failed() -> None:
    """"If you attempt to rerun a `CASCADE_FAILED` object and any of its dependencies are `FAILED`,
    `CASCADE_FAILED`, or `CANCELED`, the rerun will fail and return the object to the `CASCADE_FAILED` state."
    (Cascading Failures and Reruns)"""
    sim = Sim(pipeline(shell("a", maximumRetries=0), shell("b", "a"), defaults=CASCADE))
    sim.step()
    fail_for_good(sim, "a")
    sim.step(1, rerun=Rerun(id="r1", activities=("b",)))
    assert sim.status("b") == CASCADE_FAILED and sim.status("a") == FAILED


# ---------------------------------------------------------------------------- preconditions and data nodes
PRE = {"name": "ready", "type": "ShellCommandPrecondition", "command": "test -f /x", "retryDelay": "10s",
       "maximumRetries": 1, "onFail": ["alarm"], "onSuccess": ["alarm"]}


def test_precondition_retries_and_on_fail_are_its_own() -> None:
    """"Task Runner honors the precondition object **retryDelay** and **preconditionTimeout** fields that you
    define on preconditions." (Task Runner threading); ShellCommandPrecondition: "maximumRetries | Maximum number
    attempt retries on failure", "onFail | An action to run when current object fails\""""
    sim = Sim(pipeline(shell("a", precondition=["ready"]), preconditions=[PRE], actions=[ALARM]))
    sim.step()
    first = sim.created_kinds("precondition")[0]
    sim.finish(first, code=EXIT_PRECONDITION_NOT_MET)  # "not met" is no error: it does not use up a retry
    assert sim.step(1).wake_at == sim.now + timedelta(seconds=10)
    for _ in range(2):
        sim.step(10)
        sim.finish(sim.created_kinds("precondition")[-1], code=2)  # the check itself fails
        sim.step(1)
    check = sim.state.activities["a"].checks["ready"]
    assert check.status == FAILED and check.errors == 2 and len(sim.created_kinds("precondition")) == 3
    assert "more than its maximumRetries (1)" in (check.message or "")
    fired = actions(sim)
    assert len(fired) == 1 and fired[0].event == "fail" and fired[0].node["@id"] == "ready"
    assert render(sim.d, fired[0])["message"].startswith("ready: its check failed 2 time(s)")
    # The activity did not fail: it waits on a failed dependency (failureAndRerunMode none), and the run fails.
    assert sim.status("a") == WAITING_ON_DEPENDENCIES and "precondition ready failed" in str(
        sim.state.activities["a"].waiting_on)
    assert sim.state.phase == PHASE_FAILED and sim.step(30).jobs_to_create == []


def test_failed_precondition_cascade_fails_its_consumer_which_can_be_rerun() -> None:
    """"cascade failures occur if a pipeline object is blocked in the `WAITING_ON_DEPENDENCIES` state and any
    dependencies have failed with no pending command" (Cascading Failures and Reruns)"""
    pre = {**PRE, "preconditionTimeout": "25s", "maximumRetries": 5}
    sim = Sim(pipeline(shell("a", precondition=["ready"], onFail=["alarm"], **CASCADE), preconditions=[pre],
                       actions=[ALARM]))
    sim.step()
    sim.checks_say_not_yet(3, 10)
    a = sim.state.activities["a"]
    assert a.status == CASCADE_FAILED and a.cascade_failed_on == "ready"
    assert "did not hold within 25s (preconditionTimeout)" in (a.error_message or "")
    assert {c.node["@id"] for c in actions(sim)} == {"ready", "a"}  # the precondition's onFail and a's
    sim.step(1, rerun=Rerun(id="r", failed_only=True))
    assert sim.status("a") == WAITING_ON_DEPENDENCIES and sim.state.activities["a"].checks["ready"].status == "CHECKING"


def test_data_node_on_success_fires_when_its_preconditions_hold() -> None:
    """"precondition | ... A data node is not marked "READY" until all preconditions have been met.";
    "onSuccess | An action to run when current object succeeds." (S3DataNode)"""
    d = pipeline(shell("a", input=["in"]), shell("b", input=["in"]),
                 dataNodes=[{"name": "in", "type": "S3DataNode", "filePath": "s3://b/k", "precondition": ["exists"],
                             "onSuccess": ["alarm"], "onFail": ["alarm"]}],
                 preconditions=[{"name": "exists", "type": "Exists"}], actions=[ALARM])
    sim = Sim(d)
    sim.step()
    assert actions(sim) == []
    for name in sim.created_kinds("precondition"):
        sim.finish(name)
    sim.step(1)
    sim.step(1)
    fired = actions(sim)
    assert [(c.event, c.node["@id"], c.node["@status"]) for c in fired] == [("success", "in", FINISHED)]
    assert sim.state.nodes["in"].status == FINISHED and sim.job("a", 1) in sim.jobs and sim.job("b", 1) in sim.jobs


def test_data_node_on_fail_fires_when_its_precondition_times_out() -> None:
    """"preconditionTimeout | The period from start after which precondition is marked as failed if still not
    satisfied" (ShellCommandPrecondition); S3DataNode: "onFail | An action to run when current object fails.\""""
    d = pipeline(shell("a", input=["in"]),
                 dataNodes=[{"name": "in", "type": "S3DataNode", "filePath": "s3://b/k", "precondition": ["exists"],
                             "onFail": ["alarm"]}],
                 preconditions=[{"name": "exists", "type": "Exists", "retryDelay": "10s",
                                 "preconditionTimeout": "30s"}], actions=[ALARM])
    sim = Sim(d)
    sim.step()
    sim.checks_say_not_yet(4, 11)
    assert sim.state.nodes["in"].status == FAILED
    fired = actions(sim)
    assert len(fired) == 1 and fired[0].node["@id"] == "in" and fired[0].node["type"] == "S3DataNode"
    assert "precondition exists failed: it did not hold within 30s" in render(d, fired[0])["message"]
    assert sim.state.phase == PHASE_FAILED


# ---------------------------------------------------------------------------- lateness
LATE = {"lateAfterTimeout": "60s", "onLateAction": ["alarm"]}


def test_late_never_fires_on_ondemand_pipelines() -> None:
    """"lateAfterTimeout | The elapsed time after pipeline start within which the object must start\\. It is
    triggered only when the schedule type is not set to ondemand." (ShellCommandActivity)"""
    sim = Sim(pipeline(shell("a", **LATE), actions=[ALARM]))
    decision = sim.step()
    assert decision.wake_at is None
    sim.step(3600)
    assert actions(sim) == [] and not any(e.reason == "ActivityLate" for e in sim.events)


def test_late_fires_for_an_activity_still_running_and_terminate_cancels_it() -> None:
    """"onLateAction | Actions that should be triggered if an object has not yet been scheduled or is not
    completed." (ShellCommandActivity); Terminate: "An action to trigger the cancellation of a pending or
    unfinished activity, resource, or data node\\." (Terminate)"""
    d = scheduled(shell("a", lateAfterTimeout="60s", onLateAction=["alarm", "stop"]), shell("b", "a", lateAfterTimeout="65s",
                                                                                  onLateAction=["alarm"]),
                  actions=[ALARM, {"name": "stop", "type": "Terminate"}])
    sim = Sim(d)
    assert sim.step().wake_at == T0 + timedelta(seconds=60)
    sim.step(30)
    assert sim.status("a") == RUNNING
    sim.step(30)
    assert [c.activity for c in actions(sim)] == ["a"] and sim.job("a", 1) in sim.deleted
    a = sim.state.activities["a"]
    assert a.status == CANCELED and a.cancellation_reason == "terminated by action stop: the activity was late"
    assert any(e.reason == "ActivityLate" and "has not completed 1m after the run was due" in e.message
               for e in sim.events)
    sim.step(5)
    assert [c.activity for c in actions(sim)] == ["a", "b"]  # b waits behind a, not completed either
    sim.step(5)
    assert len(actions(sim)) == 2 and sum(e.reason == "ActivityLate" for e in sim.events) == 2


def test_late_without_actions_is_reported_once() -> None:
    """"onLateAction | Actions that should be triggered if an object has not yet been scheduled or is not
    completed." (ShellCommandActivity)"""
    sim = Sim(scheduled(shell("a", lateAfterTimeout="60s")))
    sim.step()
    sim.step(61)
    sim.step(5)
    assert sum(e.reason == "ActivityLate" for e in sim.events) == 1


def test_late_counts_from_the_end_of_a_timeseries_interval() -> None:
    """"If set to `timeseries`, instances are scheduled at the end of each interval." (scheduleType)"""
    sim = Sim(scheduled(shell("a", lateAfterTimeout="60s"), schedule_type="timeseries"))
    assert sim.step().wake_at == T0 + timedelta(days=1, seconds=60)


# ---------------------------------------------------------------------------- timeouts
def test_attempt_timeout_fails_the_attempt_and_is_retried() -> None:
    """"attemptTimeout | The timeout for the remote work completion\\. If set, then a remote activity that does
    not complete within the specified starting time may be retried." (ShellCommandActivity)"""
    sim = Sim(pipeline(shell("a", attemptTimeout="10s", maximumRetries=1, retryDelay="1s")))
    created = sim.step().jobs_to_create
    assert created[0].deadline == timedelta(seconds=10)
    sim.step(11)
    sim.finish(sim.job("a", 1), code=None, reason="DeadlineExceeded")  # type: ignore[arg-type]
    sim.step(1)
    st = sim.state.activities["a"]
    assert st.attempts[0].status == FAILED and st.error_id == "AttemptTimeout" and st.status == WAITING_FOR_RUNNER
    assert st.error_message == "attempt 1 ran longer than its attemptTimeout (10s) and was stopped"
    sim.step(2)
    assert sim.job("a", 2) in sim.jobs
    # The Job ignores its deadline (e.g. stuck): the operator deletes it after the margin.
    sim.step(45)
    assert sim.job("a", 2) in sim.deleted
    assert sim.status("a") == FAILED and sim.state.phase == PHASE_FAILED
    assert st.resource_status is None and TIMEDOUT not in {a.status for a in sim.state.activities["a"].attempts}


def test_terminate_after_times_out_the_resource_and_is_not_retried() -> None:
    """"`TIMEDOUT` The resource exceeded the `terminateAfter` threshold and was stopped by AWS Data Pipeline\\.
    After the resource reaches this status, AWS Data Pipeline ignores the `actionOnResourceFailure`,
    `retryDelay`, and `retryTimeout` values for that resource\\. This status applies only to resources\\."
    (Interpreting Pipeline Status Codes)"""
    d = pipeline(shell("a", runsOn="small", attemptTimeout="1 hour", maximumRetries=3, onFail=["alarm"]),
                 computeProfiles=[{"name": "small", "type": "ComputeProfile", "terminateAfter": "10 minutes"}],
                 actions=[ALARM])
    sim = Sim(d)
    assert sim.step().jobs_to_create[0].deadline == timedelta(minutes=10)
    sim.step(600)
    sim.finish(sim.job("a", 1), code=None, reason="DeadlineExceeded")  # type: ignore[arg-type]
    sim.step(1)
    a = sim.state.activities["a"]
    assert a.status == FAILED and a.error_id == "ResourceTimeout" and a.resource_status == TIMEDOUT
    assert a.error_message == ("attempt 1 was stopped by the terminateAfter (10m) of compute profile small: "
                               "the resource TIMEDOUT, so the activity is not retried")
    assert sim.job("a", 2) not in sim.jobs and len(actions(sim)) == 1
    assert a.to_dict()["resourceStatus"] == TIMEDOUT


# ---------------------------------------------------------------------------- maxActiveInstances
def test_reruns_do_not_count_against_max_active_instances() -> None:
    """"maxActiveInstances | The maximum number of concurrent active instances of a component\\. Re\\-runs do
    not count toward the number of active instances." (ShellCommandActivity)"""
    d = pipeline(shell("a", maximumRetries=0, maxActiveInstances=1))
    first = reconcile(d, RunSpec(RUN, T0, T0), RunState(), {}, T0, capacity={"a": 1})
    name = first.jobs_to_create[0].name
    assert first.jobs_to_create[0].rerun is False
    failed = {name: JobFact(name, "failed", started=T0, finished=T0, exit_code=1)}
    done = reconcile(d, RunSpec(RUN, T0, T0), first.state, failed, T0, capacity={"a": 0})
    assert done.state.phase == PHASE_FAILED
    rerun = reconcile(d, RunSpec(RUN, T0, T0, rerun=Rerun("r1")), done.state, failed, T0, capacity={"a": 0})
    assert [(c.attempt, c.rerun) for c in rerun.jobs_to_create] == [(2, True)]


def test_a_queued_run_starts_nothing() -> None:
    """"The maximum number of concurrent executions of an on\\-demand pipeline can be configured using the slot
    maxActiveInstances in the Default object\\." (Schedules)"""
    d = pipeline(shell("a"))
    why = "maxActiveInstances: 1 run of this on-demand pipeline is active"
    queued = reconcile(d, RunSpec(RUN, T0, T0, queued=why), RunState(), {}, T0)
    assert queued.jobs_to_create == [] and queued.state.phase == PENDING
    assert queued.state.activities["a"].waiting_on == why
    assert reconcile(d, RunSpec(RUN, T0, T0), queued.state, {}, T0).jobs_to_create


# ---------------------------------------------------------------------------- runtime fields
# Runtime fields the guide lists without "@": validation lets node.<field> through (it might be an object field).
GUIDE_PLAIN_FIELDS = frozenset({"hostname", "reportProgressTime", "emrStepLog", "hadoopJobLog"})


def _node_reader(fields: frozenset[str]) -> dict[str, Any]:
    return {**ALARM, "message": " | ".join(f"{f}=#{{node.{f}}}" for f in sorted(fields))}


def test_every_node_field_validation_allows_is_there_when_an_action_runs() -> None:
    """Runtime Fields (ShellCommandActivity): "@actualEndTime", "@actualStartTime", "cancellationReason",
    "@cascadeFailedOn", "errorId", "errorMessage", "errorStackTrace", "@scheduledEndTime", "@scheduledStartTime",
    "@status", "@waitingOn", "hostname", "reportProgressTime" -- and SnsAlarm: "node | The node for which this
    action is being performed\\.\""""
    readable = NODE_FIELDS | GUIDE_PLAIN_FIELDS
    d = scheduled(shell("a", maximumRetries=0, onFail=["alarm"]), shell("b", "a", onFail=["alarm"], **CASCADE),
                  shell("c", onLateAction=["alarm", "stop"], lateAfterTimeout="1 minute"),
                  actions=[_node_reader(readable), {"name": "stop", "type": "Terminate"}])
    sim = Sim(d)
    sim.step()
    fail_for_good(sim, "a")  # a FAILED (started), b CASCADE_FAILED (never started)
    sim.step(60)  # c late while running: cancelled
    fired = {c.activity: c for c in actions(sim)}
    assert set(fired) == {"a", "b", "c"}
    for action in fired.values():
        message = render(d, action)["message"]
        assert all(f"{f}=" in message for f in readable)
    assert "@status=CASCADE_FAILED" in render(d, fired["b"])["message"]
    assert "@actualStartTime= |" in render(d, fired["b"])["message"]
    assert "cancellationReason= |" in render(d, fired["a"])["message"]
    assert "errorMessage=exit code 1" in render(d, fired["a"])["message"]


def test_cancellation_reason_is_kept() -> None:
    """"cancellationReason | The cancellationReason if this object was cancelled\\." (ShellCommandActivity)"""
    sim = Sim(pipeline(shell("a")))
    sim.step()
    sim.step(1, cancel=True, cancel_reason="the pipeline was deactivated")
    a = sim.state.activities["a"]
    assert a.status == CANCELED and a.cancellation_reason == "the pipeline was deactivated"
    assert a.to_dict()["cancellationReason"] == "the pipeline was deactivated"
    assert any(e.reason == "RunCancelled" and "deactivated" in e.message for e in sim.events)


# ---------------------------------------------------------------------------- pause
def test_pause_holds_what_has_not_started_and_resume_goes_on() -> None:
    """"`PAUSED` The component was paused and is not currently performing its work\\." (Interpreting Pipeline
    Status Codes)"""
    sim = Sim(pipeline(shell("a"), shell("b", "a"), shell("r", maximumRetries=1, retryDelay="5s")))
    sim.step()
    sim.finish(sim.job("r", 1), code=1)
    sim.step(1)
    sim.step(1, paused=True)
    assert sim.status("a") == RUNNING and sim.status("b") == PAUSED and sim.status("r") == PAUSED
    assert sim.state.phase == PHASE_PAUSED and any(e.reason == "RunPaused" for e in sim.events)
    sim.finish(sim.job("a", 1))
    sim.step(10)
    assert sim.status("a") == FINISHED and sim.job("b", 1) not in sim.jobs and sim.job("r", 2) not in sim.jobs
    sim.step(1, paused=False)
    assert sim.job("b", 1) in sim.jobs and sim.job("r", 2) in sim.jobs
    assert sim.state.phase == PHASE_RUNNING and any(e.reason == "RunResumed" for e in sim.events)
    for job in (sim.job("b", 1), sim.job("r", 2)):
        sim.finish(job)
    sim.step(1)
    assert sim.state.phase == SUCCEEDED


# ---------------------------------------------------------------------------- messages
def test_data_node_messages() -> None:
    """Every user-visible message is tested: data node events."""
    d = pipeline(shell("a", maximumRetries=0, output=["out"]), shell("s", input=["in"]),
                 dataNodes=[{"name": "out", "type": "S3DataNode", "directoryPath": "s3://b/o/", **CASCADE},
                            {"name": "in", "type": "S3DataNode", "filePath": "s3://b/k", "precondition": ["e"]}],
                 preconditions=[{"name": "e", "type": "Exists"}])
    sim = Sim(d)
    sim.step()
    sim.finish(sim.created_kinds("precondition")[0])
    fail_for_good(sim, "a")
    messages = {e.reason: e.message for e in sim.events}
    assert messages["DataNodeCascadeFailed"] == "data node out: upstream activity a failed"
    assert messages["DataNodeReady"] == "data node in is ready: its preconditions hold"
    assert messages["PreconditionMet"] == "activity s: precondition in/e holds"


def test_paused_and_blocked_waiting_on() -> None:
    """Every user-visible message is tested: waitingOn while paused, and behind a failed input data node."""
    d = pipeline(shell("a"), shell("b", "a"), shell("c", input=["in"]),
                 dataNodes=[{"name": "in", "type": "S3DataNode", "filePath": "s3://b/k", "precondition": ["e"]}],
                 preconditions=[{"name": "e", "type": "Exists", "maximumRetries": 0}])
    sim = Sim(d)
    sim.step()
    sim.finish(sim.created_kinds("precondition")[0], code=3)
    sim.step(1)
    assert sim.state.activities["c"].waiting_on == ("data node in FAILED: precondition e failed: its check failed "
                                                    "1 time(s), more than its maximumRetries (0): check failed "
                                                    "(exit code 3)")
    assert any(e.reason == "DataNodeFailed" and e.message == "data node in: precondition e failed: its check failed "
               "1 time(s), more than its maximumRetries (0): check failed (exit code 3)" for e in sim.events)
    sim.step(1, paused=True)
    assert sim.state.activities["b"].waiting_on == "the pipeline is paused"
    assert any(e.reason == "RunPaused" and e.message == f"run {RUN} paused" for e in sim.events)
    sim.step(1, paused=False)
    assert any(e.reason == "RunResumed" and e.message == f"run {RUN} resumed" for e in sim.events)
