"""Convert an AWS Data Pipeline definition (put-pipeline-definition JSON) into a Pipeline manifest.

Pure: JSON in, a manifest dict and warnings out. What has no equivalent here
becomes a warning naming the object and field; secrets become Secret
references to fill in; an unknown object type is an error naming its id.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datapipeline.awsimport import forms
from datapipeline.core import catalog
from datapipeline.core.catalog import Kind
from datapipeline.core.definition import API_VERSION, parse_instant
from datapipeline.core.durations import DurationError, parse_period
from datapipeline.core.emrsteps import StepError, parse_step, split_step
from datapipeline.core.expressions import (
    ExpressionError,
    MappingScope,
    has_expression,
    parse_template,
    to_string,
)
from datapipeline.core.model import DEFAULT_SCHEDULE
from datapipeline.core.problems import did_you_mean
from datapipeline.core.task import masked_env_name, utc_text
from datapipeline.k8s.jobs import LABEL_WORKER_GROUP

# AWS types that map to a section here under another name.
RESOURCE_TYPES = {"Ec2Resource": ("computeProfiles", "ComputeProfile"), "EmrCluster": ("clusterProfiles", "ClusterProfile")}
# AWS types folded into other objects rather than kept as objects.
INLINE_TYPES = {"Schedule", "EmrConfiguration", "Property", "ShellScriptConfig", "HttpProxy"}
# EMR-only types with no meaning on Kubernetes: dropped with a warning (with the fields that refer to them).
IGNORED_TYPES = {
    "EbsConfiguration": "EBS volumes do not apply; size the cluster profile's pods instead",
    "EbsBlockDeviceConfig": "EBS volumes do not apply; size the cluster profile's pods instead",
    "VolumeSpecification": "EBS volumes do not apply; size the cluster profile's pods instead",
    "InstanceGroupConfig": "instance groups do not apply; set the cluster profile's executorInstances",
    "AutoScalingPolicy": "EMR auto scaling does not apply; set the cluster profile's executorInstances",
}
# Activities that AWS runs on an EmrCluster only; a workerGroup alone gives them a cluster profile here.
EMR_FAMILY = ("EmrActivity", "HiveActivity", "HiveCopyActivity", "PigActivity", "HadoopActivity")
PASSWORD_FIELDS = ("*password", "password")
# Fields AWS has that mean nothing on Kubernetes, with what to do instead ("" drops them silently).
DROPPED_FIELDS = {
    "role": "IAM roles do not apply; give credentials with spec.aws.credentialsSecret or a service account",
    "resourceRole": "IAM roles do not apply; use a compute profile's serviceAccountName",
    "keyPair": "SSH key pairs do not apply to pods",
    "imageId": "AMIs do not apply; set the compute profile's image",
    "securityGroups": "security groups do not apply; use Kubernetes NetworkPolicies",
    "securityGroupIds": "security groups do not apply; use Kubernetes NetworkPolicies",
    "subnetId": "subnets do not apply",
    "associatePublicIpAddress": "public IPs do not apply",
    "availabilityZone": "use the compute profile's nodeSelector (topology.kubernetes.io/zone)",
    "spotBidPrice": "spot pricing does not apply; use nodeSelector/tolerations for spot nodes",
    "useOnDemandOnLastAttempt": "spot pricing does not apply",
    "actionOnResourceFailure": "resources are pods; failed pods count as failed attempts",
    "actionOnTaskFailure": "resources are pods; failed pods count as failed attempts",
    "httpProxy": "set proxy environment variables in the compute profile's env",
    "logUri": "cluster logs are pod logs; set pipelineLogUri to keep them",
    "emrLogUri": "cluster logs are pod logs; set pipelineLogUri to keep them",
    "preActivityTaskConfig": "ShellScriptConfig hooks do not apply; add the commands to the activity",
    "postActivityTaskConfig": "ShellScriptConfig hooks do not apply; add the commands to the activity",
    "scheduleType": "",
    "schedule": "",
    "jdbcDriverJarUri": "drivers are chosen by the connection string",
}
CLUSTER_FIELDS = {
    "releaseLabel": "releaseLabel", "amiVersion": "releaseLabel", "applications": "applications",
    "bootstrapAction": "bootstrapAction", "coreInstanceCount": "executorInstances", "terminateAfter": "terminateAfter",
}
CLUSTER_DROPPED = ("masterInstanceType", "coreInstanceType", "taskInstanceType", "taskInstanceCount",
                   "masterInstanceBidPrice", "coreInstanceBidPrice", "taskInstanceBidPrice", "region",
                   "enableDebugging", "supportedProducts", "useOnDemandOnLastAttempt", "hadoopSchedulerType",
                   "masterSecurityGroupId", "slaveSecurityGroupId", "serviceAccessSecurityGroupId",
                   "additionalMasterSecurityGroupIds", "additionalSlaveSecurityGroupIds", "resizeClusterBeforeRunning",
                   "resizeClusterMaxInstances", "emrManagedMasterSecurityGroupId", "emrManagedSlaveSecurityGroupId",
                   "masterEbsConfiguration", "coreEbsConfiguration", "taskEbsConfiguration",
                   "masterInstanceGroups", "coreInstanceGroups", "taskInstanceGroups", "maximizeResourceAllocation",
                   "taskGroupConfiguration", "initTimeout", "masterInstanceTypeRole")
# Why some EmrCluster fields are dropped (the rest of CLUSTER_DROPPED size instances).
CLUSTER_REASONS = {
    "region": "the region comes from spec.aws.region",
    "enableDebugging": "debug logs are pod logs; set pipelineLogUri to keep them",
    "supportedProducts": "put the products in the cluster profile's image",
    "hadoopSchedulerType": "the scheduler is the cluster profile image's choice",
    "useOnDemandOnLastAttempt": "spot pricing does not apply",
    "resizeClusterBeforeRunning": "set the cluster profile's executorInstances",
    "resizeClusterMaxInstances": "set the cluster profile's executorInstances",
    **{key: "security groups do not apply; use Kubernetes NetworkPolicies"
       for key in ("masterSecurityGroupId", "slaveSecurityGroupId", "serviceAccessSecurityGroupId",
                   "additionalMasterSecurityGroupIds", "additionalSlaveSecurityGroupIds",
                   "emrManagedMasterSecurityGroupId", "emrManagedSlaveSecurityGroupId")},
}
CLUSTER_IMAGE = "apache/spark:3.5.1"
PARAMETER_KEYS = ("id", "type", "description", "helpText", "default", "optional", "isArray", "allowedValues",
                  "watermark")
NAME_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
HAS_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
FUNCTION_CALL = re.compile(r"[A-Za-z]+\(.*\)")
PARAMETER_REF = re.compile(r"#\{[^}]*?\b(my[A-Za-z0-9_]+)")
EXPRESSION = re.compile(r"#\{([^}]*)\}")
PARAMETER_NAME = re.compile(r"(?<![A-Za-z0-9_@.])\*?(my[A-Za-z0-9_]+)")
PARAMETER_ID = re.compile(r"my[A-Za-z0-9_]+")
PARAMETER_ONLY = re.compile(r"#\{\s*\*?(my[A-Za-z0-9_]+)\s*\}")


class ImportError_(ValueError):
    """The definition cannot be converted; the message names the object."""


@dataclass
class Conversion:
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)  # Secret manifests to fill in


def convert(definition: Mapping[str, Any], name: str, values: Mapping[str, Any] | None = None,
            parameters: list[Any] | None = None) -> Conversion:
    """``values`` and ``parameters`` are the separate files AWS's CLI takes (--parameter-values-uri,
    --parameter-objects); they win over the definition's own ``values`` and ``parameters`` of the same id."""
    try:
        normal = forms.normalise(definition)
        if parameters is not None:
            extra = forms.parameter_objects(parameters)
            ids = {p.get("id") for p in extra if isinstance(p, Mapping)}
            own: list[Any] = normal["parameters"] if isinstance(normal.get("parameters"), list) else []
            normal["parameters"] = [p for p in own if not (isinstance(p, Mapping) and p.get("id") in ids)] + extra
    except forms.FormError as error:
        raise ImportError_(str(error)) from None
    return _Converter(normal, name).run(values or {})


def _ref_id(value: Any) -> str | None:
    if isinstance(value, Mapping) and "ref" in value:
        return str(value["ref"])
    return None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def dns_name(text: str, limit: int = 53) -> str:
    """A DNS label; Pipeline names stay at 53 characters so that run names can add a suffix."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name or "imported")[:limit].rstrip("-")


class _Converter:
    def __init__(self, definition: Mapping[str, Any], name: str) -> None:
        if not isinstance(definition, Mapping) or not isinstance(definition.get("objects"), list):
            raise ImportError_('not an AWS Data Pipeline definition: expected a JSON object with an "objects" list')
        self.name = dns_name(name)
        self.raw = definition
        self.warnings: list[str] = []
        if self.name != name:
            self.warnings.append(f'the Pipeline is named "{self.name}" (names are lower case letters, digits and '
                                 '"-"); use --name to choose another')
        self.objects: dict[str, dict[str, Any]] = {}
        for index, obj in enumerate(definition["objects"]):
            if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str) or not obj["id"]:
                raise ImportError_(f"objects[{index}]: every object needs an id (a string)")
            if obj["id"] in self.objects:
                raise ImportError_(f'objects[{index}]: the id "{obj["id"]}" is used twice')
            self.objects[obj["id"]] = dict(obj)
        self.secrets: list[dict[str, Any]] = []
        self.names: dict[str, str] = {}
        self.schedule_type = "cron"
        self.schedule_names: dict[str, str] = {}  # Schedule object id -> its name in spec.schedules (or default)
        self.parameter_values: dict[str, Any] = {}  # id -> value or default, for fields that take no expressions
        self.list_vars: dict[str, tuple[str, list[str]]] = {}  # my* fields holding lists -> (object, values)
        self.password_params: set[str] = set()  # parameters read by *password fields (now Secret references)
        self.taken: set[str] = set()  # manifest names in use
        self.group_profiles: dict[str, str] = {}  # workerGroup -> cluster profile made for EMR-family activities
        self.poll_groups: dict[str, str] = {}  # workerGroup as written -> its spec.workerGroups name (mode poll)
        self.default_group = ""

    def warn(self, obj_id: str, message: str) -> None:
        self.warnings.append(f'object "{obj_id}": {message}')

    # ------------------------------------------------------------------ main
    def run(self, values: Mapping[str, Any]) -> Conversion:
        all_values = {**dict(self._mapping(self.raw.get("values"), "values")), **dict(values)}
        raw_parameters = self.raw.get("parameters") or []
        for raw in raw_parameters if isinstance(raw_parameters, list) else []:
            if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and "default" in raw:
                self.parameter_values[raw["id"].lstrip("*")] = raw["default"]
        self.parameter_values.update({str(k).lstrip("*"): v for k, v in all_values.items()})
        default = self.objects.pop("Default", {})
        spec: dict[str, Any] = {"activated": False}
        self._flatten_parents()
        self._drop_untyped_and_ignored()
        self._split_legacy_mysql_nodes()
        for obj_id, obj in self.objects.items():
            self._type_of(obj_id, obj)  # fail early on unknown types
            self.names[obj_id] = self._name(obj_id, self.taken)
        self.default_group = str(default.get("workerGroup", "")) if not default.get("runsOn") else ""
        self._schedule(default, spec)
        self._defaults(default, spec)
        sections: dict[str, list[dict[str, Any]]] = {s: [] for s in catalog.SECTIONS}
        for obj_id, obj in self.objects.items():
            type_name = self._type_of(obj_id, obj)
            if type_name in INLINE_TYPES:
                continue
            section, converted = self._object(obj_id, obj, type_name)
            sections[section].append(converted)
        for section in catalog.SECTIONS:
            if sections[section]:
                spec[section] = sections[section]
        self._worker_group_profiles(spec)
        if self.poll_groups:
            spec["workerGroups"] = {name: {"mode": "poll"} for name in self.poll_groups.values()}
        self._parameters(spec, all_values)
        manifest = {"apiVersion": API_VERSION, "kind": "Pipeline", "metadata": {"name": self.name}, "spec": spec}
        return Conversion(manifest, self.warnings, self.secrets)

    @staticmethod
    def _mapping(value: Any, what: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ImportError_(f'"{what}" must be a JSON object mapping parameter ids to values')
        return value

    def _type_of(self, obj_id: str, obj: Mapping[str, Any]) -> str:
        type_name = obj.get("type")
        if not isinstance(type_name, str):
            raise ImportError_(f'object "{obj_id}": field "type" must be a type name (a string), not '
                               f"{_json_kind(type_name)}")
        if type_name in catalog.TYPES or type_name in RESOURCE_TYPES or type_name in INLINE_TYPES:
            return type_name
        raise ImportError_(f'object "{obj_id}" has type "{type_name}", which kube-datapipeline does not know'
                           f"{_type_hint(type_name)}")

    def _drop_untyped_and_ignored(self) -> None:
        """Objects with no type only pass fields on (inheritance is flattened by now); EMR-only types go."""
        parents = {_ref_id(o.get("parent")) for o in self.raw_objects.values()}
        for obj_id, obj in list(self.objects.items()):
            type_name = obj.get("type")
            if type_name is None:
                del self.objects[obj_id]
                heirs = sorted(i for i, o in self.raw_objects.items() if _ref_id(o.get("parent")) == obj_id)
                self.warn(obj_id, f"has no type: its fields were inherited by {', '.join(heirs)}" if obj_id in parents
                          else "has no type and no object inherits from it; dropped")
            elif isinstance(type_name, str) and type_name in IGNORED_TYPES:
                del self.objects[obj_id]
                self.warn(obj_id, f"{type_name} dropped: {IGNORED_TYPES[type_name]}")

    def _name(self, obj_id: str, taken: set[str], quiet: bool = False) -> str:
        name = NAME_SAFE.sub("-", obj_id).strip("-")
        if not name or not name[0].isalpha():
            name = f"o-{name}"
        name = name[:63]
        unique, counter = name, 2
        while unique in taken:
            suffix = f"-{counter}"
            unique, counter = name[:63 - len(suffix)] + suffix, counter + 1
        taken.add(unique)
        if unique != obj_id and not quiet:
            self.warn(obj_id, f'renamed to "{unique}" (names are letters, digits, "-", "_" and ".")')
        return unique

    def _flatten_parents(self) -> None:
        """AWS parents may cross types; inline each object's parent chain so no parent field remains."""
        def merged(obj_id: str, seen: tuple[str, ...]) -> dict[str, Any]:
            obj = self.objects[obj_id]
            parent = _ref_id(obj.get("parent"))
            if "parent" in obj and parent is None:
                raise ImportError_(f'object "{obj_id}": field "parent" must be a reference {{"ref": "id"}}')
            if parent is None or parent == "Default":  # every object inherits Default anyway
                return {k: v for k, v in obj.items() if k != "parent"}
            if parent in seen or parent not in self.objects:
                raise ImportError_(f'object "{obj_id}": parent "{parent}" ' +
                                   ("forms a cycle: " + " -> ".join([*seen, parent]) if parent in seen
                                    else "does not exist"))
            base = merged(parent, (*seen, parent))
            return {**{k: v for k, v in base.items() if k not in ("id", "name")},
                    **{k: v for k, v in obj.items() if k != "parent"}}

        self.raw_objects = dict(self.objects)
        self.objects = {obj_id: merged(obj_id, (obj_id,)) for obj_id in self.objects}

    # ------------------------------------------------------------------ Default and Schedule
    def _schedule(self, default: Mapping[str, Any], spec: dict[str, Any]) -> None:
        schedule_type = str(default.get("scheduleType", "cron")).lower()
        if schedule_type not in ("cron", "timeseries", "ondemand"):
            raise ImportError_(f'object "Default": scheduleType "{schedule_type}" is not cron, timeseries or ondemand')
        self.schedule_type = schedule_type
        spec["scheduleType"] = schedule_type
        users: dict[str, list[str]] = {}
        for obj_id, obj in [("Default", default), *self.objects.items()]:
            if "schedule" in obj:
                ref = _ref_id(obj["schedule"])
                if ref is None:
                    raise ImportError_(f'object "{obj_id}": field "schedule" must be a reference {{"ref": "id"}}')
                users.setdefault(ref, []).append(obj_id)
            other = obj.get("scheduleType")
            if obj_id != "Default" and other is not None and str(other).lower() != schedule_type:
                self.warn(obj_id, f'scheduleType "{other}" differs from the pipeline\'s "{schedule_type}"; a '
                          "Pipeline has one scheduleType, so it is dropped")
        schedules = [i for i, o in self.objects.items() if o.get("type") == "Schedule"]
        if schedule_type == "ondemand":
            for schedule_id in sorted({*schedules, *users}):
                self.warn(schedule_id, "ignored: an ondemand pipeline runs once per activation, not on a schedule")
            return
        for ref, by in users.items():
            if ref not in self.objects or self.objects[ref].get("type") != "Schedule":
                raise ImportError_(f'object "{by[0]}": field "schedule" refers to "{ref}", which is not a Schedule '
                                   "object of this definition")
        chosen = _ref_id(default.get("schedule")) if default.get("schedule") is not None else None
        if chosen is None and users:  # no Default.schedule: the schedule most objects use is the default one
            chosen = max(users, key=lambda ref: len(users[ref]))
        chosen = chosen or (schedules[0] if len(schedules) == 1 else None)
        if chosen is None:
            raise ImportError_('object "Default": no Schedule found; set Default.schedule to a Schedule object, or '
                               'scheduleType to "ondemand"' + (f" (there are {len(schedules)} Schedule objects and "
                                                               "none is referenced)" if schedules else ""))
        for schedule_id in schedules:
            if schedule_id != chosen and schedule_id not in users:
                self.warn(schedule_id, f'unused Schedule dropped (the pipeline runs on "{chosen}")')
        spec["schedule"] = self._schedule_fields(chosen, self.objects[chosen])
        self.schedule_names = {chosen: DEFAULT_SCHEDULE}
        taken = {DEFAULT_SCHEDULE}
        for ref in users:
            if ref != chosen:
                self.schedule_names[ref] = _schedule_name(ref, taken)
                spec.setdefault("schedules", {})[self.schedule_names[ref]] = self._schedule_fields(
                    ref, self.objects[ref])

    def _schedule_ref(self, obj_id: str, type_name: str, value: Any, result: dict[str, Any]) -> None:
        """Each object keeps its own Schedule: by name, unless it is the pipeline's default one."""
        name = self.schedule_names.get(_ref_id(value) or "", DEFAULT_SCHEDULE)
        if type_name in RESOURCE_TYPES:
            if name != DEFAULT_SCHEDULE:
                self.warn(obj_id, f'schedule "{name}" dropped: each attempt gets its own pod here, so a resource\'s '
                          "schedule changes nothing")
        elif name != DEFAULT_SCHEDULE:
            result["schedule"] = name

    def _schedule_fields(self, chosen: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Schedule fields take no expressions here: #{...} and makeDate(...) are evaluated now."""
        fixed = {k: self._fixed(chosen, k, self._string(chosen, k, v), "Schedule")
                 for k, v in raw.items() if k in ("period", "startAt", "occurrences", "startDateTime", "endDateTime")}
        schedule: dict[str, Any] = {}
        if "period" in fixed:
            schedule["period"] = self._period(chosen, fixed["period"])
        if "startAt" in fixed:
            schedule["startAt"] = fixed["startAt"].upper()
        if "occurrences" in fixed:
            try:
                schedule["occurrences"] = int(fixed["occurrences"])
            except ValueError:
                raise ImportError_(f'object "{chosen}": field "occurrences" must be a whole number, not '
                                   f'"{raw["occurrences"]}"') from None
        for key in ("startDateTime", "endDateTime"):
            if key in fixed:
                schedule[key] = self._instant(chosen, key, fixed[key].strip())
        if "startAt" not in schedule and "startDateTime" not in schedule:
            schedule["startAt"] = "FIRST_ACTIVATION_DATE_TIME"
        for key in raw:
            if key not in ("id", "name", "type", "period", "startAt", "occurrences", "startDateTime", "endDateTime"):
                self.warn(chosen, f'Schedule field "{key}" has no equivalent; dropped')
        return schedule

    @staticmethod
    def _instant(obj_id: str, key: str, text: str) -> str:
        """AWS date-times are UTC; add the Z that makes it explicit here (after checking what was written)."""
        try:
            parse_instant(text)
        except ValueError:
            raise ImportError_(f'object "{obj_id}": field "{key}": "{text}" is not a date-time; AWS writes them '
                               'like "2026-01-31T00:00:00" (UTC)') from None
        return text if HAS_OFFSET.search(text[10:]) else f"{text}Z"

    def _period(self, obj_id: str, text: str) -> str:
        try:
            parse_period(text)
        except DurationError as error:
            raise ImportError_(f'object "{obj_id}": field "period": {error}') from None
        return _period(text)

    # ------------------------------------------------------------------ fields that take no expressions
    def _fixed(self, obj_id: str, key: str, text: str, what: str) -> str:
        """The value of a field that holds one fixed value here, with its #{...} evaluated from the
        parameters' values and defaults (AWS evaluates them at activation)."""
        source = text.strip()
        if not has_expression(source) and FUNCTION_CALL.fullmatch(source):
            source = f"#{{{source}}}"  # the guide writes "startDateTime": "makeDate(2011,5,24)"
        if not has_expression(source):
            return text
        try:
            value = parse_template(source).evaluate(MappingScope(self._scope_values()))
        except ExpressionError as error:
            missing = PARAMETER_REF.findall(source)
            raise ImportError_(f'object "{obj_id}": field "{key}" is "{text}"; a {what} field holds a fixed '
                               f"value here, evaluated at import, and {error}" +
                               (f" (give {', '.join(missing)} a value with --values)" if missing else "")) from None
        result = _iso(value) if isinstance(value, datetime) else to_string(value)
        self.warn(obj_id, f'field "{key}": "{text}" was evaluated at import to "{result}" ({what} fields take no '
                  "expressions here; a value given at run time does not change it)")
        return result

    def _scope_values(self) -> dict[str, Any]:
        values = {k: v for k, v in self.parameter_values.items() if isinstance(v, str | list)}
        values.update({k: [str(i) for i in v] for k, (_, v) in self.list_vars.items()})
        return values

    def _defaults(self, default: Mapping[str, Any], spec: dict[str, Any]) -> None:
        known = {f.name: f for f in catalog.DEFAULTS_FIELDS}
        defaults: dict[str, Any] = {}
        user_vars: dict[str, str] = {}
        for key, value in default.items():
            if key in ("id", "name", "type", "scheduleType", "schedule"):
                continue
            if key == "pipelineLogUri":
                spec["pipelineLogUri"] = self._string("Default", key, value)
            elif key.startswith("my"):
                user_vars[key] = self._string("Default", key, value)
            elif key in known and key != "vars":
                defaults[key] = self._value("Default", key, known[key], value)
                if key == "workerGroup":
                    defaults[key] = self._poll_group("Default", str(defaults[key]))
            elif key in DROPPED_FIELDS:
                if DROPPED_FIELDS[key]:
                    self.warn("Default", f'field "{key}": {DROPPED_FIELDS[key]}')
            else:
                self.warn("Default", f'field "{key}" has no equivalent here (defaults apply to activities); dropped')
        if user_vars:
            defaults["vars"] = user_vars
        if defaults:
            spec["defaults"] = defaults

    # ------------------------------------------------------------------ objects
    def _object(self, obj_id: str, obj: Mapping[str, Any], type_name: str) -> tuple[str, dict[str, Any]]:
        if type_name in RESOURCE_TYPES:
            return self._resource(obj_id, obj, type_name)
        type_spec = catalog.TYPES[type_name]
        result: dict[str, Any] = {"name": self.names[obj_id], "type": type_name}
        user_vars: dict[str, str] = {}
        for key, value in obj.items():
            if key in ("id", "name", "type"):
                continue
            if key.startswith("my"):
                self._user_field(obj_id, key, value, user_vars)
            elif key in PASSWORD_FIELDS and "passwordSecret" in type_spec.field_map:
                result["passwordSecret"] = self._secret(obj_id, "password", key, value)
            elif key == "*username" and "usernameSecret" in type_spec.field_map:
                result["usernameSecret"] = self._secret(obj_id, "username", key, value)
            elif key == "schedule":
                self._schedule_ref(obj_id, type_name, value, result)
            elif key == "workerGroup" and "workerGroup" in type_spec.field_map:
                self._worker_group(obj_id, obj, type_name, self._string(obj_id, key, value), result)
            elif key in type_spec.field_map:
                result[key] = self._value(obj_id, key, type_spec.field_map[key], value)
            elif key in DROPPED_FIELDS:
                if DROPPED_FIELDS[key]:
                    self.warn(obj_id, f'field "{key}": {DROPPED_FIELDS[key]}')
            elif key.startswith("*"):
                self.warn(obj_id, f'masked field "{key}" was not copied; pass secrets through Secrets')
            else:
                self.warn(obj_id, f'{type_name} field "{key}" has no equivalent; dropped')
        if type_name in EMR_FAMILY and "runsOn" not in obj and "workerGroup" not in obj and self.default_group:
            self._worker_group(obj_id, obj, type_name, self.default_group, result)
        if type_name == "PigActivity":
            self.warn(obj_id, "PigActivity is not supported here (no Pig runtime for Spark or Hadoop 3): "
                      "`datapipeline validate` rejects it until it is rewritten as a HiveActivity")
        for index, step in enumerate(result.get("step") or () if type_name == "EmrActivity" else ()):
            if any("#{" in part for part in split_step(str(step))[:2]):
                continue  # its jar or command is an expression: checked when it runs
            try:
                parse_step(str(step))
            except StepError as error:
                self.warn(obj_id, f"step {index + 1} cannot run here ({error}); `datapipeline validate` rejects it "
                          "until it is rewritten")
        if type_name.endswith("Database") and "connectionString" not in result:
            result["connectionString"] = self._placeholder_connection(obj, type_name)
            self.warn(obj_id, f'{type_name} needs a connectionString here: fill in "{result["connectionString"]}"')
        if user_vars:
            result["vars"] = user_vars
        return type_spec.section, result

    @staticmethod
    def _placeholder_connection(obj: Mapping[str, Any], type_name: str) -> str:
        """A connection string to fill in, with what the AWS object says (unless that is an expression)."""
        def plain(key: str, default: str) -> str:
            value = str(obj.get(key, ""))
            return value if re.fullmatch(r"[A-Za-z0-9_-]+", value) else default

        database = plain("databaseName", "DATABASE")
        if type_name == "RedshiftDatabase":
            return f"jdbc:postgresql://{plain('clusterId', 'CLUSTER')}.REGION.redshift.amazonaws.com:5439/{database}"
        if type_name == "RdsDatabase":
            return f"jdbc:mysql://{plain('rdsInstanceId', 'INSTANCE')}.REGION.rds.amazonaws.com:3306/{database}"
        return f"jdbc:mysql://HOST:3306/{database}"

    def _split_legacy_mysql_nodes(self) -> None:
        """Old MySqlDataNodes (and SqlDataNodes, in the guide's CLI tutorial) carry their own connection; make
        each a JdbcDatabase object of its own."""
        for obj_id, obj in list(self.objects.items()):
            if obj.get("type") not in ("MySqlDataNode", "SqlDataNode") or "connectionString" not in obj:
                continue
            db_id = f"{obj_id}-database"
            while db_id in self.objects:
                db_id += "-1"
            database = {"id": db_id, "type": "JdbcDatabase", "connectionString": obj["connectionString"]}
            moved = ("username", "*password", "password", "*username", "jdbcProperties", "jdbcDriverClass")
            database.update({key: obj[key] for key in moved if key in obj})
            self.objects[db_id] = database
            self.objects[obj_id] = {k: v for k, v in obj.items() if k not in (*moved, "connectionString")}
            if "database" in obj:
                self.warn(obj_id, 'has both a database and a connectionString; the connectionString wins')
            self.objects[obj_id]["database"] = {"ref": db_id}
            self.warn(obj_id, f'its connection became the database "{db_id}"')

    def _resource(self, obj_id: str, obj: Mapping[str, Any], type_name: str) -> tuple[str, dict[str, Any]]:
        section, new_type = RESOURCE_TYPES[type_name]
        result: dict[str, Any] = {"name": self.names[obj_id], "type": new_type}
        if type_name == "Ec2Resource":
            for key, value in obj.items():
                if key == "schedule":
                    self._schedule_ref(obj_id, type_name, value, result)
                if key in ("id", "name", "type", "schedule", "scheduleType"):
                    continue
                if key == "instanceType":
                    result["instanceType"] = self._string(obj_id, key, value)
                elif key == "terminateAfter":
                    result["terminateAfter"] = self._duration(obj_id, key, self._string(obj_id, key, value))
                elif key == "workerGroup":
                    self.warn(obj_id, 'field "workerGroup": has no meaning on a resource here; set it on activities')
                else:
                    reason = DROPPED_FIELDS.get(key) or "no equivalent; dropped"
                    self.warn(obj_id, f'Ec2Resource field "{key}": {reason}')
            self.warn(obj_id, "became a compute profile; set its image, cpu and memory for the pods")
            return section, result
        result["image"] = CLUSTER_IMAGE
        self.warn(obj_id, f'became a cluster profile with image "{CLUSTER_IMAGE}"; pick the image with your tools')
        for key, value in obj.items():
            if key == "schedule":
                self._schedule_ref(obj_id, type_name, value, result)
            if key in ("id", "name", "type", "schedule", "scheduleType"):
                continue
            if key in CLUSTER_FIELDS:
                target = CLUSTER_FIELDS[key]
                spec = catalog.TYPES["ClusterProfile"].field_map[target]
                result[target] = self._value(obj_id, key, spec, value)
            elif key == "configuration":
                result["configuration"] = [self._emr_configuration(obj_id, ref, ()) for ref in _as_list(value)]
            elif key in CLUSTER_DROPPED or key in DROPPED_FIELDS:
                reason = (CLUSTER_REASONS.get(key) or DROPPED_FIELDS.get(key)
                          or "instances do not apply; size the pods with driver/executor cpu and memory")
                self.warn(obj_id, f'EmrCluster field "{key}": {reason}')
            else:
                self.warn(obj_id, f'EmrCluster field "{key}" has no equivalent; dropped')
        return section, result

    def _emr_configuration(self, user: str, ref: Any, seen: tuple[str, ...]) -> dict[str, Any]:
        config_id = _ref_id(ref)
        config = self.objects.get(config_id or "")
        if config_id is None or config is None or config.get("type") != "EmrConfiguration":
            raise ImportError_(f'object "{user}": field "configuration" must refer to an EmrConfiguration object, '
                               f"not {config_id or ref!r}")
        if config_id in seen:
            raise ImportError_(f'object "{config_id}": configuration cycle: ' + " -> ".join([*seen, config_id]))
        properties = {}
        for prop_ref in _as_list(config.get("property", [])):
            prop_id = _ref_id(prop_ref)
            prop = self.objects.get(prop_id or "")
            if prop is None or prop.get("type") != "Property" or "key" not in prop:
                raise ImportError_(f'object "{config_id}": field "property" must refer to Property objects with a '
                                   f"key, not {prop_id or prop_ref!r}")
            properties[str(prop["key"])] = str(prop.get("value", ""))
        result: dict[str, Any] = {"classification": str(config.get("classification", "")), "properties": properties}
        nested = [self._emr_configuration(config_id, v, (*seen, config_id))
                  for v in _as_list(config.get("configuration", []))]
        if nested:
            result["configurations"] = nested
        return result

    def _secret(self, obj_id: str, key: str, field_name: str, value: Any) -> dict[str, str]:
        """A Secret reference in place of a written (or parameter-fed) secret; the value is never copied."""
        secret_name = dns_name(f"{self.name}-{self.names.get(obj_id, obj_id)}", limit=63)
        self._secret_stub(secret_name, key)
        fed_by = sorted(set(PARAMETER_ONLY.findall(str(value)))) if isinstance(value, str) else []
        self.password_params.update(fed_by)
        source = f" (its value came from parameter {', '.join(fed_by)})" if fed_by else ""
        self.warn(obj_id, f'field "{field_name}" was not copied{source}: put the {key} in Secret "{secret_name}" '
                  f'key "{key}" (referenced as {key}Secret)')
        return {"name": secret_name, "key": key}

    def _secret_stub(self, secret_name: str, key: str) -> None:
        """The Secret the user fills in (printed with the manifest): the value itself is never copied."""
        secret = next((s for s in self.secrets if s["metadata"]["name"] == secret_name), None)
        if secret is None:
            secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name}, "stringData": {}}
            self.secrets.append(secret)
        secret["stringData"][key] = "FILL-ME-IN"

    def _parameter_secret(self, pid: str, plain: str) -> dict[str, str]:
        """A masked parameter's value lives in a Secret (one per pipeline, a key per parameter), never inline."""
        secret_name = dns_name(f"{self.name}-parameters", limit=63)
        self._secret_stub(secret_name, plain)
        self.warn(pid, f'masked parameter: its value is not copied; put it in Secret "{secret_name}" key '
                       f'"{plain}". Only a shell command can read it, as #{{{pid}}} (the variable '
                       f"${masked_env_name(plain)})")
        return {"name": secret_name, "key": plain}

    def _user_field(self, obj_id: str, key: str, value: Any, user_vars: dict[str, str]) -> None:
        """A my* field; one holding a list becomes an array parameter (vars hold single strings)."""
        if isinstance(value, list) and len(value) != 1:
            items = [self._string(obj_id, key, v) for v in value]
            earlier = self.list_vars.get(key)
            if earlier is not None and earlier[1] != items:
                raise ImportError_(f'object "{obj_id}": field "{key}" holds a list, which becomes the array '
                                   f'parameter "{key}", but object "{earlier[0]}" gives it other values; rename one')
            self.list_vars[key] = (obj_id, items)
            self.warn(obj_id, f'field "{key}" holds a list: it became the array parameter "{key}" (default '
                      f"{', '.join(items)})")
            return
        user_vars[key] = self._string(obj_id, key, value)

    def _worker_group(self, obj_id: str, obj: Mapping[str, Any], type_name: str, group: str,
                      result: dict[str, Any]) -> None:
        """AWS routes a workerGroup to a self-managed Task Runner. Here: runsOn wins; an EMR-family activity gets a
        cluster profile; anything else keeps a node selector, and the warning says which label nodes need."""
        if "runsOn" in obj:
            self.warn(obj_id, 'field "workerGroup" dropped: runsOn wins when both are set (as on AWS)')
            return
        if type_name in EMR_FAMILY:
            result["runsOn"] = self._group_profile(group)
            self.warn(obj_id, f'workerGroup "{group}" became runsOn "{result["runsOn"]}", a cluster profile with '
                      f'image "{CLUSTER_IMAGE}" ({type_name} runs on a cluster profile here)')
            return
        result["workerGroup"] = self._poll_group(obj_id, group)

    def _poll_group(self, obj_id: str, group: str) -> str:
        """A workerGroup means a Task Runner on the user's machines: declared as mode poll (docs/worker-groups.md),
        its name made a DNS label if it is not one; said once per group."""
        if group in self.poll_groups:
            return self.poll_groups[group]
        name = re.sub(r"[^a-z0-9-]+", "-", group.lower()).strip("-")[:40].strip("-") or "group"
        while name in self.poll_groups.values():
            name = f"{name[:37]}-{len(self.poll_groups) + 1}"
        self.poll_groups[group] = name
        renamed = f' (renamed "{name}": a poll group is a DNS label)' if name != group else ""
        self.warn(obj_id, f'workerGroup "{group}"{renamed} is declared in spec.workerGroups with mode poll: its '
                  f"attempts wait for a poller on the group's machines, as for AWS's Task Runner: run "
                  f"`datapipeline-runner poll --worker-group {name}` there (docs/worker-groups.md); or set "
                  f"mode nodeSelector to run its pods on nodes labelled {LABEL_WORKER_GROUP}={name}")
        return name

    def _group_profile(self, group: str) -> str:
        if group not in self.group_profiles:
            self.group_profiles[group] = self._name(f"workerGroup-{group}", self.taken, quiet=True)
        return self.group_profiles[group]

    def _worker_group_profiles(self, spec: dict[str, Any]) -> None:
        profiles = [{"name": name, "type": "ClusterProfile", "image": CLUSTER_IMAGE}
                    for name in self.group_profiles.values()]
        if profiles:
            spec["clusterProfiles"] = [*spec.get("clusterProfiles", []), *profiles]

    def _string(self, obj_id: str, key: str, value: Any) -> str:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, Mapping | list) or value is None:
            raise ImportError_(f'object "{obj_id}": field "{key}" must be a string, not {_json_kind(value)}')
        return str(value)

    def _value(self, obj_id: str, key: str, spec: catalog.FieldSpec, value: Any) -> Any:
        kind = spec.kind
        if kind in (Kind.REF, Kind.REFS):
            refs = []
            for item in _as_list(value):
                ref = _ref_id(item)
                if ref is None:
                    raise ImportError_(f'object "{obj_id}": field "{key}" must be a reference {{"ref": "id"}}, not '
                                       f"{_json_kind(item)}")
                if ref not in self.names:
                    raise ImportError_(f'object "{obj_id}": field "{key}" refers to "{ref}", which is not defined'
                                       f"{did_you_mean(ref, self.names)}")
                refs.append(self.names[ref])
            if kind is Kind.REF and not refs:
                raise ImportError_(f'object "{obj_id}": field "{key}" must be a reference {{"ref": "id"}}, not an '
                                   "empty list")
            if kind is Kind.REF and len(refs) > 1:
                self.warn(obj_id, f'field "{key}" holds {len(refs)} references; only the first, "{refs[0]}", is kept')
            return refs[0] if kind is Kind.REF else refs
        if kind is Kind.STRINGS:
            return [self._string(obj_id, key, v) for v in _as_list(value)]
        if kind is Kind.INT:
            try:
                return int(self._fixed(obj_id, key, self._string(obj_id, key, value), "whole-number"))
            except ValueError:
                raise ImportError_(f'object "{obj_id}": field "{key}" must be a whole number, not "{value}"') from None
        if kind is Kind.BOOL:
            text = self._fixed(obj_id, key, self._string(obj_id, key, value), "true/false").lower()
            if text not in ("true", "false"):
                raise ImportError_(f'object "{obj_id}": field "{key}" must be "true" or "false", not "{value}"')
            return text == "true"
        if kind is Kind.DURATION:
            return self._duration(obj_id, key, self._string(obj_id, key, value))
        if kind is Kind.STRING:
            text = self._string(obj_id, key, value)
            if spec.enum:
                text = self._fixed_value(obj_id, key, spec, text)
            if key in ("failureAndRerunMode", "compression"):
                return text.lower()
            return text
        return value

    def _duration(self, obj_id: str, key: str, text: str) -> str:
        """A duration: expressions evaluated now; EmrCluster's terminateAfter may be a bare number of hours."""
        fixed = self._fixed(obj_id, key, text, "duration").strip()
        if fixed.isdigit():
            self.warn(obj_id, f'field "{key}": "{fixed}" is a number of hours (AWS\'s older form); written as '
                      f'"{fixed} hours"')
            return f"{fixed} hours"
        return fixed

    def _fixed_value(self, obj_id: str, key: str, spec: catalog.FieldSpec, text: str) -> str:
        """A field with fixed values (insertMode, ...) cannot hold an expression here: use the parameter's value."""
        match = PARAMETER_ONLY.fullmatch(text)
        if match is None:
            return text
        value = self.parameter_values.get(match.group(1))
        if not isinstance(value, str):
            self.warn(obj_id, f'field "{key}" takes one of {", ".join(spec.enum)}, not an expression, and parameter '
                      f'"{match.group(1)}" has no value to use; set it by hand')
            return text
        self.warn(obj_id, f'field "{key}" takes one of {", ".join(spec.enum)}, not an expression: used "{value}", '
                  f'the value of parameter "{match.group(1)}"')
        return value

    def _parameters(self, spec: dict[str, Any], values: Mapping[str, Any]) -> None:
        raw_parameters = self.raw.get("parameters") or []
        if not isinstance(raw_parameters, list):
            raise ImportError_('"parameters" must be a JSON list of parameter objects')
        used = self._references(spec)
        params = []
        for index, raw in enumerate(raw_parameters):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
                raise ImportError_(f"parameters[{index}]: every parameter needs an id (a string)")
            param = self._parameter(raw, used, values)
            if param is not None:
                params.append(param)
        defined = {p["id"] for p in params}
        params.extend(self._list_parameters(defined))
        kept = self._values(values, defined, params, used)
        if params:
            spec["parameters"] = params
        if kept:
            spec["values"] = kept

    def _parameter(self, raw: Mapping[str, Any], used: set[str], values: Mapping[str, Any]) -> dict[str, Any] | None:
        pid = raw["id"]
        plain = pid.lstrip("*")
        if plain not in used and (pid.startswith("*") or plain in self.password_params):
            self.warn(pid, "parameter dropped: its only uses were *password fields, which became Secret "
                           "references (its value is not copied)")
            return None
        param: dict[str, Any] = {"id": plain}
        if pid.startswith("*"):
            param = {"id": pid, "valueFromSecret": self._parameter_secret(pid, plain)}
        for key in ("type", "description", "helpText"):
            if key in raw:
                param[key] = self._string(pid, key, raw[key])
        if "default" in raw and not pid.startswith("*"):
            default = raw["default"]
            param["default"] = [str(v) for v in default] if isinstance(default, list) else str(default)
        for key in ("optional", "isArray"):
            if key in raw:
                param[key] = str(raw[key]).lower() == "true" or param.get(key, False)
        if "allowedValues" in raw:
            param["allowedValues"] = [str(v) for v in _as_list(raw["allowedValues"])]
        for key in raw:
            if key not in PARAMETER_KEYS:
                self.warn(pid, f'parameter field "{key}" has no equivalent; dropped')
        self._plain_object_key(param, values.get(plain, values.get(pid)))
        return param

    def _plain_object_key(self, param: dict[str, Any], value: Any) -> None:
        """AWS takes a plain key ("my-bucket/path") for an AWS::S3::ObjectKey; here that type means s3://...,
        so such a parameter becomes a String."""
        if param.get("type") != "AWS::S3::ObjectKey":
            return
        given = [v for v in (value, param.get("default")) if v is not None]
        plain = [str(v) for item in given for v in _as_list(item) if not str(v).startswith("s3://")]
        if plain:
            param["type"] = "String"
            self.warn(param["id"], f'type AWS::S3::ObjectKey became String: the value "{plain[0]}" is not an '
                      "s3:// URI (AWS accepts plain keys)")

    def _list_parameters(self, defined: set[str]) -> list[dict[str, Any]]:
        return [{"id": key, "isArray": True, "default": items}
                for key, (_, items) in self.list_vars.items() if key not in defined]

    def _values(self, values: Mapping[str, Any], defined: set[str], params: list[dict[str, Any]],
                used: set[str]) -> dict[str, Any]:
        """Values to keep; a value for an id with no parameter object defines that parameter (as AWS allows)."""
        kept: dict[str, Any] = {}
        for raw_key, value in values.items():
            key = str(raw_key)
            plain = key.lstrip("*")
            if key.startswith("*") or (plain in self.password_params and plain not in used):
                self.warn(key, "value not copied: secrets go in Secrets, never in the manifest (the *password warnings "
                               "name the Secret to fill)")
                continue
            if not PARAMETER_ID.fullmatch(plain):
                self.warn(key, 'value dropped: parameter ids start with "my" (AWS rule)')
                continue
            if plain not in defined:
                params.append({"id": plain, **({"isArray": True} if isinstance(value, list) else {})})
                defined.add(plain)
                self.warn(key, "has a value but no parameter object: it became a String parameter")
            kept[plain] = [str(v) for v in value] if isinstance(value, list) else str(value)
        return kept

    def _references(self, spec: Mapping[str, Any]) -> set[str]:
        """Parameters (masked or not) still used by a converted field."""
        found: set[str] = set()

        def walk(value: Any) -> None:
            if isinstance(value, str):
                for expression in EXPRESSION.findall(value):
                    found.update(PARAMETER_NAME.findall(expression))
            elif isinstance(value, Mapping):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk({k: v for k, v in spec.items() if k not in ("parameters", "values")})
        return found


def _type_hint(type_name: str) -> str:
    """A known type only when it is close (a typo); else the known types of the same family."""
    known = sorted([t for t in catalog.TYPES if catalog.TYPES[t].section not in ("computeProfiles",
                                                                                 "clusterProfiles")]
                   + [*RESOURCE_TYPES, *INLINE_TYPES])
    close = difflib.get_close_matches(type_name, known, n=1, cutoff=0.85)
    if close:
        return f'; did you mean "{close[0]}"?'
    for suffix in ("Activity", "DataNode", "Database", "Precondition"):
        if type_name.endswith(suffix):
            family = [t for t in known if t.endswith(suffix)]
            return f"; the {suffix.lower()} types it knows are {', '.join(family)}"
    return ""


def _json_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f'"{value}"'


def _iso(moment: datetime) -> str:
    return utc_text(moment)


def _period(text: str) -> str:
    # AWS writes "1 Day", "15 Minutes", "1 hour"; keep the words, lower case.
    return text.strip().lower()


def _schedule_name(obj_id: str, taken: set[str]) -> str:
    """A spec.schedules name for a Schedule object: a DNS label of at most 20 characters, unique."""
    base = re.sub(r"[^a-z0-9]+", "-", obj_id.lower()).strip("-")[:20].strip("-") or "schedule"
    name, counter = base, 2
    while name in taken:
        suffix = f"-{counter}"
        name, counter = base[:20 - len(suffix)].strip("-") + suffix, counter + 1
    taken.add(name)
    return name
