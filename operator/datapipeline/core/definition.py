"""Parse and check a Pipeline spec into a :class:`PipelineDefinition`.

Every problem is collected with the path of the field it is about, so a user
sees them all at once (``spec.activities[2].dependsOn[0]: no activity named
"lod"; did you mean "load"?``). Nothing here raises anything but
:class:`DefinitionError`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError

from datapipeline.core import catalog
from datapipeline.core.catalog import COMMON_FIELDS, SECTIONS, TYPES, FieldSpec, Kind, TypeSpec
from datapipeline.core.durations import DurationError, Period, parse_duration, parse_period
from datapipeline.core.expressions import ExpressionError, parse_template
from datapipeline.core.model import (
    DEFAULT_MAXIMUM_RETRIES,
    DEFAULT_RETRY_DELAY,
    MISSED_RUN_POLICIES,
    SCHEDULE_TYPES,
    Activity,
    AwsSettings,
    Parameter,
    PipelineDefinition,
    PipelineObject,
    Schedule,
)
from datapipeline.core.problems import Collector, DefinitionError, Problem, did_you_mean

PARAMETER_TYPES = ("String", "Integer", "Double", "AWS::S3::ObjectKey")
BIG_DATA_ACTIVITIES = ("EmrActivity", "HiveActivity", "HiveCopyActivity", "PigActivity", "HadoopActivity")
COPY_NODE_TYPES = ("S3DataNode", "SqlDataNode", "MySqlDataNode")
# Fields AWS users write inline that must be Secret references here.
INLINE_SECRETS = {"password": "passwordSecret", "*password": "passwordSecret"}

API_VERSION = "datapipeline.io/v1alpha1"
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
VAR_PATTERN = re.compile(r"^\*?my[A-Za-z0-9_]+$")

# Runtime fields an expression may read (AWS "@" fields); evaluated per run.
RUNTIME_FIELDS = frozenset({
    "@scheduledStartTime", "@scheduledEndTime", "@actualStartTime", "@actualEndTime",
    "@id", "@name", "@pipelineId", "@status", "@attemptCount", "@sphere", "@version",
    "@runName", "@triggerTime",
})
# Runtime fields of the object that triggered an action or precondition (node.*).
NODE_FIELDS = RUNTIME_FIELDS | {"errorMessage", "errorId", "errorStackTrace", "@cascadeFailedOn",
                                "cancellationReason", "@failureReason", "@waitingOn"}

SPEC_FIELDS: dict[str, str] = {
    "activated": "bool", "schedule": "object", "scheduleType": "enum", "missedRunPolicy": "enum",
    "maxActiveRuns": "int", "successfulRunsHistoryLimit": "int", "failedRunsHistoryLimit": "int",
    "pipelineLogUri": "string", "runnerImage": "string", "aws": "object", "parameters": "list",
    "values": "object", "defaults": "object", "description": "string",
    **{s: "list" for s in SECTIONS},
}
AWS_FIELDS = ("region", "s3EndpointUrl", "snsEndpointUrl", "dynamodbEndpointUrl", "s3PathStyle",
              "credentialsSecret")


def parse_pipeline(spec: Mapping[str, Any], path: str = "spec") -> PipelineDefinition:
    """Parse a Pipeline's spec; raise DefinitionError listing every problem."""
    return _Parser(path).parse(spec)


def parse_manifest(doc: Mapping[str, Any]) -> PipelineDefinition:
    """Check a whole Pipeline manifest (apiVersion, kind, metadata) and parse its spec."""
    problems = Collector()
    if doc.get("apiVersion") != API_VERSION:
        problems.add("apiVersion", f'must be "{API_VERSION}", not {_show(doc.get("apiVersion"))}')
    if doc.get("kind") != "Pipeline":
        problems.add("kind", f'must be "Pipeline", not {_show(doc.get("kind"))}')
    metadata = doc.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        problems.add("metadata.name", "is required")
    elif not re.match(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", str(metadata["name"])):
        problems.add("metadata.name", "must be a DNS label of at most 53 characters: lower case letters, "
                     "digits and '-' (run names add a suffix)")
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        problems.add("spec", "is required and must be an object")
        problems.raise_if_any()
        raise AssertionError  # unreachable: raise_if_any raised
    try:
        definition = parse_pipeline(spec)
    except DefinitionError as error:
        problems.problems.extend(error.problems)
        problems.raise_if_any()
        raise
    problems.raise_if_any()
    return definition


def _show(value: Any) -> str:
    return "nothing" if value is None else f'"{value}"' if isinstance(value, str) else repr(value)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems = Collector()

    # ------------------------------------------------------------------ top level
    def parse(self, spec: Mapping[str, Any]) -> PipelineDefinition:
        if not isinstance(spec, Mapping):
            raise DefinitionError([_problem(self.path, "must be an object")])
        self._unknown_keys(spec, SPEC_FIELDS, self.path)
        schedule_type = self._enum(spec, "scheduleType", SCHEDULE_TYPES, "cron", self.path)
        schedule = self._schedule(spec.get("schedule"), f"{self.path}.schedule", schedule_type)
        parameters = self._parameters(spec.get("parameters"), f"{self.path}.parameters")
        values = self._values(spec.get("values"), parameters, f"{self.path}.values")
        defaults = self._defaults(spec.get("defaults"), f"{self.path}.defaults")
        raw_objects = {s: self._section(spec.get(s), s) for s in SECTIONS}
        objects = {s: self._inherit(s, raw_objects[s]) for s in SECTIONS}
        top_vars = dict(defaults.get("vars") or {})
        for section, table in objects.items():
            for obj in table.values():
                self._check_object(obj, objects)
        activities = {name: self._activity(obj, defaults) for name, obj in objects["activities"].items()}
        if not activities:
            self.problems.add(f"{self.path}.activities", "a pipeline needs at least one activity")
        self._check_cycles(activities)
        for activity in activities.values():
            self._check_activity_semantics(activity, objects)
        names = _expression_names(parameters, top_vars)
        for section, table in objects.items():
            for obj in table.values():
                self._check_expressions(obj, names, section)
        self.problems.raise_if_any()
        return PipelineDefinition(
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
        )

    def _unknown_keys(self, data: Mapping[str, Any], known: Mapping[str, Any] | Sequence[str], path: str) -> None:
        for key in data:
            if key not in known:
                self.problems.add(f"{path}.{key}", f'unknown field "{key}"{did_you_mean(str(key), known)}')

    def _typed(self, data: Mapping[str, Any], key: str, kind: type, default: Any, path: str) -> Any:
        value = data.get(key, default)
        if value is None or value is default:
            return value
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            self.problems.add(f"{path}.{key}", f"must be {_kind_word(kind)}, not {_show(value)}")
            return default
        return value

    def _enum(self, data: Mapping[str, Any], key: str, allowed: Sequence[str], default: str, path: str) -> str:
        value = data.get(key, default)
        if value not in allowed:
            self.problems.add(f"{path}.{key}", f"must be one of {', '.join(allowed)}, not {_show(value)}"
                              f"{did_you_mean(str(value), allowed)}")
            return default
        return str(value)

    def _positive_int(self, data: Mapping[str, Any], key: str, default: int, path: str,
                      allow_zero: bool = False) -> int:
        value = self._typed(data, key, int, default, path)
        if value < (0 if allow_zero else 1):
            self.problems.add(f"{path}.{key}", f"must be at least {0 if allow_zero else 1}, not {value}")
            return default
        return int(value)

    # ------------------------------------------------------------------ schedule
    def _schedule(self, raw: Any, path: str, schedule_type: str) -> Schedule | None:
        if raw is None:
            if schedule_type != "ondemand":
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
            self.problems.add(path, "set exactly one of cron and period")
        time_zone = str(raw.get("timeZone", "UTC"))
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            self.problems.add(f"{path}.timeZone", f'unknown time zone "{time_zone}"; use an IANA name such as '
                              '"Europe/Berlin"')
            time_zone = "UTC"
        if cron is not None and not (isinstance(cron, str) and croniter.is_valid(cron, second_at_beginning=True)):
            self.problems.add(f"{path}.cron", f"{_show(cron)} is not a valid cron expression "
                              "(5 fields, or 6 with seconds first)")
            cron = None
        period: Period | None = None
        if period_text is not None:
            try:
                period = parse_period(str(period_text))
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
            self.problems.add(path, "set at most one of endDateTime and occurrences")
        if occurrences is not None and occurrences < 1:
            self.problems.add(f"{path}.occurrences", f"must be at least 1, not {occurrences}")
        if start and end and end <= start:
            self.problems.add(f"{path}.endDateTime", "must be after startDateTime")
        return Schedule(cron=cron, period=period, time_zone=time_zone, start=start, end=end, occurrences=occurrences)

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
            self._unknown_keys(item, {f.name for f in catalog.PARAMETER_FIELDS}, where)
            pid = item.get("id")
            if not isinstance(pid, str) or not VAR_PATTERN.match(pid):
                self.problems.add(f"{where}.id", f"{_show(pid)} must start with my (AWS rule), e.g. myInputPath")
                continue
            if pid in result:
                self.problems.add(f"{where}.id", f'parameter "{pid}" is defined twice')
            ptype = self._enum(item, "type", ("String", "Integer", "Double", "AWS::S3::ObjectKey"), "String", where)
            allowed = tuple(str(v) for v in (item.get("allowedValues") or ()))
            default = item.get("default")
            is_array = bool(item.get("isArray", False))
            if default is not None:
                default = [str(v) for v in default] if isinstance(default, list) else str(default)
                for value in default if isinstance(default, list) else [default]:
                    self._check_parameter_value(ptype, allowed, value, f"{where}.default")
            result[pid.lstrip("*")] = Parameter(
                id=pid.lstrip("*"), type=ptype, description=str(item.get("description", "")),
                optional=bool(item.get("optional", False)), allowed_values=allowed, default=default,
                is_array=is_array)
        return result

    def _check_parameter_value(self, ptype: str, allowed: Sequence[str], value: str, path: str) -> None:
        problem = parameter_value_problem(ptype, allowed, value)
        if problem:
            self.problems.add(path, problem)

    def _values(self, raw: Any, parameters: Mapping[str, Parameter], path: str) -> dict[str, str | list[str]]:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self.problems.add(path, "must map parameter ids to values")
            return {}
        values: dict[str, str | list[str]] = {}
        for key, value in raw.items():
            param = parameters.get(str(key))
            if param is None:
                self.problems.add(f"{path}.{key}", f'no parameter "{key}" is defined'
                                  f"{did_you_mean(str(key), parameters)}")
                continue
            if isinstance(value, list):
                if not param.is_array:
                    self.problems.add(f"{path}.{key}", f'parameter "{key}" is not an array (isArray: false)')
                    continue
                values[key] = [str(v) for v in value]
            else:
                values[key] = str(value)
            for item in value if isinstance(value, list) else [value]:
                self._check_parameter_value(param.type, param.allowed_values, str(item), f"{path}.{key}")
        for param in parameters.values():
            if param.id not in values and param.default is None and not param.optional:
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
                self.problems.add(f"{path}.{key}", f'unknown field "{key}"{did_you_mean(key, known)}'
                                  " (defaults take activity fields)")
                continue
            checked = self._value(spec, value, f"{path}.{key}")
            if checked is not None:
                result[key] = checked
        return result

    # ------------------------------------------------------------------ sections
    def _list(self, raw: Any, path: str) -> list[Any]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.problems.add(path, "must be a list")
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
        resolved: dict[str, dict[str, Any]] = {}

        def merged(name: str, chain: list[str]) -> dict[str, Any]:
            if name in resolved:
                return resolved[name]
            raw, where = table[name]
            parent = raw.get("parent")
            base: dict[str, Any] = {}
            if parent is not None:
                if parent in chain:
                    self.problems.add(f"{where}.parent", "parent cycle: " + " -> ".join([*chain, parent]))
                elif parent not in table:
                    self.problems.add(f"{where}.parent", f'no {_singular(section)} named "{parent}" in {section}'
                                      f"{did_you_mean(str(parent), table)}")
                else:
                    base = dict(merged(parent, [*chain, parent]))
            result = {**base, **{k: v for k, v in raw.items() if k != "parent"}}
            result["vars"] = {**(base.get("vars") or {}), **(raw.get("vars") or {})}
            resolved[name] = result
            return result

        objects: dict[str, PipelineObject] = {}
        for name, (_, where) in table.items():
            data = merged(name, [name])
            obj = self._object(section, name, data, where)
            if obj is not None:
                objects[name] = obj
        return objects

    def _object(self, section: str, name: str, data: Mapping[str, Any], where: str) -> PipelineObject | None:
        type_name = data.get("type") or catalog.default_type(section)
        choices = [t.name for t in catalog.types_in(section)]
        if type_name is None:
            self.problems.add(f"{where}.type", f"is required; one of {', '.join(choices)}")
            return None
        type_spec = TYPES.get(str(type_name))
        if type_spec is None or type_spec.section != section:
            elsewhere = f' ("{type_name}" belongs in {type_spec.section})' if type_spec else ""
            self.problems.add(f"{where}.type", f'unknown {_singular(section)} type "{type_name}"{elsewhere}; one of '
                              f"{', '.join(choices)}{did_you_mean(str(type_name), choices) if not elsewhere else ''}")
            return None
        fields: dict[str, Any] = {}
        common = {f.name for f in COMMON_FIELDS}
        for key, value in data.items():
            if key in common:
                continue
            spec = type_spec.field_map.get(key)
            if spec is None:
                self.problems.add(f"{where}.{key}", f'{type_spec.name} has no field "{key}"'
                                  f"{did_you_mean(key, type_spec.field_map)}")
                continue
            checked = self._value(spec, value, f"{where}.{key}")
            if checked is not None:
                fields[key] = checked
        obj_vars = data.get("vars") or {}
        if not isinstance(obj_vars, Mapping):
            self.problems.add(f"{where}.vars", "must map my* names to strings")
            obj_vars = {}
        for var in obj_vars:
            if not VAR_PATTERN.match(str(var)):
                self.problems.add(f"{where}.vars.{var}", f'user-defined field "{var}" must start with my')
        self._check_presence(type_spec, fields, where)
        return PipelineObject(section=section, name=name, type=type_spec.name, fields=fields,
                              vars={str(k): str(v) for k, v in obj_vars.items()}, path=where)

    def _check_presence(self, type_spec: TypeSpec, fields: Mapping[str, Any], where: str) -> None:
        for spec in type_spec.fields:
            if spec.required and spec.name not in fields:
                self.problems.add(f"{where}.{spec.name}", f"is required for {type_spec.name}")
        for group in type_spec.one_of:
            present = [g for g in group if g in fields]
            if len(present) != 1:
                self.problems.add(where, f"{type_spec.name} needs exactly one of {', '.join(group)}"
                                  + (f" (both {' and '.join(present)} are set)" if present else ""))

    def _value(self, spec: FieldSpec, value: Any, path: str) -> Any:
        """Check one field's value against its kind; return it normalised, or None after a problem."""
        kind = spec.kind
        if kind in (Kind.STRING, Kind.REF):
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.problems.add(path, f"must be a string, not {_show(value)}")
                return None
            text = str(value)
            if spec.enum and text not in spec.enum:
                self.problems.add(path, f"must be one of {', '.join(spec.enum)}, not {_show(text)}"
                                  f"{did_you_mean(text, spec.enum)}")
                return None
            return text
        if kind in (Kind.STRINGS, Kind.REFS):
            if isinstance(value, str):
                self.problems.add(path, f'must be a list, e.g. ["{value}"]')
                return None
            if not isinstance(value, list) or not all(isinstance(i, str | int | float) for i in value):
                self.problems.add(path, f"must be a list of strings, not {_show(value)}")
                return None
            return tuple(str(i) for i in value)
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
            except (DurationError, TypeError, AttributeError) as error:
                self.problems.add(path, str(error) if isinstance(error, DurationError)
                                  else f'must be a duration like "10 minutes", not {_show(value)}')
                return None
        if kind is Kind.SECRET_REF:
            if not (isinstance(value, Mapping) and isinstance(value.get("name"), str)
                    and isinstance(value.get("key"), str) and set(value) <= {"name", "key"}):
                self.problems.add(path, "must be a Secret reference {name: SECRET, key: KEY}; secrets are never "
                                  "written inline")
                return None
            return {"name": value["name"], "key": value["key"]}
        if kind is Kind.MAP:
            if not isinstance(value, Mapping) or not all(isinstance(v, str | int | float) for v in value.values()):
                self.problems.add(path, "must map names to strings")
                return None
            return {str(k): str(v) for k, v in value.items()}
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
    def _check_object(self, obj: PipelineObject, objects: Mapping[str, Mapping[str, PipelineObject]]) -> None:
        type_spec = TYPES[obj.type]
        for spec in type_spec.fields:
            if spec.kind not in (Kind.REF, Kind.REFS) or spec.name not in obj.fields:
                continue
            for index, ref in enumerate(obj.refs(spec.name)):
                where = f"{obj.path}.{spec.name}" + (f"[{index}]" if spec.kind is Kind.REFS else "")
                if not any(ref in objects[s] for s in spec.ref_sections):
                    candidates = [n for s in spec.ref_sections for n in objects[s]]
                    what = " or ".join(_singular(s) for s in spec.ref_sections)
                    self.problems.add(where, f'no {what} named "{ref}"{did_you_mean(ref, candidates)}')
                elif obj.section == "activities" and spec.name == "dependsOn" and ref == obj.name:
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
        )

    def _check_cycles(self, activities: Mapping[str, Activity]) -> None:
        state: dict[str, int] = {}  # 1 visiting, 2 done
        reported: set[frozenset[str]] = set()

        def visit(name: str, stack: list[str]) -> None:
            state[name] = 1
            for dep in activities[name].depends_on:
                if dep not in activities:
                    continue
                if state.get(dep) == 1:
                    cycle = [*stack[stack.index(dep):], dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.problems.add(f"{activities[name].path}.dependsOn",
                                          "dependency cycle: " + " -> ".join(cycle))
                elif state.get(dep) is None:
                    visit(dep, [*stack, dep])
            state[name] = 2

        for name in activities:
            if name not in state:
                visit(name, [name])

    def _check_activity_semantics(self, activity: Activity, objects: Mapping[str, Mapping[str, PipelineObject]]) -> None:
        where = activity.path
        nodes = objects["dataNodes"]
        if activity.max_active_instances is not None and activity.max_active_instances < 1:
            self.problems.add(f"{where}.maxActiveInstances", "must be at least 1")
        big_data = activity.type in ("EmrActivity", "HiveActivity", "HiveCopyActivity", "PigActivity", "HadoopActivity")
        if big_data and activity.runs_on not in objects["clusterProfiles"]:
            self.problems.add(f"{where}.runsOn", f"{activity.type} runs on a cluster profile (the EmrCluster "
                              "stand-in); name one from clusterProfiles")
        if not big_data and activity.runs_on in objects["clusterProfiles"]:
            self.problems.add(f"{where}.runsOn", f"{activity.type} runs on a compute profile, not the cluster "
                              f'profile "{activity.runs_on}"')
        if activity.type == "CopyActivity":
            for field, refs in (("input", activity.inputs), ("output", activity.outputs)):
                if len(refs) != 1:
                    self.problems.add(f"{where}.{field}", f"CopyActivity needs exactly one {field} data node, "
                                      f"not {len(refs)}")
                    continue
                node = nodes.get(refs[0])
                if node is not None and node.type not in ("S3DataNode", "SqlDataNode", "MySqlDataNode"):
                    self.problems.add(f"{where}.{field}", f'CopyActivity copies between S3DataNode, SqlDataNode and '
                                      f'MySqlDataNode; "{node.name}" is a {node.type}')
        if activity.type == "RedshiftCopyActivity":
            outs = [nodes[n] for n in activity.outputs if n in nodes]
            if len(activity.outputs) != 1 or (outs and outs[0].type not in ("RedshiftDataNode", "SqlDataNode")):
                self.problems.add(f"{where}.output", "RedshiftCopyActivity needs one output RedshiftDataNode")
            if len(activity.inputs) != 1:
                self.problems.add(f"{where}.input", "RedshiftCopyActivity needs one input data node")
            if (activity.fields.get("insertMode") == "OVERWRITE_EXISTING" and outs
                    and not outs[0].fields.get("primaryKeys")):
                self.problems.add(f"{where}.insertMode", f'OVERWRITE_EXISTING needs primaryKeys on "{outs[0].name}"')
        if activity.fields.get("stage") and not (activity.inputs or activity.outputs):
            self.problems.add(f"{where}.stage", "stage: true needs input or output data nodes to stage")

    def _check_expressions(self, obj: PipelineObject, names: frozenset[str], section: str) -> None:
        type_spec = TYPES[obj.type]
        local = set(obj.fields) | set(obj.vars)
        ref_fields = {f.name for f in type_spec.fields if f.kind in (Kind.REF, Kind.REFS)}
        for spec in type_spec.fields:
            if spec.kind not in (Kind.STRING, Kind.STRINGS) or spec.name not in obj.fields:
                continue
            values = obj.fields[spec.name]
            items = [values] if isinstance(values, str) else list(values)
            for index, text in enumerate(items):
                where = f"{obj.path}.{spec.name}" + (f"[{index}]" if spec.kind is Kind.STRINGS else "")
                try:
                    template = parse_template(text)
                except ExpressionError as error:
                    self.problems.add(where, f"bad expression: {error}")
                    continue
                for ref in sorted(template.references()):
                    problem = _reference_problem(ref, local, names, ref_fields, section)
                    if problem:
                        self.problems.add(where, problem)


def _expression_names(parameters: Mapping[str, Parameter], top_vars: Mapping[str, str]) -> frozenset[str]:
    return frozenset(parameters) | frozenset(top_vars) | RUNTIME_FIELDS


def _reference_problem(ref: str, local: set[str], names: frozenset[str], ref_fields: set[str],
                       section: str) -> str | None:
    head, _, rest = ref.partition(".")
    if not rest:
        if ref in names or ref in local:
            return None
        return f'#{{{ref}}} refers to nothing: no field, parameter or runtime field "{ref}"' \
               f"{did_you_mean(ref, [*names, *local])}"
    if head == "node":
        if section not in ("actions", "preconditions"):
            return f"#{{{ref}}}: node.* is only known inside actions and preconditions"
        return None
    if head in ref_fields or head == "parent":
        return None
    return f'#{{{ref}}}: "{head}" is not a reference field of this object'


def parameter_value_problem(ptype: str, allowed: Sequence[str], value: str) -> str | None:
    if allowed and value not in allowed:
        return f"{_show(value)} is not allowed; one of {', '.join(allowed)}"
    if ptype == "Integer" and not re.fullmatch(r"[+-]?\d+", value):
        return f"{_show(value)} is not an Integer"
    if ptype == "Double":
        try:
            float(value)
        except ValueError:
            return f"{_show(value)} is not a Double"
    if ptype == "AWS::S3::ObjectKey" and not value.startswith("s3://"):
        return f'{_show(value)} is not an S3 key; write it like "s3://bucket/key"'
    return None


def parse_instant(value: Any) -> datetime:
    """An ISO 8601 date-time (YAML may already have made it a datetime); naive means UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"not a date-time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _problem(path: str, message: str) -> Problem:
    return Problem(path, message)


def _singular(section: str) -> str:
    words = {"activities": "activity", "dataNodes": "data node", "dataFormats": "data format",
             "databases": "database", "preconditions": "precondition", "computeProfiles": "compute profile",
             "clusterProfiles": "cluster profile", "actions": "action"}
    return words.get(section, section)


def _kind_word(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", str: "a string"}.get(kind, kind.__name__)


__all__ = ["API_VERSION", "DefinitionError", "parse_instant", "parse_manifest", "parameter_value_problem",
           "parse_pipeline"]
