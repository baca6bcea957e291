"""Resolve one Job of a run into the runner's :class:`TaskSpec`: expressions evaluated, objects inlined.

The scope an expression sees (AWS rules):

* the object's own fields (``#{table}``, evaluated in turn, with a guard against cycles) and its my*
  vars (inherited through ``parent`` and the pipeline defaults);
* the pipeline's parameters, valued from ``values`` and the run's overrides, else their default;
* runtime fields: ``@scheduledStartTime``, ``@scheduledEndTime``, ``@actualStartTime``, ``@id``,
  ``@name``, ``@pipelineId``, ``@runName``, ``@triggerTime``, ``@attemptCount``, ``@status``;
* fields of referenced objects through a reference field: ``#{output.directoryPath}``,
  ``#{input.tableName}``, ``#{database.connectionString}``;
* inside actions and preconditions, the object that triggered them: ``#{node.@scheduledStartTime}``,
  ``#{node.errorMessage}``, ``#{node.output.directoryPath}``.

Secrets are never read: a ``passwordSecret`` becomes the *name* of an environment variable
(:class:`SecretEnv`) that the Job fills with ``secretKeyRef``; so does a masked parameter, which only a
shell command can use (as that variable).

Values the Pipeline's author did not write (a run's ``spec.values``) are data, never code: in a shell
field each expression that read one becomes a quoted environment variable (:mod:`shellwords`); in a
SQL/Hive/Pig field such a value must be a number or be limited by ``allowedValues`` or ``pattern``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from datapipeline.core.catalog import CONTROL_FIELDS, SHELL_CODE_FIELDS, TYPES, Kind
from datapipeline.core.durations import format_duration
from datapipeline.core.expressions import ExpressionError, Value, parse_datetime, parse_template, to_string
from datapipeline.core.limits import DEFAULT_LIMITS
from datapipeline.core.model import Parameter, PipelineDefinition, PipelineObject
from datapipeline.core.shellwords import env_reference
from datapipeline.core.task import (
    ENV_VALUE_PREFIX,
    KIND_ACTION,
    KIND_ACTIVITY,
    KIND_PRECONDITION,
    NODE_TEXT_KEYS,
    AwsSpec,
    DatabaseSpec,
    DataFormatSpec,
    DataNodeSpec,
    TaskSpec,
    masked_env_name,
    utc_text,
)

# Which section each reference field points into, for #{field.sub} lookups.
_REF_SECTIONS: dict[str, tuple[str, ...]] = {
    "input": ("dataNodes",), "output": ("dataNodes",), "dependsOn": ("activities",),
    "precondition": ("preconditions",), "runsOn": ("computeProfiles", "clusterProfiles"),
    "database": ("databases",), "dataFormat": ("dataFormats",),
    "onFail": ("actions",), "onSuccess": ("actions",), "onLateAction": ("actions",),
}




class ResolveError(ValueError):
    """An expression could not be evaluated for this run; retrying the same run cannot help."""


@dataclass(frozen=True)
class SecretEnv:
    env: str  # environment variable name in the Job
    secret: str
    key: str


@dataclass(frozen=True)
class RunContext:
    """What a run contributes to every expression."""

    pipeline: str
    run: str
    scheduled_start: datetime
    scheduled_end: datetime
    trigger_time: datetime | None = None
    overrides: Mapping[str, str | list[str]] = field(default_factory=dict)  # PipelineRun.spec.values
    # Other schedules' intervals that contain this run's start: a data node on such a schedule is evaluated in
    # its own instance (its @scheduledStartTime is the covering interval's), as every AWS object is.
    intervals: Mapping[str, tuple[datetime, datetime]] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    task: TaskSpec
    secrets: tuple[SecretEnv, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # run-supplied values a shell command reads as variables


class MaskedReference(ExpressionError):
    """A masked parameter was read where its value would have to be known (it lives in a Secret)."""

    def __init__(self, name: str) -> None:
        super().__init__(f'masked parameter "{name}" comes from a Secret: only a shell command can use it, '
                         f'alone in its expression (#{{*{name}}}), where it becomes the variable '
                         f"{masked_env_name(name)}")
        self.name = name


class ParameterValues(Mapping[str, Value]):
    """The parameters' values, remembering which run-supplied ones an evaluation read."""

    def __init__(self, values: Mapping[str, Value], untrusted: Mapping[str, Parameter],
                 masked: Mapping[str, Parameter]) -> None:
        self._values = dict(values)
        self.untrusted = untrusted  # set by the run: data, never code
        self.masked = masked
        self.read: set[str] = set()  # untrusted names read since the last clear()

    def __getitem__(self, key: str) -> Value:
        if key in self.masked:
            raise MaskedReference(key)
        value = self._values[key]
        if key in self.untrusted:
            self.read.add(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._values or key in self.masked

    def __iter__(self) -> Iterator[str]:
        return iter([*self._values, *self.masked])

    def __len__(self) -> int:
        return len(self._values) + len(self.masked)

    def nested(self) -> set[str]:
        """Start recording the reads of a nested evaluation; pass the result to :meth:`unnest`."""
        outer, self.read = self.read, set()
        return outer

    def unnest(self, outer: set[str]) -> frozenset[str]:
        """The untrusted names the nested evaluation read; they count as read by the outer one too."""
        inner = frozenset(self.read)
        self.read = outer | inner
        return inner


def _reads(params: Mapping[str, Value]) -> ParameterValues | None:
    return params if isinstance(params, ParameterValues) else None


def parameter_values(definition: PipelineDefinition, overrides: Mapping[str, str | list[str]]) -> ParameterValues:
    """Each parameter's typed value: run override, else pipeline value, else default (optional: absent)."""
    values: dict[str, Value] = {}
    for pid, param in definition.parameters.items():
        if param.masked:
            continue
        raw = overrides.get(pid, definition.values.get(pid, param.default))
        if raw is None:
            continue
        items = raw if isinstance(raw, list) else [raw]
        typed: list[Value] = [_typed(param.type, str(item)) for item in items]
        values[pid] = typed if param.is_array or isinstance(raw, list) else typed[0]
    untrusted = {p: definition.parameters[p] for p in overrides if p in definition.parameters}
    masked = {p: param for p, param in definition.parameters.items() if param.masked}
    return ParameterValues(values, untrusted, masked)




def _typed(ptype: str, text: str) -> Value:
    try:
        if ptype == "Integer":
            return int(text)
        if ptype == "Double":
            return float(text)
    except ValueError:
        return text
    return text


def secret_env_name(database: str, what: str) -> str:
    return "DATAPIPELINE_DB_" + re.sub(r"[^A-Z0-9]", "_", database.upper()) + "_" + what


class ObjectScope:
    """The Scope of one object of one run (see the module docstring)."""

    def __init__(self, definition: PipelineDefinition, obj: PipelineObject, run: RunContext,
                 params: Mapping[str, Value], runtime: Mapping[str, Value] | None = None,
                 node: ObjectScope | None = None, depth: int = 0, budget: list[int] | None = None) -> None:
        self.d = definition
        self.obj = obj
        self.run = run
        self.params = params
        self.node = node
        self.depth = depth
        self._active: set[str] = set()
        # A field's value does not change within one scope; kept with the run-supplied names it read, so a
        # cached value is as untrusted as the first evaluation found it.
        self._memo: dict[tuple[str, str], tuple[Value, frozenset[str]]] = {}
        self._budget = budget if budget is not None else [0, 0]  # evaluations so far, nesting now (shared)
        self.runtime: dict[str, Value] = {
            "@scheduledStartTime": run.scheduled_start, "@scheduledEndTime": run.scheduled_end,
            "@id": obj.name, "@name": obj.name, "@pipelineId": run.pipeline, "@runName": run.run,
            "@sphere": obj.section, "@version": "1",
        }
        if run.trigger_time is not None:
            self.runtime["@triggerTime"] = run.trigger_time
        self.runtime.update(runtime or {})

    def names(self) -> frozenset[str]:
        return frozenset([*self.runtime, *self.obj.fields, *self.obj.vars, *self.params, *self.d.vars, "id", "name",
                          "type"])

    def lookup(self, name: str) -> Value:
        if name.startswith("*"):
            name = name[1:]
        head, _, rest = name.partition(".")
        if rest:
            if head == "node":
                if self.node is None:
                    raise KeyError(name)
                return self.node.lookup(rest)
            if head == "parent":
                return self.lookup(rest)  # inheritance is already applied: the parent's fields are ours
            return self._through_reference(head, rest, name)
        if name in self.runtime:
            return self.runtime[name]
        if name in ("id", "name"):  # every object's id and name (AWS); here they are one
            return self.obj.name
        if name == "type":
            return self.obj.type
        if name in self.obj.vars:
            return self._evaluate(name, self.obj.vars[name])
        if name in self.obj.fields:
            return self._field_value(name, self.obj.fields[name])
        if name in self.params:
            return self.params[name]
        if name in self.d.vars:
            return self._evaluate(name, self.d.vars[name])
        raise KeyError(name)

    def _through_reference(self, head: str, rest: str, name: str) -> Value:
        refs = self.obj.refs(head) if head in self.obj.fields else ()
        sections = _REF_SECTIONS.get(head)
        if not refs or sections is None or self.depth > 8:
            raise KeyError(name)
        values: list[Value] = []
        for ref in refs:
            target = self.d.find(ref, sections)
            if target is None:
                raise KeyError(name)
            values.append(self.child(target).lookup(rest))
        return values[0] if len(values) == 1 else values

    def child(self, obj: PipelineObject, runtime: Mapping[str, Value] | None = None) -> ObjectScope:
        inherited = {k: v for k, v in self.runtime.items()
                     if k in ("@scheduledStartTime", "@scheduledEndTime", "@actualStartTime", "@triggerTime")}
        own = self.run.intervals.get(self.d.node_schedule(obj.name)) if obj.section == "dataNodes" else None
        if own is not None:
            inherited["@scheduledStartTime"], inherited["@scheduledEndTime"] = own
        return ObjectScope(self.d, obj, self.run, self.params, {**inherited, **(runtime or {})}, self.node,
                           self.depth + 1, self._budget)

    def _field_value(self, name: str, value: Any) -> Value:
        if isinstance(value, str):
            return self._evaluate(name, value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return value
        if isinstance(value, timedelta):
            return format_duration(value)
        if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
            return [self._evaluate(name, v) for v in value]
        raise KeyError(name)

    def _evaluate(self, name: str, text: str) -> Value:
        if name in self._active:
            raise ExpressionError(f'field "{name}" refers to itself')
        reads = _reads(self.params)
        if (name, text) in self._memo:
            value, tainted = self._memo[(name, text)]
            if reads is not None:
                reads.read |= tainted
            return value
        self._spend(name)
        self._active.add(name)
        outer = reads.nested() if reads is not None else set()
        try:
            value = parse_template(text).evaluate(self)
        finally:
            tainted = reads.unnest(outer) if reads is not None else frozenset()
            self._active.discard(name)
            self._budget[1] -= 1
        self._memo[(name, text)] = (value, tainted)
        return value

    def _spend(self, name: str) -> None:
        """Count one evaluation and one level of nesting against the limits (shared with child scopes)."""
        self._budget[0] += 1
        self._budget[1] += 1
        if self._budget[0] > DEFAULT_LIMITS.max_evaluation_steps:
            self._budget[1] -= 1
            raise ExpressionError(f'evaluating "{name}" takes more than {DEFAULT_LIMITS.max_evaluation_steps:,} '
                                  "steps: fields and variables read each other too many times")
        if self._budget[1] > DEFAULT_LIMITS.max_reference_depth:
            self._budget[1] -= 1
            raise ExpressionError(f'"{name}" is reached through more than {DEFAULT_LIMITS.max_reference_depth} '
                                  "references inside each other")

    def render(self, text: str) -> str:
        return parse_template(text).render(self)

    def render_list(self, items: Any) -> list[str]:
        """A list field: an item that is one expression yielding a list (an isArray parameter, a list
        expression) becomes that many items, as AWS flattens ``[#{myList1}, #{myList2}]``."""
        out: list[str] = []
        for item in items:
            value = parse_template(item).evaluate(self)
            out.extend(to_string(v) for v in value) if isinstance(value, list) else out.append(to_string(value))
        return out


class Resolver:
    """Builds TaskSpecs for the Jobs of one run."""

    def __init__(self, definition: PipelineDefinition, run: RunContext) -> None:
        self.d = definition
        self.run = run
        self.params = parameter_values(definition, run.overrides)
        self.secrets: dict[str, SecretEnv] = {}
        self.env: dict[str, str] = {}  # value -> variable name, for run-supplied values in shell fields

    # -------------------------------------------------------------- public
    def activity(self, name: str, attempt: int, actual_start: datetime | None = None) -> Resolved:
        activity = self.d.activities[name]
        scope = self.scope(activity, attempt, actual_start)
        return self._finish(TaskSpec(
            kind=KIND_ACTIVITY, type=activity.type, name=name, pipeline=self.run.pipeline, run=self.run.run,
            attempt=attempt, fields=self.fields(activity, scope),
            inputs=tuple(self.data_node(n, scope) for n in activity.inputs),
            outputs=tuple(self.data_node(n, scope) for n in activity.outputs),
            database=self.database(activity.get("database"), scope),
            aws=self.aws(), log_uri=self.log_uri(activity, scope), cluster=self.cluster(activity.runs_on)))

    def precondition(self, precondition: str, activity: str, check: int, guarded_node: str | None,
                     node: Mapping[str, Any]) -> Resolved:
        obj = self.d.objects["preconditions"][precondition]
        node_scope = self.node_scope(activity, node)
        scope = ObjectScope(self.d, obj, self.run, self.params, {"@attemptCount": check}, node_scope)
        guarded = self.data_node(guarded_node, scope) if guarded_node else None
        return self._finish(TaskSpec(
            kind=KIND_PRECONDITION, type=obj.type, name=precondition, pipeline=self.run.pipeline, run=self.run.run,
            attempt=check, fields=self.fields(obj, scope), guarded_node=guarded,
            database=self.database(obj.get("database"), scope), node=_json_node(node), aws=self.aws(),
            log_uri=self.log_uri(self.d.activities[activity], node_scope)))

    def action(self, action: str, activity: str, attempt: int, node: Mapping[str, Any]) -> Resolved:
        obj = self.d.objects["actions"][action]
        node_scope = self.node_scope(activity, node)
        scope = ObjectScope(self.d, obj, self.run, self.params, {}, node_scope)
        return self._finish(TaskSpec(
            kind=KIND_ACTION, type=obj.type, name=action, pipeline=self.run.pipeline, run=self.run.run,
            attempt=attempt, fields=self.fields(obj, scope), node=_json_node(node), aws=self.aws()))

    # -------------------------------------------------------------- pieces
    def scope(self, obj: PipelineObject, attempt: int = 0, actual_start: datetime | None = None,
              node: ObjectScope | None = None) -> ObjectScope:
        runtime: dict[str, Value] = {"@attemptCount": attempt}
        if actual_start is not None:
            runtime["@actualStartTime"] = actual_start
        return ObjectScope(self.d, obj, self.run, self.params, runtime, node)

    def node_scope(self, activity: str, node: Mapping[str, Any]) -> ObjectScope:
        """The triggering activity, with its runtime fields (status, error...) as the state machine saw them."""
        runtime: dict[str, Value] = {}
        for key, value in node.items():
            if key.endswith("Time") and isinstance(value, str):
                try:
                    runtime[key] = parse_datetime(value)
                    continue
                except ExpressionError:
                    pass
            if isinstance(value, str | int | float):
                runtime[key] = value
        for key in NODE_TEXT_KEYS:  # set only when something went wrong; empty otherwise, never unknown
            runtime.setdefault(key, "")
        return ObjectScope(self.d, self.node_object(activity, node), self.run, self.params, runtime)

    def node_object(self, activity: str, node: Mapping[str, Any]) -> PipelineObject:
        """The object that triggered: the activity, or the data node or precondition named by node's @id and type."""
        spec = TYPES.get(str(node.get("type") or ""))
        if spec is not None and spec.section != "activities":
            found = self.d.objects.get(spec.section, {}).get(str(node.get("@id")))
            if found is not None:
                return found
        return self.d.activities[activity]

    def fields(self, obj: PipelineObject, scope: ObjectScope) -> dict[str, Any]:
        """The object's fields as JSON: strings rendered, durations in seconds, references by name."""
        spec_map = TYPES[obj.type].field_map
        out: dict[str, Any] = {}
        for key, value in obj.fields.items():
            spec = spec_map.get(key)
            kind = spec.kind if spec else None
            try:
                if kind is Kind.SECRET_REF:
                    continue
                if kind is Kind.STRING and isinstance(value, str):
                    out[key] = self.render(scope, key, value)
                elif kind is Kind.STRINGS:
                    code = key in SHELL_CODE_FIELDS or key in CONTROL_FIELDS
                    out[key] = [self.render(scope, key, v) for v in value] if code else scope.render_list(value)
                elif isinstance(value, timedelta):
                    out[key] = int(value.total_seconds())
                elif isinstance(value, tuple):
                    out[key] = list(value)
                elif kind is Kind.MAP and isinstance(value, Mapping):
                    out[key] = {k: scope.render(str(v)) for k, v in value.items()}
                else:
                    out[key] = value
            except ExpressionError as error:
                raise ResolveError(f"{obj.path or obj.name}.{key}: {error}") from error
        if obj.vars:
            try:
                out["vars"] = {k: scope.render(v) for k, v in obj.vars.items()}
            except ExpressionError as error:
                raise ResolveError(f"{obj.path or obj.name}.vars: {error}") from error
        return out

    def render(self, scope: ObjectScope, field_name: str, text: str) -> str:
        """A string field's text; values the author did not write enter code fields only as data."""
        if field_name in SHELL_CODE_FIELDS:
            return parse_template(text).render_each(scope, self._shell_embed)
        if field_name in CONTROL_FIELDS:
            return parse_template(text).render_each(scope, self._code_embed)
        return scope.render(text)

    def _shell_embed(self, before: str, evaluate: Callable[[], Value], bare: str | None) -> str:
        self.params.read.clear()
        try:
            value = evaluate()
        except MaskedReference as masked:
            if bare is None or bare.lstrip("*") != masked.name:
                raise
            secret = self.d.parameters[masked.name].secret
            env = masked_env_name(masked.name)
            if secret is not None:
                self.secrets[env] = SecretEnv(env, secret.name, secret.key)
            return env_reference(before, env)
        if not self.params.read:
            return to_string(value)  # the author's own text: pasted, as AWS does
        text = to_string(value)
        env = self.env.setdefault(text, f"{ENV_VALUE_PREFIX}{len(self.env) + 1}")
        return env_reference(before, env)

    def _code_embed(self, before: str, evaluate: Callable[[], Value], bare: str | None) -> str:
        self.params.read.clear()
        value = evaluate()
        loose = sorted(p for p in self.params.read if _unconstrained(self.params.untrusted[p]))
        if loose:
            raise ExpressionError(f'parameter "{loose[0]}" is set by the run and would decide what runs or where '
                                  "data goes; give it allowedValues or a pattern, or type Integer or Double")
        return to_string(value)

    def data_node(self, name: str, via: ObjectScope) -> DataNodeSpec:
        obj = self.d.objects["dataNodes"][name]
        scope = via.child(obj)
        fmt_name = obj.get("dataFormat")
        data_format = None
        if fmt_name:
            fmt = self.d.objects["dataFormats"][fmt_name]
            data_format = DataFormatSpec(type=fmt.type, fields=self.fields(fmt, scope.child(fmt)))
        return DataNodeSpec(name=name, type=obj.type, fields=self.fields(obj, scope), data_format=data_format,
                            database=self.database(obj.get("database"), scope))

    def database(self, name: str | None, via: ObjectScope) -> DatabaseSpec | None:
        if not name:
            return None
        obj = self.d.objects["databases"][name]
        scope = via.child(obj)
        fields = self.fields(obj, scope)
        username_env = password_env = None
        user_secret, password_secret = obj.get("usernameSecret"), obj.get("passwordSecret")
        if user_secret:
            username_env = secret_env_name(name, "USERNAME")
            self.secrets[username_env] = SecretEnv(username_env, user_secret["name"], user_secret["key"])
        if password_secret:
            password_env = secret_env_name(name, "PASSWORD")
            self.secrets[password_env] = SecretEnv(password_env, password_secret["name"], password_secret["key"])
        properties = {}
        for item in fields.get("jdbcProperties") or ():
            key, _, value = str(item).partition("=")
            properties[key.strip()] = value.strip()
        return DatabaseSpec(name=name, type=obj.type, connection_string=fields["connectionString"],
                            database_name=fields.get("databaseName"), username=fields.get("username"),
                            username_env=username_env, password_env=password_env, properties=properties)

    def cluster(self, runs_on: str | None) -> dict[str, Any]:
        """The fields of the cluster profile an EMR-family activity runs on (none for a compute profile).

        As written, never evaluated: like the Job's image and resources, a run cannot choose them.
        """
        profile = self.d.objects["clusterProfiles"].get(runs_on) if runs_on else None
        if profile is None:
            return {}
        return {key: int(value.total_seconds()) if isinstance(value, timedelta) else
                list(value) if isinstance(value, tuple) else value for key, value in profile.fields.items()}

    def aws(self) -> AwsSpec:
        a = self.d.aws
        return AwsSpec(region=a.region, s3_endpoint_url=a.s3_endpoint_url, sns_endpoint_url=a.sns_endpoint_url,
                       dynamodb_endpoint_url=a.dynamodb_endpoint_url, s3_path_style=a.s3_path_style)

    def log_uri(self, obj: PipelineObject, scope: ObjectScope) -> str | None:
        text = obj.get("pipelineLogUri") or self.d.pipeline_log_uri
        if not text:
            return None
        try:
            return self.render(scope, "pipelineLogUri", str(text))
        except ExpressionError as error:
            raise ResolveError(f"pipelineLogUri: {error}") from error

    def _finish(self, task: TaskSpec) -> Resolved:
        secrets = tuple(self.secrets.values())
        env = tuple((name, value) for value, name in self.env.items())
        self.secrets, self.env = {}, {}
        return Resolved(task, secrets, env)


def _unconstrained(param: Parameter) -> bool:
    return param.type not in ("Integer", "Double") and not param.allowed_values and not param.pattern


def _json_node(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, datetime):
            out[key] = utc_text(value)
        elif isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        else:
            out[key] = str(value)
    return out


def resolve_command(definition: PipelineDefinition, run: RunContext, kind: str, obj: str, activity: str,
                    attempt: int, guarded_node: str | None = None, node: Mapping[str, Any] | None = None,
                    now: datetime | None = None) -> Resolved:
    """Resolve a state-machine CreateJob (passed field by field to keep this module free of runstate)."""
    resolver = Resolver(definition, run)
    try:
        if kind == KIND_ACTIVITY:
            return resolver.activity(obj, attempt, now)
        if kind == KIND_PRECONDITION:
            return resolver.precondition(obj, activity, attempt, guarded_node, node or {})
        if kind == KIND_ACTION:
            return resolver.action(obj, activity, attempt, node or {})
    except ExpressionError as error:
        raise ResolveError(str(error)) from error
    except RecursionError:  # the limits keep expressions well below this; never a traceback for one
        raise ResolveError("expressions and the references they read nest too deeply to evaluate") from None
    except KeyError as error:
        raise ResolveError(f"unknown object {error}") from error
    raise ResolveError(f"unknown task kind {kind!r}")
