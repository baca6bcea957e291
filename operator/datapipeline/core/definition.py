"""Parse and check a Pipeline spec into a :class:`PipelineDefinition`.

Every problem is collected with the path of the field it is about, so a user
sees them all at once (``spec.activities[2].dependsOn[0]: no activity named
"lod"; did you mean "load"?``). Nothing here raises anything but
:class:`DefinitionError`.

What this accepts matches what the CRD schema (generated from the same
catalogue) accepts, and is stricter where a rule is not cheap to say in the
schema: a manifest ``datapipeline validate`` accepts is one the API server
accepts too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError

from datapipeline.core import catalog, kubevalues, sparkconf
from datapipeline.core.catalog import (
    COMMON_FIELDS,
    LITERAL_FIELDS,
    SECTIONS,
    SHELL_CODE_FIELDS,
    TYPES,
    FieldSpec,
    Kind,
    TypeSpec,
)
from datapipeline.core.crossrun import wait_problems
from datapipeline.core.durations import DurationError, Period, parse_duration, parse_period
from datapipeline.core.emrsteps import StepError, parse_step, split_step
from datapipeline.core.expressions import ExpressionError, Template, has_expression, parse_template
from datapipeline.core.limits import (
    DEFAULT_LIMITS,
    Limits,
    clip,
    expansion_problems,
    int_too_large,
    schedule_problems,
    spec_problems,
)
from datapipeline.core.model import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAXIMUM_RETRIES,
    DEFAULT_RETRY_DELAY,
    DEFAULT_SCHEDULE,
    MISSED_RUN_POLICIES,
    SCHEDULE_TYPES,
    WORKER_MODE_NODE_SELECTOR,
    WORKER_MODE_POLL,
    WORKER_MODES,
    Activity,
    AwsSettings,
    Lifecycle,
    Parameter,
    PipelineDefinition,
    PipelineObject,
    Schedule,
    SecretRef,
    WorkerGroup,
)
from datapipeline.core.problems import Collector, DefinitionError, Problem, did_you_mean
from datapipeline.core.task import masked_env_name
from datapipeline.core.values import pattern_problem, value_problem

GROUP = "datapipeline.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
VAR_PATTERN = re.compile(r"^\*?my[A-Za-z0-9_]+$")
MAX_NAMED_SCHEDULES = 20  # spec.schedules (the CRD says the same)
SCHEDULE_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$")
# A poll group names its pollers' ServiceAccounts and is a label value; a nodeSelector group is a label value.
POLL_GROUP_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
NODE_GROUP_PATTERN = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
MAX_WORKER_GROUPS = 50
LEASE_SECONDS_RANGE = (10, 3600)
METADATA_NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$")

PARAMETER_TYPES = ("String", "Integer", "Double", "AWS::S3::ObjectKey")
BIG_DATA_ACTIVITIES = ("EmrActivity", "HiveActivity", "HiveCopyActivity", "PigActivity", "HadoopActivity")
# Types the catalogue knows (the importer and the CRD take them) but validation rejects: nothing runs them.
UNSUPPORTED_TYPES = frozenset({"PigActivity"})
COPY_NODE_TYPES = ("S3DataNode", "SqlDataNode", "MySqlDataNode")
REDSHIFT_UNLOAD_TARGETS = ("S3DataNode", "SqlDataNode", "MySqlDataNode", "RedshiftDataNode")
# Field names AWS users write inline that must be Secret references here.
INLINE_SECRETS = {"password": "passwordSecret", "*password": "passwordSecret", "*username": "usernameSecret"}

# Runtime fields an expression may read (AWS "@" fields); evaluated per run.
RUNTIME_FIELDS = frozenset({
    "@scheduledStartTime", "@scheduledEndTime", "@actualStartTime", "@actualEndTime",
    "@id", "@name", "@pipelineId", "@status", "@attemptCount", "@sphere", "@version",
    "@runName", "@triggerTime",
})
# Runtime fields of the object that triggered an action or precondition (node.*).
NODE_FIELDS = RUNTIME_FIELDS | {"errorMessage", "errorId", "errorStackTrace", "@cascadeFailedOn",
                                "cancellationReason", "@failureReason", "@waitingOn"}
# Fields every object has, readable as #{name} and #{type}.
OBJECT_FIELDS = frozenset({"id", "name", "type"})

SPEC_FIELDS: dict[str, str] = {
    "activated": "bool", "schedule": "object", "scheduleType": "enum", "missedRunPolicy": "enum",
    "maxActiveRuns": "int", "successfulRunsHistoryLimit": "int", "failedRunsHistoryLimit": "int",
    "pipelineLogUri": "string", "runnerImage": "string", "aws": "object", "parameters": "list",
    "values": "object", "defaults": "object", "description": "string", "schedules": "object",
    "workerGroups": "object", "paused": "bool", "activateFrom": "string", "cancelActiveOnDeactivate": "bool",  # the pipeline's lifecycle
    **{s: "list" for s in SECTIONS},
}
AWS_FIELDS = ("region", "s3EndpointUrl", "snsEndpointUrl", "dynamodbEndpointUrl", "s3PathStyle",
              "credentialsSecret")
# A fixed instant from which a cron expression must fire at least once (croniter searches ~50 years).
_CRON_PROBE = datetime(2000, 1, 1)


def parse_pipeline(spec: Mapping[str, Any], path: str = "spec", limits: Limits = DEFAULT_LIMITS) -> PipelineDefinition:
    """Parse a Pipeline's spec; raise DefinitionError listing every problem.

    ``limits`` bound its size and schedule (the operator passes its administrator's, e.g. the minimum period);
    a spec beyond a size limit is refused before anything else reads it.
    """
    bounds = spec_problems(spec, path, limits)
    if bounds:
        raise DefinitionError(bounds)
    definition = _Parser(path, limits).parse(spec)
    expanding = expansion_problems(definition, path, limits)
    if expanding:
        raise DefinitionError(expanding)
    return definition


def parse_manifest(doc: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> PipelineDefinition:
    """Check a whole Pipeline manifest (apiVersion, kind, metadata) and parse its spec."""
    problems = Collector()
    if not isinstance(doc, Mapping):
        raise DefinitionError([Problem("", "a Pipeline manifest must be a mapping")])
    if doc.get("apiVersion") != API_VERSION:
        problems.add("apiVersion", f'must be "{API_VERSION}", not {_show(doc.get("apiVersion"))}')
    if doc.get("kind") != "Pipeline":
        problems.add("kind", f'must be "Pipeline", not {_show(doc.get("kind"))}')
    metadata = doc.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        problems.add("metadata.name", "is required")
    elif not isinstance(metadata["name"], str) or not METADATA_NAME_PATTERN.match(metadata["name"]):
        problems.add("metadata.name", f"{_show(metadata['name'])} must be a DNS label of at most 53 characters: "
                     "lower case letters, digits and '-' (run names add a suffix)")
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        problems.add("spec", "is required and must be an object")
        problems.raise_if_any()
        raise AssertionError  # unreachable: raise_if_any raised
    try:
        definition = parse_pipeline(spec, limits=limits)
    except DefinitionError as error:
        problems.problems.extend(error.problems)
        problems.raise_if_any()
        raise
    problems.raise_if_any()
    return definition


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f'"{clip(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and int_too_large(value):
        return "a number of too many digits"
    return str(value)


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


class _Parser:
    def __init__(self, path: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.path = path
        self.limits = limits
        self.problems = Collector()
        self.masked: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ top level
    def parse(self, spec: Mapping[str, Any]) -> PipelineDefinition:
        if not isinstance(spec, Mapping):
            raise DefinitionError([_problem(self.path, "must be an object")])
        misspelt = self._unknown_keys(spec, SPEC_FIELDS, self.path)
        self._typed(spec, "description", str, None, self.path)
        schedule_type = self._enum(spec, "scheduleType", SCHEDULE_TYPES, "cron", self.path)
        schedule = self._schedule(spec.get("schedule"), f"{self.path}.schedule", schedule_type,
                                  misspelt="schedule" in misspelt)
        named = self._named_schedules(spec.get("schedules"), f"{self.path}.schedules", schedule_type)
        parameters = self._parameters(spec.get("parameters"), f"{self.path}.parameters")
        self.masked = frozenset(p.id for p in parameters.values() if p.masked)
        values = self._values(spec.get("values"), parameters, f"{self.path}.values")
        defaults = self._defaults(spec.get("defaults"), f"{self.path}.defaults")
        raw_objects = {s: self._section(spec.get(s), s) for s in SECTIONS}
        self._check_kube_names(raw_objects)
        objects = {s: self._inherit(s, raw_objects[s]) for s in SECTIONS}
        top_vars = dict(defaults.get("vars") or {})
        for table in objects.values():
            for obj in table.values():
                self._check_object(obj, objects)
        self._check_defaults(defaults, objects, f"{self.path}.defaults")
        warnings = self._check_schedule_refs(objects, defaults, named, schedule is not None)
        worker_groups = self._worker_groups(spec.get("workerGroups"), f"{self.path}.workerGroups")
        self._check_worker_group_refs(objects, defaults, worker_groups)
        activities = {name: self._activity(obj, defaults) for name, obj in objects["activities"].items()}
        if not activities and not raw_objects["activities"]:
            self.problems.add(f"{self.path}.activities", "a pipeline needs at least one activity")
        self._check_cycles(activities)
        for activity in activities.values():
            self._check_activity_semantics(activity, objects)
        names = _expression_names(parameters, top_vars)
        for section, table in objects.items():
            for obj in table.values():
                merged = activities.get(obj.name, obj) if section == "activities" else obj
                self._check_expressions(obj, merged, names, section)
        self._check_default_expressions(defaults, names, f"{self.path}.defaults")
        self._check_log_uri(spec.get("pipelineLogUri"), names)
        definition = PipelineDefinition(
            schedule=schedule,
            schedule_type=schedule_type,
            activated=bool(self._typed(spec, "activated", bool, False, self.path)),
            missed_run_policy=self._enum(spec, "missedRunPolicy", MISSED_RUN_POLICIES, "RunAll", self.path),
            max_active_runs=self._positive_int(spec, "maxActiveRuns", 1, self.path),
            successful_runs_history_limit=self._positive_int(spec, "successfulRunsHistoryLimit", 10, self.path,
                                                             allow_zero=True),
            failed_runs_history_limit=self._positive_int(spec, "failedRunsHistoryLimit", 10, self.path,
                                                         allow_zero=True),
            pipeline_log_uri=self._typed(spec, "pipelineLogUri", str, None, self.path),
            runner_image=self._typed(spec, "runnerImage", str, None, self.path),
            aws=self._aws(spec.get("aws"), f"{self.path}.aws"),
            parameters=parameters,
            values=values,
            vars=top_vars,
            activities=activities,
            objects={s: t for s, t in objects.items() if s != "activities"},
            lifecycle=self._lifecycle(spec, schedule_type),
            defaults=defaults,
            named_schedules=named,
            warnings=tuple(warnings),
            worker_groups=worker_groups,
        )
        self.problems.problems.extend(wait_problems(definition, self.limits.max_instances_per_wait))
        self._raise_if_any()
        return definition

    def _check_kube_names(self, raw_objects: Mapping[str, Mapping[str, tuple[Mapping[str, Any], str]]]) -> None:
        """Activities, preconditions and actions name Jobs: two names that differ only in case, '_' or '.'
        would make the same Job name (load_orders, load.orders -> load-orders)."""
        for section in ("activities", "preconditions", "actions"):
            seen: dict[str, str] = {}
            for name, (_, where) in raw_objects[section].items():
                key = re.sub(r"[^a-z0-9-]+", "-", name.lower())
                if key in seen:
                    self.problems.add(f"{where}.name", f'"{name}" and "{seen[key]}" make the same Kubernetes name '
                                      f'"{key}" (names are lower-cased and "_" and "." become "-"); rename one')
                else:
                    seen[key] = name

    def _raise_if_any(self) -> None:
        """Raise with every problem once (inherited fields can report the same problem twice)."""
        unique = list(dict.fromkeys(self.problems.problems))
        if unique:
            raise DefinitionError(unique)

    def _unknown_keys(self, data: Mapping[str, Any], known: Collection[str], path: str) -> set[str]:
        """Report unknown keys; return the known names they look like (typos)."""
        meant: set[str] = set()
        for key in data:
            if key not in known:
                hint = did_you_mean(str(key), known)
                self.problems.add(f"{path}.{key}", f'unknown field "{key}"{hint}')
                meant.update(_suggested(str(key), known))
        return meant

    def _typed(self, data: Mapping[str, Any], key: str, kind: type, default: Any, path: str) -> Any:
        value = data.get(key)
        if value is None:
            return default
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.problems.add(f"{path}.{key}", f"must be {_kind_word(kind)}, not {_show(value)}")
            return default
        return value

    def _enum(self, data: Mapping[str, Any], key: str, allowed: Sequence[str], default: str, path: str) -> str:
        value = data.get(key, default)
        if value not in allowed:
            self.problems.add(f"{path}.{key}", f"must be one of {', '.join(allowed)}, not {_show(value)}"
                              f"{_hint(str(value), allowed)}")
            return default
        return str(value)

    def _positive_int(self, data: Mapping[str, Any], key: str, default: int, path: str,
                      allow_zero: bool = False) -> int:
        value = self._typed(data, key, int, default, path)
        if value < (0 if allow_zero else 1):
            self.problems.add(f"{path}.{key}", f"must be at least {0 if allow_zero else 1}, not {value}")
            return default
        return int(value)

    def _lifecycle(self, spec: Mapping[str, Any], schedule_type: str) -> Lifecycle:
        """paused, activateFrom and cancelActiveOnDeactivate (AWS activate --start-timestamp, deactivate)."""
        start = None
        if spec.get("activateFrom") is not None:
            where = f"{self.path}.activateFrom"
            try:
                start = parse_instant(spec["activateFrom"])
            except ValueError:
                self.problems.add(where, f"{_show(spec['activateFrom'])} is not an ISO 8601 date-time")
            if schedule_type == "ondemand":
                self.problems.add(where, "an ondemand pipeline has no intervals to skip; remove activateFrom")
        return Lifecycle(paused=bool(self._typed(spec, "paused", bool, False, self.path)), activate_from=start,
                         cancel_active_on_deactivate=bool(self._typed(spec, "cancelActiveOnDeactivate", bool, True,
                                                                      self.path)))

    # ------------------------------------------------------------------ schedule
    def _named_schedules(self, raw: Any, path: str, schedule_type: str) -> dict[str, Schedule]:
        """spec.schedules: more schedules by name, for objects that say ``schedule: <name>``."""
        if raw is None:
            return {}
        if schedule_type == "ondemand":
            self.problems.add(path, "an ondemand pipeline has no schedules (AWS: on-demand pipelines do not "
                              "allow multiple schedules); remove them or use scheduleType cron")
            return {}
        if not isinstance(raw, Mapping):
            self.problems.add(path, "must be an object: schedule name -> schedule (cron or period)")
            return {}
        if len(raw) > MAX_NAMED_SCHEDULES:
            self.problems.add(path, f"{len(raw)} schedules are too many; at most {MAX_NAMED_SCHEDULES}")
            return {}
        found: dict[str, Schedule] = {}
        for key, value in raw.items():
            name, where = str(key), f"{path}.{key}"
            if name == DEFAULT_SCHEDULE:
                self.problems.add(where, f'"{DEFAULT_SCHEDULE}" is spec.schedule; give this schedule another name')
            elif not SCHEDULE_NAME_PATTERN.match(name):
                self.problems.add(where, f'schedule name "{clip(name)}" must be a DNS label of at most 20 '
                                  "characters: lower case letters, digits and '-' (it names runs and a label)")
            elif (schedule := self._schedule(value, where, schedule_type)) is not None:
                found[name] = schedule
        return found

    # ------------------------------------------------------------------ worker groups
    def _worker_groups(self, raw: Any, path: str) -> dict[str, WorkerGroup]:
        """spec.workerGroups: how each worker group's attempts run (docs/worker-groups.md)."""
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problems.add(path, f"must be an object: worker group name -> {{mode: {' or '.join(WORKER_MODES)}}}")
            return {}
        if len(raw) > MAX_WORKER_GROUPS:
            self.problems.add(path, f"{len(raw)} worker groups are too many; at most {MAX_WORKER_GROUPS}")
            return {}
        found: dict[str, WorkerGroup] = {}
        for key, value in raw.items():
            group = self._worker_group(str(key), value, f"{path}.{key}")
            if group is not None:
                found[group.name] = group
        return found

    def _worker_group(self, name: str, raw: Any, where: str) -> WorkerGroup | None:
        if not isinstance(raw, Mapping):
            self.problems.add(where, f"must be an object such as {{mode: {WORKER_MODE_POLL}}}")
            return None
        self._unknown_keys(raw, {"mode": "enum", "leaseSeconds": "int"}, where)
        mode = self._enum(raw, "mode", WORKER_MODES, WORKER_MODE_POLL, where)
        low, high = LEASE_SECONDS_RANGE
        lease = raw.get("leaseSeconds", DEFAULT_LEASE_SECONDS)
        if isinstance(lease, bool) or not isinstance(lease, int) or not low <= lease <= high:
            self.problems.add(f"{where}.leaseSeconds", f"must be a whole number of seconds from {low} to {high}")
            return None
        if mode == WORKER_MODE_POLL and not POLL_GROUP_PATTERN.match(name):
            self.problems.add(where, f'worker group name "{clip(name)}" must be a DNS label of at most 40 characters '
                              "(lower case letters, digits and '-') in mode poll: it names the pollers' "
                              "ServiceAccount and a label")
            return None
        if not NODE_GROUP_PATTERN.match(name):
            self.problems.add(where, f'worker group name "{clip(name)}" must be a label value (at most 63 letters, '
                              "digits, '-', '_' and '.')")
            return None
        return WorkerGroup(name=name, mode=mode, lease_seconds=lease)

    def _check_worker_group_refs(self, objects: Mapping[str, Mapping[str, PipelineObject]],
                                 defaults: Mapping[str, Any], groups: Mapping[str, WorkerGroup]) -> None:
        """Every workerGroup names a group of spec.workerGroups: routing is never a guess."""
        written = [(f"{self.path}.defaults.workerGroup", defaults.get("workerGroup"))]
        for section in ("activities", "preconditions"):
            written += [(f"{obj.path}.workerGroup", obj.fields.get("workerGroup"))
                        for obj in objects[section].values()]
        for where, value in written:
            if value is None or value in groups:
                continue
            listed = ", ".join(groups) or "none"
            self.problems.add(where, f"no worker group named {_show(value)} in spec.workerGroups (declared: "
                              f"{listed}); declare it with mode {WORKER_MODE_POLL} (pollers started with "
                              f"`datapipeline-runner poll --worker-group NAME` run its attempts) or mode "
                              f"{WORKER_MODE_NODE_SELECTOR} (its pods run on nodes labelled "
                              "datapipeline.io/worker-group=NAME)")

    def _check_schedule_refs(self, objects: Mapping[str, Mapping[str, PipelineObject]],
                             defaults: Mapping[str, Any], named: Mapping[str, Schedule],
                             has_default: bool) -> list[str]:
        """Every ``schedule`` field names a schedule; a resource's schedule is accepted with a warning."""
        known = ([DEFAULT_SCHEDULE] if has_default else []) + list(named)
        warnings: list[str] = []
        written = [(f"{self.path}.defaults.schedule", defaults.get("schedule"))]
        for section in ("activities", "dataNodes", "computeProfiles", "clusterProfiles"):
            written += [(f"{obj.path}.schedule", obj.fields.get("schedule")) for obj in objects[section].values()]
        for where, value in written:
            if value is None:
                continue
            if value not in known:
                listed = ", ".join(known) or "none (the pipeline is ondemand)"
                self.problems.add(where, f'no schedule named {_show(value)}; the schedules are: {listed}'
                                  f"{_hint(str(value), known)}")
            elif "Profiles[" in where:
                warnings.append(f"{where}: ignored: each attempt gets its own pod, so a resource's schedule "
                                "(AWS: one instance serving several activity instances) changes nothing here")
        return warnings

    def _schedule(self, raw: Any, path: str, schedule_type: str, misspelt: bool = False) -> Schedule | None:
        if raw is None:
            if schedule_type != "ondemand" and not misspelt:
                self.problems.add(path, 'is required unless scheduleType is "ondemand"')
            return None
        if not isinstance(raw, Mapping):
            self.problems.add(path, "must be an object with cron or period")
            return None
        known = {f.name: f for f in catalog.SCHEDULE_FIELDS}
        self._unknown_keys(raw, known, path)
        cron, period_text = raw.get("cron"), raw.get("period")
        if schedule_type == "ondemand":
            self.problems.add(path, 'an ondemand pipeline has no schedule; remove it or use scheduleType "cron"')
            return None
        if (cron is None) == (period_text is None):
            self.problems.add(path, "set exactly one of cron and period" +
                              (" (both are set)" if cron is not None else ""))
        time_zone = self._time_zone(raw.get("timeZone"), f"{path}.timeZone")
        if cron is not None:
            cron = self._cron(cron, f"{path}.cron")
        period: Period | None = None
        if period_text is not None:
            if not isinstance(period_text, str):
                self.problems.add(f"{path}.period", f'must be a string like "1 day", not {_show(period_text)}')
            else:
                try:
                    period = parse_period(period_text)
                except DurationError as error:
                    self.problems.add(f"{path}.period", str(error))
        start = self._datetime(raw, "startDateTime", path)
        if start is not None and raw.get("startAt") is not None:
            self.problems.add(path, "set at most one of startDateTime and startAt")
        if raw.get("startAt") not in (None, "FIRST_ACTIVATION_DATE_TIME"):
            self.problems.add(f"{path}.startAt", f'must be "FIRST_ACTIVATION_DATE_TIME", not {_show(raw["startAt"])}')
        end = self._datetime(raw, "endDateTime", path)
        occurrences = self._typed(raw, "occurrences", int, None, path)
        if end is not None and occurrences is not None:
            self.problems.add(f"{path}.occurrences", "set at most one of endDateTime and occurrences")
        if occurrences is not None and occurrences < 1:
            self.problems.add(f"{path}.occurrences", f"must be at least 1, not {occurrences}")
        if start and end and end <= start:
            self.problems.add(f"{path}.endDateTime", f"{_show(raw['endDateTime'])} must be after startDateTime "
                              f"{_show(raw['startDateTime'])}")
        schedule = Schedule(cron=cron, period=period, time_zone=time_zone, start=start, end=end, occurrences=occurrences)
        self.problems.problems.extend(schedule_problems(schedule, path, self.limits))
        return schedule

    def _time_zone(self, value: Any, path: str) -> str:
        if value is None:
            return "UTC"
        if isinstance(value, str) and value:
            try:
                ZoneInfo(value)
                return value
            except (ZoneInfoNotFoundError, ValueError, OSError):
                pass
        close = did_you_mean(str(value), _zone_names()) if isinstance(value, str) else ""
        self.problems.add(path, f"unknown time zone {_show(value)}{close or ''}; use an IANA name such as "
                          '"Europe/Berlin" or "UTC"')
        return "UTC"

    def _cron(self, cron: Any, path: str) -> str | None:
        if not isinstance(cron, str) or not croniter.is_valid(cron, second_at_beginning=True):
            self.problems.add(path, f"{_show(cron)} is not a valid cron expression "
                              '(5 fields "minute hour day-of-month month day-of-week", or 6 with seconds first)')
            return None
        try:
            croniter(cron, _CRON_PROBE, second_at_beginning=len(cron.split()) == 6).get_next(datetime)
        except (CroniterBadDateError, ValueError, KeyError, OverflowError):
            self.problems.add(path, f"{_show(cron)} never fires (no such date, e.g. February 30)")
            return None
        return cron

    def _datetime(self, raw: Mapping[str, Any], key: str, path: str) -> datetime | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            return parse_instant(value)
        except ValueError:
            self.problems.add(f"{path}.{key}", f"{_show(value)} is not a date-time; write it like "
                              '"2026-01-31T00:00:00Z"')
            return None

    def _aws(self, raw: Any, path: str) -> AwsSettings:
        if raw is None:
            return AwsSettings()
        if not isinstance(raw, Mapping):
            self.problems.add(path, "must be an object")
            return AwsSettings()
        self._unknown_keys(raw, AWS_FIELDS, path)
        return AwsSettings(
            region=self._typed(raw, "region", str, "us-east-1", path),
            s3_endpoint_url=self._typed(raw, "s3EndpointUrl", str, None, path),
            sns_endpoint_url=self._typed(raw, "snsEndpointUrl", str, None, path),
            dynamodb_endpoint_url=self._typed(raw, "dynamodbEndpointUrl", str, None, path),
            s3_path_style=bool(self._typed(raw, "s3PathStyle", bool, False, path)),
            credentials_secret=self._typed(raw, "credentialsSecret", str, None, path),
        )

    # ------------------------------------------------------------------ parameters
    def _parameters(self, raw: Any, path: str) -> dict[str, Parameter]:
        result: dict[str, Parameter] = {}
        for index, item in enumerate(self._list(raw, path)):
            where = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                self.problems.add(where, "must be an object with id and type")
                continue
            self._unknown_keys(item, [f.name for f in catalog.PARAMETER_FIELDS], where)
            pid = item.get("id")
            if not isinstance(pid, str) or not VAR_PATTERN.match(pid):
                self.problems.add(f"{where}.id", f"{_show(pid)} must start with my (AWS rule), then letters, digits "
                                  "or _, e.g. myInputPath")
                continue
            key = pid.lstrip("*")
            if key in result:
                self.problems.add(f"{where}.id", f'parameter "{key}" is defined twice')
            ptype = self._enum(item, "type", PARAMETER_TYPES, "String", where)
            optional = bool(self._typed(item, "optional", bool, False, where))
            is_array = bool(self._typed(item, "isArray", bool, False, where))
            for text_key in ("description", "helpText"):
                self._typed(item, text_key, str, None, where)
            allowed: tuple[str, ...] = ()
            raw_allowed = item.get("allowedValues")
            if raw_allowed is not None:
                if not isinstance(raw_allowed, list) or not all(isinstance(v, str) for v in raw_allowed):
                    self.problems.add(f"{where}.allowedValues", f"must be a list of strings, not {_show(raw_allowed)}")
                else:
                    allowed = tuple(raw_allowed)
            pattern = self._typed(item, "pattern", str, None, where)
            if pattern is not None and (problem := pattern_problem(pattern)):
                self.problems.add(f"{where}.pattern", problem)
                pattern = None
            default = self._parameter_default(item.get("default"), key, is_array, where)
            for value in default if isinstance(default, list) else [default] if default is not None else []:
                self._check_parameter_value(ptype, allowed, value, f"{where}.default", pattern)
            masked = pid.startswith("*")
            overridable = bool(self._typed(item, "overridable", bool, False, where))
            secret = self._parameter_secret(item, key, masked, overridable, default, where)
            result[key] = Parameter(
                id=key, type=ptype, description=str(item.get("description") or ""),
                optional=optional, allowed_values=allowed, default=default, is_array=is_array,
                masked=masked, overridable=overridable, pattern=pattern, secret=secret)
        return result

    def _parameter_default(self, default: Any, key: str, is_array: bool, where: str) -> str | list[str] | None:
        if default is None:
            return None
        if isinstance(default, list) and not is_array:
            self.problems.add(f"{where}.default", f'is a list but parameter "{key}" is not an array '
                              "(set isArray: true)")
            return None
        if isinstance(default, list) and all(_scalar(v) for v in default):
            return [str(v) for v in default]
        if _scalar(default):
            return str(default)
        self.problems.add(f"{where}.default", f"must be a string or a list of strings, not {_show(default)}")
        return None

    def _parameter_secret(self, item: Mapping[str, Any], key: str, masked: bool, overridable: bool,
                          default: Any, where: str) -> SecretRef | None:
        """A masked parameter's value comes from a Secret, so it never sits in a spec, a Job or a log."""
        raw = item.get("valueFromSecret")
        secret = self._value(_SECRET_FIELD, raw, f"{where}.valueFromSecret") if raw is not None else None
        if masked and overridable:
            self.problems.add(f"{where}.overridable", f'masked parameter "{key}" cannot be overridable: a run '
                              "would pass its secret in clear text")
        if masked and default is not None:
            self.problems.add(f"{where}.default", f'masked parameter "{key}" takes no inline value; put it in a '
                              "Secret and set valueFromSecret: {name: SECRET, key: KEY}")
        if not masked and raw is not None:
            self.problems.add(f"{where}.valueFromSecret", f'is only for masked parameters; write the id as '
                              f'"*{key}" so its value is treated as a secret')
        return SecretRef(secret["name"], secret["key"]) if isinstance(secret, Mapping) else None

    def _check_parameter_value(self, ptype: str, allowed: Sequence[str], value: str, path: str,
                               pattern: str | None = None) -> None:
        problem = value_problem(ptype, allowed, value, pattern)
        if problem:
            self.problems.add(path, problem)

    def _values(self, raw: Any, parameters: Mapping[str, Parameter], path: str) -> dict[str, str | list[str]]:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.problems.add(path, "must map parameter ids to values")
            return {}
        values: dict[str, str | list[str]] = {}
        for raw_key, value in raw.items():
            key = str(raw_key).lstrip("*")
            where = f"{path}.{raw_key}"
            param = parameters.get(key)
            if param is None:
                self.problems.add(where, f'no parameter "{key}" is defined{did_you_mean(key, parameters)}')
                continue
            if isinstance(value, list):
                if not param.is_array:
                    self.problems.add(where, f'parameter "{key}" is not an array (isArray: false), so its value '
                                      "must be a single string")
                    continue
                if not all(_scalar(v) for v in value):
                    self.problems.add(where, "must be a list of strings")
                    continue
                values[key] = [str(v) for v in value]
            elif _scalar(value):
                values[key] = str(value)
            else:
                self.problems.add(where, f"must be a string (or a list for isArray), not {_show(value)}")
                continue
            if param.masked:
                self.problems.add(where, f'masked parameter "{key}" takes no inline value; put it in a Secret and '
                                  "set valueFromSecret on the parameter")
                del values[key]
                continue
            for item in values[key] if isinstance(values[key], list) else [values[key]]:
                self._check_parameter_value(param.type, param.allowed_values, str(item), where, param.pattern)
        for param in parameters.values():
            if param.id not in values and param.default is None and not param.optional and param.secret is None:
                self.problems.add(f"{path}.{param.id}", f'parameter "{param.id}" needs a value (it has no default '
                                  "and is not optional)")
        return values

    def _defaults(self, raw: Any, path: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            self.problems.add(path, "must be an object (the AWS Default object)")
            return {}
        known = {f.name: f for f in catalog.DEFAULTS_FIELDS}
        result: dict[str, Any] = {}
        for key, value in raw.items():
            spec = known.get(key)
            if spec is None:
                hint = did_you_mean(str(key), known)
                if not hint and str(key).startswith("my"):
                    hint = f'; user-defined fields go under vars, e.g. vars: {{{key}: ...}}'
                self.problems.add(f"{path}.{key}", f'unknown field "{key}"{hint} (defaults take activity fields)')
                continue
            checked = self._value(spec, value, f"{path}.{key}")
            if checked is not None:
                result[key] = checked
        for var in result.get("vars") or {}:
            if not VAR_PATTERN.match(var) or var.startswith("*"):
                self.problems.add(f"{path}.vars.{var}", f'user-defined field "{var}" must start with my')
        return result

    def _check_defaults(self, defaults: Mapping[str, Any], objects: Mapping[str, Mapping[str, PipelineObject]],
                        path: str) -> None:
        """References in defaults are checked once, where they are written."""
        for spec in catalog.DEFAULTS_FIELDS:
            if spec.kind in (Kind.REF, Kind.REFS) and spec.name in defaults:
                value = defaults[spec.name]
                for index, ref in enumerate((value,) if isinstance(value, str) else value):
                    where = f"{path}.{spec.name}" + (f"[{index}]" if spec.kind is Kind.REFS else "")
                    self._check_ref(ref, spec, objects, where)

    # ------------------------------------------------------------------ sections
    def _list(self, raw: Any, path: str) -> list[Any]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.problems.add(path, f"must be a list, not {_show(raw)}")
            return []
        return raw

    def _section(self, raw: Any, section: str) -> dict[str, tuple[Mapping[str, Any], str]]:
        path = f"{self.path}.{section}"
        table: dict[str, tuple[Mapping[str, Any], str]] = {}
        for index, item in enumerate(self._list(raw, path)):
            where = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                self.problems.add(where, "must be an object with a name and a type")
                continue
            name = item.get("name")
            if name is None:
                self.problems.add(f"{where}.name", "is required: every object has a name, unique in its section")
                continue
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                self.problems.add(f"{where}.name", f"{_show(name)} is not a valid name: start with a letter, then "
                                  "letters, digits, '-', '_' or '.', at most 63 characters")
                continue
            if name in table:
                self.problems.add(f"{where}.name", f'"{name}" is already the name of {table[name][1]}')
                continue
            table[name] = (item, where)
        return table

    def _inherit(self, section: str, table: dict[str, tuple[Mapping[str, Any], str]]) -> dict[str, PipelineObject]:
        """Apply ``parent`` inheritance within a section, then check each object's fields."""
        resolved: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}

        def merged(name: str, chain: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
            """The object's fields with its parents', and for each field the path of the object it came from."""
            if name in resolved:
                return resolved[name]
            raw, where = table[name]
            parent = raw.get("parent")
            base: dict[str, Any] = {}
            origins: dict[str, str] = {}
            if parent is not None:
                if not isinstance(parent, str):
                    self.problems.add(f"{where}.parent", f"must be the name of another {_singular(section)}, "
                                      f"not {_show(parent)}")
                elif parent in chain:
                    self.problems.add(f"{where}.parent", "parent cycle: " + " -> ".join([*chain, parent]))
                elif parent not in table:
                    self.problems.add(f"{where}.parent", f'no {_singular(section)} named "{parent}" in {section}'
                                      f"{did_you_mean(parent, table)}")
                else:
                    parent_fields, parent_origins = merged(parent, [*chain, parent])
                    base, origins = dict(parent_fields), dict(parent_origins)
            own = {k: v for k, v in raw.items() if k != "parent"}
            result = {**base, **own}
            origins.update({k: where for k in own})
            base_vars = base.get("vars") if isinstance(base.get("vars"), Mapping) else {}
            own_vars = raw.get("vars")
            if own_vars is not None and not isinstance(own_vars, Mapping):
                self.problems.add(f"{where}.vars", "must map my* names to strings")
                own_vars = {}
            result["vars"] = {**(base_vars or {}), **(own_vars or {})}
            resolved[name] = (result, origins)
            return result, origins

        objects: dict[str, PipelineObject] = {}
        for name, (_, where) in table.items():
            data, origins = merged(name, [name])
            obj = self._object(section, name, data, where, origins)
            if obj is not None:
                objects[name] = obj
        return objects

    def _object(self, section: str, name: str, data: Mapping[str, Any], where: str,
                origins: Mapping[str, str]) -> PipelineObject | None:
        type_name = data.get("type") or catalog.default_type(section)
        choices = [t.name for t in catalog.types_in(section)]
        type_path = f"{origins.get('type', where)}.type"
        if type_name is None:
            self.problems.add(type_path, f"is required; one of {', '.join(choices)}")
            return None
        type_spec = TYPES.get(type_name) if isinstance(type_name, str) else None
        if type_spec is None or type_spec.section != section:
            elsewhere = f' ("{type_name}" belongs in {type_spec.section})' if type_spec else ""
            self.problems.add(type_path, f'unknown {_singular(section)} type {_show(type_name)}{elsewhere}; one of '
                              f"{', '.join(choices)}{did_you_mean(str(type_name), choices) if not elsewhere else ''}")
            return None
        fields: dict[str, Any] = {}
        common = {f.name for f in COMMON_FIELDS}
        misspelt: set[str] = set()
        for key, value in data.items():
            if key in common:
                continue
            # An inherited field's problem is reported where it is written (the parent reports the same
            # problem at the same path; _raise_if_any says it once).
            origin = origins.get(key, where)
            spec = type_spec.field_map.get(key)
            if spec is None:
                self._no_such_field(type_spec, str(key), origin, name if origin != where else None)
                misspelt.update(_suggested(str(key), type_spec.field_map))
                continue
            checked = self._value(spec, value, f"{origin}.{key}")
            if checked is not None:
                fields[key] = checked
        obj_vars = data.get("vars") or {}
        for var, value in obj_vars.items():
            var_path = f"{origins.get('vars', where)}.vars.{var}"
            if not isinstance(var, str) or not VAR_PATTERN.match(var) or var.startswith("*"):
                self.problems.add(var_path, f'user-defined field "{var}" must start with my (AWS rule), '
                                  "e.g. myBucket")
            elif not isinstance(value, str):
                self.problems.add(var_path, f"must be a string, not {_show(value)}" +
                                  (f' (quote it: "{value}")' if _scalar(value) else ""))
        self._check_presence(type_spec, data, where, misspelt)
        return PipelineObject(section=section, name=name, type=type_spec.name, fields=fields,
                              vars={str(k): str(v) for k, v in obj_vars.items()}, path=where)

    def _no_such_field(self, type_spec: TypeSpec, key: str, path: str, heir: str | None) -> None:
        inherited = f' (inherited by "{heir}")' if heir else ""
        if key in INLINE_SECRETS and INLINE_SECRETS[key] in type_spec.field_map:
            self.problems.add(f"{path}.{key}", f"secrets are never written inline: put it in a Secret and set "
                              f"{INLINE_SECRETS[key]}: {{name: SECRET, key: KEY}}{inherited}")
            return
        hint = did_you_mean(key, type_spec.field_map)
        if not hint and key.startswith("my"):
            hint = f"; user-defined fields go under vars, e.g. vars: {{{key}: ...}}"
        self.problems.add(f"{path}.{key}", f'{type_spec.name} has no field "{key}"{hint}{inherited}')

    def _check_presence(self, type_spec: TypeSpec, data: Mapping[str, Any], where: str,
                        misspelt: Collection[str] = ()) -> None:
        """Required fields and one-of groups; a field the user meant but misspelt is reported once, as a typo."""
        for spec in type_spec.fields:
            if spec.required and spec.name not in data and spec.name not in misspelt:
                self.problems.add(f"{where}.{spec.name}", f"is required for {type_spec.name}")
        for group in type_spec.one_of:
            present = [g for g in group if g in data]
            if not present and not set(group) & set(misspelt):
                self.problems.add(f"{where}.{group[0]}", f"{type_spec.name} needs one of {_either(group)}")
            elif len(present) > 1:
                self.problems.add(f"{where}.{present[1]}", f"{type_spec.name} takes only one of {_either(group)}; "
                                  f"{' and '.join(present)} are set")
        for group in type_spec.at_most_one_of:
            present = [g for g in group if g in data]
            if len(present) > 1:
                self.problems.add(f"{where}.{present[1]}", f"{type_spec.name} takes at most one of "
                                  f"{_either(group)}; {' and '.join(present)} are set")

    def _value(self, spec: FieldSpec, value: Any, path: str) -> Any:
        """Check one field's value against its kind; return it normalised, or None after a problem."""
        kind = spec.kind
        if kind in (Kind.STRING, Kind.REF):
            if not isinstance(value, str):
                quote = f' (quote it: "{value}")' if _scalar(value) else ""
                self.problems.add(path, f"must be a string, not {_show(value)}{quote}")
                return None
            if spec.enum and value not in spec.enum:
                self.problems.add(path, f"must be one of {', '.join(spec.enum)}, not {_show(value)}"
                                  f"{_hint(value, spec.enum)}")
                return None
            return value
        if kind in (Kind.STRINGS, Kind.REFS):
            if isinstance(value, str):
                self.problems.add(path, f'must be a list, e.g. ["{value}"]')
                return None
            if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
                self.problems.add(path, f"must be a list of strings, not {_show(value)}" +
                                  (" (quote the numbers)" if isinstance(value, list) and all(map(_scalar, value))
                                   else ""))
                return None
            return tuple(value)
        if kind is Kind.INT:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.problems.add(path, f"must be a whole number >= 0, not {_show(value)}")
                return None
            return value
        if kind is Kind.BOOL:
            if not isinstance(value, bool):
                self.problems.add(path, f"must be true or false, not {_show(value)}")
                return None
            return value
        if kind is Kind.DURATION:
            try:
                return parse_duration(value)
            except DurationError as error:
                self.problems.add(path, str(error))
                return None
        if kind is Kind.SECRET_REF:
            if not (isinstance(value, Mapping) and isinstance(value.get("name"), str)
                    and isinstance(value.get("key"), str) and set(value) <= {"name", "key"}):
                missing = [k for k in ("name", "key") if isinstance(value, Mapping) and k not in value]
                detail = f" ({' and '.join(missing)} missing)" if missing else ""
                self.problems.add(path, f"must be a Secret reference {{name: SECRET, key: KEY}}{detail}; secrets "
                                  "are never written inline")
                return None
            return {"name": value["name"], "key": value["key"]}
        if kind is Kind.MAP:
            if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                self.problems.add(path, "must map names to strings (quote numbers and booleans)")
                return None
            return {str(k): v for k, v in value.items()}
        if kind is Kind.OBJECTS:
            if not isinstance(value, list) or not all(isinstance(i, Mapping) for i in value):
                self.problems.add(path, "must be a list of objects")
                return None
            return tuple(value)
        if not isinstance(value, Mapping):  # Kind.OBJECT
            self.problems.add(path, "must be an object")
            return None
        return value

    # ------------------------------------------------------------------ references and semantics
    def _check_ref(self, ref: str, spec: FieldSpec, objects: Mapping[str, Mapping[str, PipelineObject]],
                   where: str) -> bool:
        if any(ref in objects[s] for s in spec.ref_sections):
            return True
        candidates = [n for s in spec.ref_sections for n in objects[s]]
        what = " or ".join(_singular(s) for s in spec.ref_sections)
        elsewhere = [s for s in SECTIONS if s not in spec.ref_sections and ref in objects[s]]
        hint = (f' ("{ref}" is a {_singular(elsewhere[0])})' if elsewhere
                else did_you_mean(ref, candidates))
        self.problems.add(where, f'no {what} named "{ref}"{hint}')
        return False

    def _check_kubernetes_mode(self, obj: PipelineObject) -> None:
        """Mode kubernetes: the driver (the activity's pod) creates executorInstances executor pods through the API."""
        if not obj.fields.get("serviceAccountName"):
            self.problems.add(f"{obj.path}.serviceAccountName", "mode kubernetes needs a service account: the Spark "
                              "driver in the activity's pod creates the executor pods with its token (the chart's "
                              "sparkDriver.serviceAccount.create makes kdp-spark-driver, with exactly those rights; "
                              "docs/spark.md)")
        instances = obj.fields.get("executorInstances")
        if instances is None:
            self.problems.add(f"{obj.path}.executorInstances", "mode kubernetes needs executorInstances: how many "
                              "executor pods the driver starts (AWS coreInstanceCount), at least 1")
        elif isinstance(instances, int) and not isinstance(instances, bool) and instances < 1:
            self.problems.add(f"{obj.path}.executorInstances", f"must be at least 1 in mode kubernetes, not {instances}")
        memory = obj.fields.get("executorMemory")
        if isinstance(memory, str) and not kubevalues.quantity_problem(memory):
            try:
                sparkconf.heap_mib(memory, sparkconf.EXECUTOR_OVERHEAD_SHARE, "executorMemory",
                                   sparkconf.MIN_EXECUTOR_HEAP_MIB)
            except sparkconf.SparkConfError as e:
                self.problems.add(f"{obj.path}.executorMemory", str(e).removeprefix("executorMemory: "))

    def _check_profile(self, obj: PipelineObject) -> None:
        """Values a profile hands to the Job, by Kubernetes' own rules (the API server would refuse them)."""
        checks = (("cpu", kubevalues.quantity_problem), ("memory", kubevalues.quantity_problem),
                  ("driverCpu", kubevalues.quantity_problem), ("driverMemory", kubevalues.quantity_problem),
                  ("executorCpu", kubevalues.quantity_problem), ("executorMemory", kubevalues.quantity_problem),
                  ("serviceAccountName", kubevalues.dns_subdomain_problem), ("image", kubevalues.image_problem))
        for field_name, check in checks:
            value = obj.fields.get(field_name)
            if not isinstance(value, str):
                continue
            if has_expression(value):
                self.problems.add(f"{obj.path}.{field_name}", "is used as written: a profile's fields are not "
                                  "evaluated (#{...}), so a run can never choose an image, a service account or "
                                  "resources")
            elif problem := check(value):
                self.problems.add(f"{obj.path}.{field_name}", problem)
        if obj.fields.get("mode") == "kubernetes":
            self._check_kubernetes_mode(obj)
        for key, value in (obj.fields.get("nodeSelector") or {}).items():
            problem = kubevalues.label_key_problem(str(key)) or kubevalues.label_value_problem(str(value))
            if problem:
                self.problems.add(f"{obj.path}.nodeSelector.{key}", problem)
        for key in obj.fields.get("env") or {}:
            if problem := kubevalues.env_name_problem(str(key)):
                self.problems.add(f"{obj.path}.env.{key}", problem)
        for index, secret in enumerate(obj.fields.get("envFromSecrets") or ()):
            if problem := kubevalues.dns_subdomain_problem(str(secret)):
                self.problems.add(f"{obj.path}.envFromSecrets[{index}]", problem)

    def _check_object(self, obj: PipelineObject, objects: Mapping[str, Mapping[str, PipelineObject]]) -> None:
        if obj.section in ("computeProfiles", "clusterProfiles"):
            self._check_profile(obj)
        type_spec = TYPES[obj.type]
        for spec in type_spec.fields:
            if spec.kind not in (Kind.REF, Kind.REFS) or spec.name not in obj.fields:
                continue
            seen: set[str] = set()
            for index, ref in enumerate(obj.refs(spec.name)):
                where = f"{obj.path}.{spec.name}" + (f"[{index}]" if spec.kind is Kind.REFS else "")
                if ref in seen:
                    self.problems.add(where, f'"{ref}" is listed twice')
                    continue
                seen.add(ref)
                if (self._check_ref(ref, spec, objects, where) and obj.section == "activities"
                        and spec.name == "dependsOn" and ref == obj.name):
                    self.problems.add(where, f'activity "{obj.name}" cannot depend on itself')

    def _activity(self, obj: PipelineObject, defaults: Mapping[str, Any]) -> Activity:
        fields = {**{k: v for k, v in defaults.items() if k != "vars"}, **obj.fields}
        obj_vars = {**(defaults.get("vars") or {}), **obj.vars}

        def refs(name: str) -> tuple[str, ...]:
            value = fields.get(name)
            return () if value is None else (value,) if isinstance(value, str) else tuple(value)

        return Activity(
            section=obj.section, name=obj.name, type=obj.type, fields=fields, vars=obj_vars, path=obj.path,
            depends_on=refs("dependsOn"), inputs=refs("input"), outputs=refs("output"),
            preconditions=refs("precondition"), runs_on=fields.get("runsOn"), worker_group=fields.get("workerGroup"),
            maximum_retries=fields.get("maximumRetries", DEFAULT_MAXIMUM_RETRIES),
            retry_delay=fields.get("retryDelay", DEFAULT_RETRY_DELAY),
            attempt_timeout=fields.get("attemptTimeout"), late_after_timeout=fields.get("lateAfterTimeout"),
            report_progress_timeout=fields.get("reportProgressTimeout"),
            on_fail=refs("onFail"), on_success=refs("onSuccess"), on_late_action=refs("onLateAction"),
            failure_and_rerun_mode=fields.get("failureAndRerunMode", "none"),
            max_active_instances=fields.get("maxActiveInstances"),
            schedule=str(fields.get("schedule") or DEFAULT_SCHEDULE),
        )

    def _check_cycles(self, activities: Mapping[str, Activity]) -> None:
        """Report each dependency cycle once, at the dependsOn entry that closes it (iterative DFS)."""
        state: dict[str, int] = {}  # 1 on the stack, 2 done
        reported: set[frozenset[str]] = set()
        for root in activities:
            if root in state:
                continue
            state[root] = 1
            stack: list[tuple[str, int]] = [(root, 0)]
            while stack:
                name, index = stack[-1]
                deps = activities[name].depends_on
                if index >= len(deps):
                    state[name] = 2
                    stack.pop()
                    continue
                stack[-1] = (name, index + 1)
                dep = deps[index]
                if dep not in activities or dep == name:  # unknown names and self-loops are reported elsewhere
                    continue
                if state.get(dep) == 1:
                    path = [n for n, _ in stack]
                    cycle = [*path[path.index(dep):], dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.problems.add(f"{activities[name].path}.dependsOn[{index}]",
                                          "dependency cycle: " + " -> ".join(cycle))
                elif dep not in state:
                    state[dep] = 1
                    stack.append((dep, 0))

    def _check_activity_semantics(self, activity: Activity,
                                  objects: Mapping[str, Mapping[str, PipelineObject]]) -> None:
        where = activity.path
        nodes = objects["dataNodes"]
        if activity.max_active_instances is not None and activity.max_active_instances < 1:
            self.problems.add(f"{where}.maxActiveInstances", "must be at least 1")
        big_data = activity.type in BIG_DATA_ACTIVITIES
        runs_on = activity.runs_on
        known_profile = runs_on in objects["clusterProfiles"] or runs_on in objects["computeProfiles"]
        if big_data and runs_on not in objects["clusterProfiles"] and (runs_on is None or known_profile):
            self.problems.add(f"{where}.runsOn", f"{activity.type} runs on a cluster profile (the EmrCluster "
                              "stand-in); name one from clusterProfiles" +
                              (f', not the compute profile "{runs_on}"' if runs_on else ""))
        if activity.type == "CopyActivity":
            for field, refs in (("input", activity.inputs), ("output", activity.outputs)):
                if len(refs) != 1:
                    self.problems.add(f"{where}.{field}", f"CopyActivity needs exactly one {field} data node, "
                                      f"not {len(refs)}")
                    continue
                node = nodes.get(refs[0])
                if node is not None and node.type not in COPY_NODE_TYPES:
                    self.problems.add(f"{where}.{field}[0]", f"CopyActivity copies between S3DataNode, SqlDataNode "
                                      f'and MySqlDataNode; "{node.name}" is a {node.type}')
            ins = [nodes[n] for n in activity.inputs if n in nodes]
            outs = [nodes[n] for n in activity.outputs if n in nodes]
            if ins and outs and ins[0].type != "S3DataNode" and outs[0].type != "S3DataNode":
                self.problems.add(f"{where}.output", "CopyActivity copies from or to S3: one of input and output "
                                  "must be an S3DataNode (use SqlActivity to copy between tables)")
        if activity.type == "RedshiftCopyActivity":
            self._check_redshift_copy(activity, nodes)
        if activity.type in UNSUPPORTED_TYPES:
            self._reject_pig(activity)
        if activity.type == "EmrActivity":
            self._check_steps(activity)

    def _check_steps(self, activity: Activity) -> None:
        """A step that cannot run here (EMR's own tools, no jar) fails validation, not every attempt at run time.
        A step whose jar or command is an expression is checked when it runs, with its value."""
        for index, step in enumerate(activity.fields.get("step") or ()):
            if not isinstance(step, str) or any("#{" in part for part in split_step(step)[:2]):
                continue
            try:
                parse_step(step)
            except StepError as error:
                self.problems.add(f"{activity.path}.step[{index}]", str(error))

    def _reject_pig(self, activity: Activity) -> None:
        """No honest Pig runtime exists for Spark 3 or Hadoop 3 (docs/spark.md): say so before anything runs."""
        script_field = "scriptUri" if activity.get("scriptUri") and not activity.get("script") else "script"
        self.problems.add(f"{activity.path}.{script_field}", "PigActivity is not supported: Apache Pig has no "
                          "runtime for Spark or Hadoop 3 here; write the script as a HiveActivity (Spark SQL: the "
                          "input is the table ${input1}, GROUP and FOREACH become SELECT ... GROUP BY, STORE becomes "
                          "INSERT OVERWRITE TABLE ${output1})")

    def _check_redshift_copy(self, activity: Activity, nodes: Mapping[str, PipelineObject]) -> None:
        """Into a warehouse table (OVERWRITE_EXISTING without primaryKeys uses the table's primary key, read at
        run time), or out of one: to S3 (unload) or to a SQL table."""
        where = activity.path
        if len(activity.inputs) != 1:
            self.problems.add(f"{where}.input", "RedshiftCopyActivity needs one input data node")
        ins = [nodes[n] for n in activity.inputs if n in nodes]
        outs = [nodes[n] for n in activity.outputs if n in nodes]
        unload = bool(ins) and ins[0].type == "RedshiftDataNode"
        allowed = REDSHIFT_UNLOAD_TARGETS if unload else ("RedshiftDataNode", "SqlDataNode")
        if len(activity.outputs) != 1 or (outs and outs[0].type not in allowed):
            self.problems.add(f"{where}.output", "RedshiftCopyActivity needs one output: a RedshiftDataNode, or, "
                              "from a RedshiftDataNode input, an S3DataNode or a SQL table")

    # ------------------------------------------------------------------ expressions
    def _check_expressions(self, obj: PipelineObject, merged: PipelineObject, names: frozenset[str],
                           section: str) -> None:
        """Check the #{...} in the fields the object itself sets; references see inherited fields too."""
        type_spec = TYPES[obj.type]
        local = set(merged.fields) | set(merged.vars) | OBJECT_FIELDS
        refs_set = {f.name for f in type_spec.fields if f.kind in (Kind.REF, Kind.REFS) and f.name in merged.fields}
        ref_fields = {f.name for f in type_spec.fields if f.kind in (Kind.REF, Kind.REFS)}
        for spec in type_spec.fields:
            if spec.kind not in (Kind.STRING, Kind.STRINGS) or spec.name not in obj.fields:
                continue
            values = obj.fields[spec.name]
            items = [values] if isinstance(values, str) else list(values)
            for index, text in enumerate(items):
                where = f"{obj.path}.{spec.name}" + (f"[{index}]" if spec.kind is Kind.STRINGS else "")
                self._check_text(text, where, local, names, ref_fields, refs_set, section)
        for var, text in obj.vars.items():
            self._check_text(text, f"{obj.path}.vars.{var}", local, names, ref_fields, refs_set, section)

    def _check_default_expressions(self, defaults: Mapping[str, Any], names: frozenset[str], path: str) -> None:
        local = set(defaults) | set(defaults.get("vars") or {}) | OBJECT_FIELDS
        ref_fields = {f.name for f in catalog.ACTIVITY_COMMON if f.kind in (Kind.REF, Kind.REFS)}
        for spec in catalog.DEFAULTS_FIELDS:
            if spec.kind is Kind.STRING and isinstance(defaults.get(spec.name), str):
                self._check_text(defaults[spec.name], f"{path}.{spec.name}", local, names, ref_fields, ref_fields,
                                 "activities")
        for var, text in (defaults.get("vars") or {}).items():
            self._check_text(text, f"{path}.vars.{var}", local, names, ref_fields, ref_fields, "activities")

    def _check_log_uri(self, text: Any, names: frozenset[str]) -> None:
        """spec.pipelineLogUri is evaluated for each attempt, in the scope of its activity."""
        if not isinstance(text, str):
            return
        local = {f.name for f in catalog.ACTIVITY_COMMON} | OBJECT_FIELDS
        ref_fields = {f.name for f in catalog.ACTIVITY_COMMON if f.kind in (Kind.REF, Kind.REFS)}
        self._check_text(text, f"{self.path}.pipelineLogUri", local, names, ref_fields, ref_fields, "activities")

    def _check_text(self, text: str, where: str, local: set[str], names: frozenset[str], ref_fields: set[str],
                    refs_set: set[str], section: str) -> None:
        try:
            template = parse_template(text)
        except ExpressionError as error:
            self.problems.add(where, f"bad expression: {error}")
            return
        if _field_of(where) in LITERAL_FIELDS and not template.is_constant:
            self.problems.add(where, "is used as written, never evaluated (a Secret's name is not computed); "
                              "write the name itself")
            return
        for ref in sorted(template.references()):
            problem = (_reference_problem(ref, local, names, ref_fields, refs_set, section)
                       or _runtime_scope_problem(ref, section) or self._masked_problem(ref, template, where))
            if problem:
                self.problems.add(where, problem)

    def _masked_problem(self, ref: str, template: Template, where: str) -> str | None:
        """A masked parameter lives in a Secret: only a shell command can read it, as a whole expression."""
        name = ref.lstrip("*")
        if name not in self.masked:
            return None
        field_name = _field_of(where)
        if field_name in SHELL_CODE_FIELDS and ref in template.bare_references():
            return None
        return (f'#{{{ref}}}: masked parameter "{name}" comes from a Secret, so only a shell command can use it, '
                f"alone in its expression (#{{*{name}}}); there it is the variable ${masked_env_name(name)}")


def _field_of(where: str) -> str:
    """The field a path ends in: spec.activities[0].command -> command, ...scriptArgument[2] -> scriptArgument."""
    return re.sub(r"\[\d+\]$", "", where).rsplit(".", 1)[-1]


def _expression_names(parameters: Mapping[str, Parameter], top_vars: Mapping[str, str]) -> frozenset[str]:
    return frozenset(parameters) | frozenset(top_vars) | RUNTIME_FIELDS


def _reference_problem(ref: str, local: set[str], names: frozenset[str], ref_fields: set[str], refs_set: set[str],
                       section: str) -> str | None:
    head, _, rest = ref.lstrip("*").partition(".")
    if not rest:
        if head in names or head in local:
            return None
        return f'#{{{ref}}} refers to nothing: no field, parameter or runtime field "{head}"' \
               f"{did_you_mean(head, [*names, *local])}"
    if head == "node":
        if section not in ("actions", "preconditions"):
            return f"#{{{ref}}}: node.* is only known inside actions and preconditions"
        return None
    if head == "parent":
        return None
    if head in ref_fields:
        if head not in refs_set:
            return f'#{{{ref}}}: this object sets no "{head}"'
        return None
    return f'#{{{ref}}}: "{head}" is not a reference field of this object' \
           f"{did_you_mean(head, ref_fields)}"


# Runtime fields only the object that triggered an action or precondition has (read them as node.*).
NODE_ONLY_FIELDS = frozenset({"@status", "@actualEndTime"})
# Runtime fields a section's own scope does not have when it is resolved (core.resolve).
SECTION_MISSING_FIELDS = {
    "preconditions": frozenset({"@actualStartTime"}),
    "actions": frozenset({"@actualStartTime", "@attemptCount"}),
}


def _runtime_scope_problem(ref: str, section: str) -> str | None:
    """A runtime field read where no run provides it (it would fail on every run)."""
    head, _, rest = ref.lstrip("*").partition(".")
    if head == "node" and rest.startswith("@") and "." not in rest and rest not in NODE_FIELDS:
        return f"#{{{ref}}}: node has no runtime field \"{rest}\"{did_you_mean(rest, NODE_FIELDS)}"
    if rest or not head.startswith("@"):
        return None
    if head in NODE_ONLY_FIELDS:
        where = ("use #{node." + head + "}" if section in ("actions", "preconditions")
                 else "it is only known to the actions and preconditions it triggers, as #{node." + head + "}")
        return f"#{{{ref}}}: an object does not know its own {head} while it runs; {where}"
    if head in SECTION_MISSING_FIELDS.get(section, ()):
        return f"#{{{ref}}}: {_singular(section)} fields have no {head}; use #{{node.{head}}}"
    return None


def parameter_value_problem(ptype: str, allowed: Sequence[str], value: str) -> str | None:
    return value_problem(ptype, allowed, value)


def parse_instant(value: Any) -> datetime:
    """An ISO 8601 date-time (YAML may already have made it a datetime or date); naive means UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    else:
        raise ValueError(f"not a date-time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _problem(path: str, message: str) -> Problem:
    return Problem(path, message)


def _suggested(word: str, choices: Collection[str]) -> list[str]:
    return difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)


def _hint(word: str, choices: Sequence[str]) -> str:
    """did_you_mean, but a choice that differs only in case (CASCADE for cascade) always wins."""
    same = [c for c in choices if c.lower() == word.lower()]
    return f'; did you mean "{same[0]}"?' if same else did_you_mean(word, choices)


def _either(group: Sequence[str]) -> str:
    return ", ".join(group[:-1]) + f" or {group[-1]}" if len(group) > 1 else group[0]


def _singular(section: str) -> str:
    words = {"activities": "activity", "dataNodes": "data node", "dataFormats": "data format",
             "databases": "database", "preconditions": "precondition", "computeProfiles": "compute profile",
             "clusterProfiles": "cluster profile", "actions": "action"}
    return words.get(section, section)


def _kind_word(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", str: "a string"}.get(kind, kind.__name__)


_SECRET_FIELD = FieldSpec("valueFromSecret", Kind.SECRET_REF, "")

_ZONES: list[str] = []


def _zone_names() -> list[str]:
    if not _ZONES:
        from zoneinfo import available_timezones

        _ZONES.extend(sorted(available_timezones()))
    return _ZONES


__all__ = [
    "API_VERSION",
    "DefinitionError",
    "parameter_value_problem",
    "parse_instant",
    "parse_manifest",
    "parse_pipeline",
]
