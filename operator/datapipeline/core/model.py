"""The typed definition model: what a Pipeline's spec means once parsed.

Built by :mod:`datapipeline.core.definition` from a manifest's ``spec``; every
reference is resolved, defaults and ``parent`` inheritance are applied, and
the activity graph is known to be acyclic. String fields still hold their
``#{...}`` expressions: they are evaluated per scheduled interval.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from datapipeline.core.durations import Period

# Our defaults (the Developer Guide states none; it caps retries at 5 per task and their delay at 2 minutes
# minimum, "AWS Data Pipeline Limits"). See README "Retries" and docs/run-semantics.md.
DEFAULT_MAXIMUM_RETRIES = 2
DEFAULT_RETRY_DELAY = timedelta(minutes=10)
DEFAULT_PRECONDITION_MAXIMUM_RETRIES = 2
DEFAULT_PRECONDITION_RETRY_DELAY = timedelta(minutes=1)
# Concurrent runs of an on-demand pipeline unless defaults.maxActiveInstances says otherwise (the guide's default).
DEFAULT_ONDEMAND_MAX_ACTIVE = 1

SCHEDULE_TYPES = ("cron", "timeseries", "ondemand")
# The name of spec.schedule among spec.schedules: what an object without a schedule field runs on.
DEFAULT_SCHEDULE = "default"
MISSED_RUN_POLICIES = ("RunAll", "RunLatest", "Skip")


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


@dataclass(frozen=True)
class Schedule:
    cron: str | None = None
    period: Period | None = None
    time_zone: str = "UTC"
    start: datetime | None = None  # None: at first activation
    end: datetime | None = None
    occurrences: int | None = None


@dataclass(frozen=True)
class Parameter:
    id: str
    type: str = "String"
    description: str = ""
    optional: bool = False
    allowed_values: tuple[str, ...] = ()
    default: str | list[str] | None = None
    is_array: bool = False
    masked: bool = False  # id written with a leading *: the value is a secret
    overridable: bool = False  # a PipelineRun may set it (spec.values)
    pattern: str | None = None  # RE2, matched in full
    secret: SecretRef | None = None  # masked parameters: where the value comes from


@dataclass(frozen=True)
class PipelineObject:
    """One named object of any section, after inheritance.

    ``fields`` holds the type-specific fields as written (references as names,
    lists normalised to tuples); ``vars`` the user-defined my* fields.
    """

    section: str
    name: str
    type: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    path: str = ""  # where it was written, e.g. spec.dataNodes[1]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def refs(self, name: str) -> tuple[str, ...]:
        value = self.fields.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        return tuple(value)


@dataclass(frozen=True)
class Activity(PipelineObject):
    """An activity with its scheduling-relevant fields typed."""

    depends_on: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    preconditions: tuple[str, ...] = ()
    runs_on: str | None = None
    worker_group: str | None = None
    maximum_retries: int = DEFAULT_MAXIMUM_RETRIES
    retry_delay: timedelta = DEFAULT_RETRY_DELAY
    attempt_timeout: timedelta | None = None
    late_after_timeout: timedelta | None = None
    report_progress_timeout: timedelta | None = None
    on_fail: tuple[str, ...] = ()
    on_success: tuple[str, ...] = ()
    on_late_action: tuple[str, ...] = ()
    failure_and_rerun_mode: str = "none"
    max_active_instances: int | None = None
    schedule: str = DEFAULT_SCHEDULE  # the name of the schedule whose runs hold this activity


# How a worker group's attempts are run (docs/worker-groups.md).
WORKER_MODE_POLL = "poll"  # a TaskAttempt that pollers of the group claim (AWS's Task Runner)
WORKER_MODE_NODE_SELECTOR = "nodeSelector"  # a Job whose pod runs on nodes labelled with the group
WORKER_MODES = (WORKER_MODE_POLL, WORKER_MODE_NODE_SELECTOR)
DEFAULT_LEASE_SECONDS = 60


@dataclass(frozen=True)
class WorkerGroup:
    """One entry of spec.workerGroups."""

    name: str
    mode: str = WORKER_MODE_POLL
    lease_seconds: int = DEFAULT_LEASE_SECONDS

    @property
    def polled(self) -> bool:
        return self.mode == WORKER_MODE_POLL


@dataclass(frozen=True)
class Lifecycle:
    """What the spec asks of the pipeline as a whole, besides its schedule (AWS activate/deactivate, PAUSE)."""

    paused: bool = False  # no new runs; active runs start nothing new until resumed
    activate_from: datetime | None = None  # AWS activate --start-timestamp: earlier intervals are SKIPPED
    cancel_active_on_deactivate: bool = True  # AWS deactivate-pipeline (false: --no-cancel-active)


@dataclass(frozen=True)
class AwsSettings:
    """Where the S3-compatible store, SNS and DynamoDB are, and which Secret holds the keys."""

    region: str = "us-east-1"
    s3_endpoint_url: str | None = None
    sns_endpoint_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    s3_path_style: bool = False
    credentials_secret: str | None = None  # keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY


@dataclass(frozen=True)
class PipelineDefinition:
    schedule: Schedule | None
    schedule_type: str
    activated: bool
    missed_run_policy: str
    max_active_runs: int
    successful_runs_history_limit: int
    failed_runs_history_limit: int
    pipeline_log_uri: str | None
    runner_image: str | None
    aws: AwsSettings
    parameters: Mapping[str, Parameter]
    values: Mapping[str, str | list[str]]
    vars: Mapping[str, str]
    activities: Mapping[str, Activity]
    objects: Mapping[str, Mapping[str, PipelineObject]]  # section -> name -> object (all but activities)
    lifecycle: Lifecycle = Lifecycle()
    defaults: Mapping[str, Any] = field(default_factory=dict)  # spec.defaults (the AWS Default object)
    named_schedules: Mapping[str, Schedule] = field(default_factory=dict)  # spec.schedules
    warnings: tuple[str, ...] = ()  # accepted but worth saying (e.g. a resource's schedule changes nothing)
    worker_groups: Mapping[str, WorkerGroup] = field(default_factory=dict)  # spec.workerGroups
    run_schedule: str = DEFAULT_SCHEDULE  # for_schedule(): the schedule whose activities this view holds

    def for_schedule(self, name: str) -> PipelineDefinition:
        """The definition as one run of schedule ``name`` sees it: only that schedule's activities. Their
        dependsOn may still name activities of other schedules: those are external dependencies."""
        view = self._views.get(name)
        if view is None:  # made once per definition: each pass of a run asks again, and views cache their order
            held = {n: a for n, a in self.activities.items() if a.schedule == name}
            view = self._views[name] = replace(self, activities=held, run_schedule=name)
        return view

    @cached_property
    def _views(self) -> dict[str, PipelineDefinition]:
        return {}

    def worker_group_of(self, kind: str, name: str, activity: str | None) -> WorkerGroup | None:
        """Where a task runs when not in an ordinary pod: the worker group of an activity without runsOn; for
        a precondition check, its own runsOn/workerGroup, else its activity's. Actions always run as Jobs."""
        owner = self.activities.get(activity or "") if kind != "activity" else self.activities.get(name)
        group: str | None = None
        if kind == "precondition":
            check = self.objects.get("preconditions", {}).get(name)
            if check is not None and check.get("runsOn"):
                return None
            group = check.get("workerGroup") if check is not None else None
        if group is None and kind in ("activity", "precondition") and owner is not None and not owner.runs_on:
            group = owner.worker_group
        return self.worker_groups.get(str(group)) if group else None

    @property
    def own_schedule(self) -> Schedule | None:
        """The schedule of this view's runs (the default schedule unless made by for_schedule)."""
        return self.schedules.get(self.run_schedule)

    def external_dependencies(self, name: str) -> tuple[str, ...]:
        """The activities ``name`` depends on that runs of another schedule hold."""
        return tuple(d for d in self.activities[name].depends_on if d not in self.activities)

    @property
    def schedules(self) -> dict[str, Schedule]:
        """Every schedule by name: spec.schedule as "default", then spec.schedules."""
        found = {DEFAULT_SCHEDULE: self.schedule} if self.schedule is not None else {}
        return {**found, **self.named_schedules}

    @property
    def schedule_names(self) -> list[str]:
        """The schedules that hold at least one activity, the default first (each makes its own runs)."""
        used = {a.schedule for a in self.activities.values()}
        return [n for n in (DEFAULT_SCHEDULE, *self.named_schedules) if n in used]

    def node_schedule(self, node: str) -> str:
        """The schedule of a data node: its own field, else the one in defaults, else the default."""
        obj = self.objects.get("dataNodes", {}).get(node)
        named = obj.get("schedule") if obj is not None else None
        return str(named or self.defaults.get("schedule") or DEFAULT_SCHEDULE)

    @property
    def ondemand_max_active(self) -> int:
        """How many runs of an on-demand pipeline may be active at once (Default's maxActiveInstances)."""
        return int(self.defaults.get("maxActiveInstances") or DEFAULT_ONDEMAND_MAX_ACTIVE)

    def object(self, section: str, name: str) -> PipelineObject:
        if section == "activities":
            return self.activities[name]
        return self.objects[section][name]

    def find(self, name: str, sections: tuple[str, ...]) -> PipelineObject | None:
        for section in sections:
            table = self.activities if section == "activities" else self.objects.get(section, {})
            if name in table:
                return table[name]
        return None

    def topological_order(self) -> list[str]:
        """Activity names, each after everything it depends on; ties keep the written order."""
        return list(self._order)

    @cached_property
    def _order(self) -> tuple[str, ...]:
        """Kahn's algorithm, the earliest written ready activity first: every pass of every run walks it, so
        it is computed once per definition (and per schedule's view) in O(n log n + edges)."""
        written = {name: i for i, name in enumerate(self.activities)}
        waiting = {n: {d for d in a.depends_on if d in written} for n, a in self.activities.items()}
        children: dict[str, list[str]] = {n: [] for n in written}
        for name, deps in waiting.items():
            for dep in deps:
                children[dep].append(name)
        ready = [written[n] for n, deps in waiting.items() if not deps]
        heapq.heapify(ready)
        names, done = list(written), []
        while ready:
            name = names[heapq.heappop(ready)]
            done.append(name)
            for child in children[name]:
                waiting[child].discard(name)
                if not waiting[child]:
                    heapq.heappush(ready, written[child])
        if len(done) != len(names):  # pragma: no cover - the parser rejects cycles
            raise ValueError("dependency cycle")
        return tuple(done)

    def downstream_of(self, name: str) -> set[str]:
        """Every activity that depends, directly or not, on ``name``."""
        children: dict[str, set[str]] = {n: set() for n in self.activities}
        for activity in self.activities.values():
            for dep in activity.depends_on:
                if dep in children:  # an activity of another schedule's runs is not downstream here
                    children[dep].add(activity.name)
        found: set[str] = set()
        stack = [name]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found
