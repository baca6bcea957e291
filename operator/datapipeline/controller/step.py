"""One reconcile step of a run, still pure: state machine + resolution + Job manifests.

A task whose expressions cannot be resolved for this run never gets a Job: it is fed back to the
state machine as a failed attempt with the invalid-task exit code (no retry), and the machine is
asked again, until nothing new fails to resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datapipeline.core.model import PipelineDefinition
from datapipeline.core.resolve import ResolveError, RunContext, resolve_command
from datapipeline.core.runstate import (
    CreateJob,
    DeleteJob,
    Emit,
    JobFact,
    RunSpec,
    RunState,
    reconcile,
)
from datapipeline.core.task import EXIT_INVALID_TASK, TaskResult
from datapipeline.k8s.jobs import LABEL_RERUN, Owner, build_job_spec
from datapipeline.k8s.taskattempts import build_task_attempt


@dataclass
class StepResult:
    state: RunState
    # command, manifest: a Job, or a TaskAttempt for a poll worker group
    create: list[tuple[CreateJob, dict[str, Any]]] = field(default_factory=list)
    delete: list[DeleteJob] = field(default_factory=list)
    events: list[Emit] = field(default_factory=list)
    wake_at: datetime | None = None


def step(definition: PipelineDefinition, spec: RunSpec, state: RunState, jobs: Mapping[str, JobFact], now: datetime,
         *, context: RunContext, namespace: str, owner: Owner, pipeline: str,
         capacity: Mapping[str, int] | None = None, environ: Mapping[str, str] | None = None) -> StepResult:
    facts = dict(jobs)
    result = StepResult(state=state)
    for _ in range(20):
        decision = reconcile(definition, spec, result.state, facts, now, capacity)
        result.state, result.wake_at = decision.state, decision.wake_at
        broken = False
        for command in decision.commands:
            if isinstance(command, DeleteJob):
                result.delete.append(command)
            elif isinstance(command, Emit):
                result.events.append(command)
            elif isinstance(command, CreateJob):
                if command.name in facts:
                    continue  # it exists (an earlier pass created it) or an earlier round planned it
                try:
                    resolved = resolve_command(definition, context, command.kind, command.object, command.activity,
                                               command.attempt, command.guarded_node, command.node, now)
                except ResolveError as error:
                    facts[command.name] = JobFact(command.name, "failed", started=now, finished=now,
                                                  exit_code=EXIT_INVALID_TASK,
                                                  result=TaskResult("FAILED", error_id="Expression",
                                                                    error_message=str(error)))
                    result.events.append(Emit("ResolveFailed", f"{command.kind} {command.object} of "
                                              f"{command.activity}: {error}", "Warning"))
                    broken = True
                    continue
                group = definition.worker_group_of(command.kind, command.object, command.activity)
                if group is not None and group.polled:  # claimed by a poller of the group, not a Job
                    manifest = build_task_attempt(name=command.name, namespace=namespace, owner=owner,
                                                  pipeline=pipeline, task=resolved.task, definition=definition,
                                                  activity=command.activity, group=group,
                                                  secrets=resolved.secrets, deadline=command.deadline,
                                                  extra_env=dict(resolved.env))
                else:
                    manifest = build_job_spec(name=command.name, namespace=namespace, owner=owner,
                                              pipeline=pipeline, task=resolved.task, definition=definition,
                                              activity=command.activity, secrets=resolved.secrets,
                                              deadline=command.deadline, environ=environ,
                                              extra_env=dict(resolved.env))
                if command.rerun:
                    manifest["metadata"]["labels"][LABEL_RERUN] = "true"
                result.create.append((command, manifest))
                facts[command.name] = JobFact(command.name, "active")
        if not broken:
            break
    return result


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) turning ``old`` into ``new``: removed keys become null."""
    patch: dict[str, Any] = {}
    for key in old:
        if (key not in new or new[key] is None) and old[key] is not None:
            patch[key] = None
    for key, value in new.items():
        if value is None:
            continue
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = merge_patch(before, value)
            if sub:
                patch[key] = sub
        elif before != value:
            patch[key] = value
    return patch
