"""Convert an AWS Data Pipeline definition (put-pipeline-definition JSON) into a Pipeline manifest.

Pure: JSON in, a manifest dict and warnings out. What has no equivalent here
becomes a warning naming the object and field; secrets become Secret
references to fill in; an unknown object type is an error naming its id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datapipeline.core import catalog
from datapipeline.core.catalog import Kind
from datapipeline.core.definition import API_VERSION
from datapipeline.core.problems import did_you_mean

# AWS types that map to a section here under another name.
RESOURCE_TYPES = {"Ec2Resource": ("computeProfiles", "ComputeProfile"), "EmrCluster": ("clusterProfiles", "ClusterProfile")}
# AWS types folded into other objects rather than kept as objects.
INLINE_TYPES = {"Schedule", "EmrConfiguration", "Property", "ShellScriptConfig", "HttpProxy"}
# Fields AWS has that mean nothing on Kubernetes, with what to do instead.
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
                   "resizeClusterMaxInstances", "emrManagedMasterSecurityGroupId", "emrManagedSlaveSecurityGroupId")
NAME_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ImportError_(ValueError):
    """The definition cannot be converted; the message names the object."""


@dataclass
class Conversion:
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)  # Secret manifests to fill in


def convert(definition: Mapping[str, Any], name: str, values: Mapping[str, Any] | None = None) -> Conversion:
    return _Converter(definition, name).run(values or {})


def _ref_id(value: Any) -> str | None:
    if isinstance(value, Mapping) and "ref" in value:
        return str(value["ref"])
    return None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name or "imported")[:53].rstrip("-")


class _Converter:
    def __init__(self, definition: Mapping[str, Any], name: str) -> None:
        if not isinstance(definition, Mapping) or not isinstance(definition.get("objects"), list):
            raise ImportError_('not an AWS Data Pipeline definition: expected a JSON object with an "objects" list')
        self.name = dns_name(name)
        self.raw = definition
        self.objects: dict[str, dict[str, Any]] = {}
        for index, obj in enumerate(definition["objects"]):
            if not isinstance(obj, Mapping) or "id" not in obj:
                raise ImportError_(f"objects[{index}]: every object needs an id")
            self.objects[str(obj["id"])] = dict(obj)
        self.warnings: list[str] = []
        self.secrets: list[dict[str, Any]] = []
        self.names: dict[str, str] = {}

    def warn(self, obj_id: str, message: str) -> None:
        self.warnings.append(f'object "{obj_id}": {message}')

    # ------------------------------------------------------------------ main
    def run(self, values: Mapping[str, Any]) -> Conversion:
        default = self.objects.pop("Default", {})
        spec: dict[str, Any] = {"activated": False}
        self._flatten_parents()
        self._split_legacy_mysql_nodes()
        for obj_id, obj in self.objects.items():
            self._type_of(obj_id, obj)  # fail early on unknown types
            self.names[obj_id] = self._name(obj_id)
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
        self._parameters(spec, {**dict(self.raw.get("values") or {}), **dict(values)})
        manifest = {"apiVersion": API_VERSION, "kind": "Pipeline", "metadata": {"name": self.name}, "spec": spec}
        return Conversion(manifest, self.warnings, self.secrets)

    def _type_of(self, obj_id: str, obj: Mapping[str, Any]) -> str:
        type_name = obj.get("type")
        if type_name is None:
            raise ImportError_(f'object "{obj_id}" has no type (only Default may omit it)')
        type_name = str(type_name)
        if type_name in catalog.TYPES or type_name in RESOURCE_TYPES or type_name in INLINE_TYPES:
            return type_name
        known = sorted([*catalog.TYPES, *RESOURCE_TYPES, *INLINE_TYPES])
        raise ImportError_(f'object "{obj_id}" has type "{type_name}", which kube-datapipeline does not know'
                           f"{did_you_mean(type_name, known)}")

    def _name(self, obj_id: str) -> str:
        name = NAME_SAFE.sub("-", obj_id).strip("-")
        if not name or not name[0].isalpha():
            name = f"o-{name}"
        name = name[:63]
        if name != obj_id:
            self.warn(obj_id, f'renamed to "{name}" (names are letters, digits, "-", "_" and ".")')
        return name

    def _flatten_parents(self) -> None:
        """AWS parents may cross types; inline each object's parent chain so no parent field remains."""
        def merged(obj_id: str, seen: tuple[str, ...]) -> dict[str, Any]:
            obj = self.objects[obj_id]
            parent = _ref_id(obj.get("parent"))
            if parent is None:
                return obj
            if parent in seen or parent not in self.objects:
                raise ImportError_(f'object "{obj_id}": parent "{parent}" ' +
                                   ("forms a cycle" if parent in seen else "does not exist"))
            base = merged(parent, (*seen, parent))
            return {**{k: v for k, v in base.items() if k not in ("id", "name")},
                    **{k: v for k, v in obj.items() if k != "parent"}}

        self.objects = {obj_id: merged(obj_id, (obj_id,)) for obj_id in self.objects}

    # ------------------------------------------------------------------ Default and Schedule
    def _schedule(self, default: Mapping[str, Any], spec: dict[str, Any]) -> None:
        schedule_type = str(default.get("scheduleType", "cron")).lower()
        if schedule_type not in ("cron", "timeseries", "ondemand"):
            raise ImportError_(f'object "Default": scheduleType "{schedule_type}" is not cron, timeseries or ondemand')
        spec["scheduleType"] = schedule_type
        used = {_ref_id(o.get("schedule")) for o in [default, *self.objects.values()]} - {None}
        schedules = [i for i, o in self.objects.items() if o.get("type") == "Schedule"]
        if schedule_type == "ondemand":
            return
        if len(used) > 1:
            raise ImportError_(f"objects use {len(used)} schedules ({', '.join(sorted(str(u) for u in used))}); a "
                               "Pipeline has one schedule: split the definition into one Pipeline per schedule")
        chosen = next(iter(used), None) or (schedules[0] if len(schedules) == 1 else None)
        if chosen is None or chosen not in self.objects:
            raise ImportError_('object "Default": no Schedule found; set Default.schedule or scheduleType ondemand')
        raw = self.objects[chosen]
        schedule: dict[str, Any] = {}
        for key in ("period", "startAt", "occurrences"):
            if key in raw:
                schedule[key] = int(raw[key]) if key == "occurrences" else str(raw[key])
        for key in ("startDateTime", "endDateTime"):
            if key in raw:
                text = str(raw[key])
                schedule[key] = text if text.endswith("Z") or "+" in text[10:] else f"{text}Z"
        if "period" in schedule:
            schedule["period"] = _period(schedule["period"])
        if "startAt" not in schedule and "startDateTime" not in schedule:
            schedule["startAt"] = "FIRST_ACTIVATION_DATE_TIME"
        for key in raw:
            if key not in ("id", "name", "type", "period", "startAt", "occurrences", "startDateTime", "endDateTime"):
                self.warn(chosen, f'Schedule field "{key}" has no equivalent; dropped')
        spec["schedule"] = schedule

    def _defaults(self, default: Mapping[str, Any], spec: dict[str, Any]) -> None:
        known = {f.name: f for f in catalog.DEFAULTS_FIELDS}
        defaults: dict[str, Any] = {}
        user_vars: dict[str, str] = {}
        for key, value in default.items():
            if key in ("id", "name", "type", "scheduleType", "schedule"):
                continue
            if key == "pipelineLogUri":
                spec["pipelineLogUri"] = str(value)
            elif key.startswith("my"):
                user_vars[key] = str(value)
            elif key in known:
                defaults[key] = self._value("Default", key, known[key], value)
            elif key in DROPPED_FIELDS:
                self.warn("Default", f'field "{key}": {DROPPED_FIELDS[key]}')
            else:
                self.warn("Default", f'field "{key}" has no equivalent; dropped')
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
                user_vars[key] = str(value)
            elif key == "*password":
                result["passwordSecret"] = self._secret(obj_id, "password")
            elif key == "*username":
                result["usernameSecret"] = self._secret(obj_id, "username")
            elif key in type_spec.field_map:
                result[key] = self._value(obj_id, key, type_spec.field_map[key], value)
            elif key in DROPPED_FIELDS:
                if DROPPED_FIELDS[key]:
                    self.warn(obj_id, f'field "{key}": {DROPPED_FIELDS[key]}')
            elif key == "scriptUri" or key == "dataFormat":
                result[key] = self._value(obj_id, key, catalog.FieldSpec(key, Kind.STRING, ""), value)
            else:
                self.warn(obj_id, f'{type_name} field "{key}" has no equivalent; dropped')
        if type_name.endswith("Database") and "connectionString" not in result:
            result["connectionString"] = "jdbc:postgresql://HOST:5432/DATABASE" if type_name == "RedshiftDatabase" \
                else "jdbc:mysql://HOST:3306/DATABASE"
            self.warn(obj_id, f"{type_name} needs a connectionString here; fill in {result['connectionString']}")
        if user_vars:
            result["vars"] = user_vars
        return type_spec.section, result

    def _split_legacy_mysql_nodes(self) -> None:
        """Old MySqlDataNodes carry their own connection; make each a JdbcDatabase object of its own."""
        for obj_id, obj in list(self.objects.items()):
            if obj.get("type") != "MySqlDataNode" or "connectionString" not in obj:
                continue
            db_id = f"{obj_id}-database"
            database = {"id": db_id, "type": "JdbcDatabase", "connectionString": obj["connectionString"]}
            for key in ("username", "*password"):
                if key in obj:
                    database[key] = obj[key]
            self.objects[db_id] = database
            self.objects[obj_id] = {k: v for k, v in obj.items() if k not in ("connectionString", "username",
                                                                               "*password")}
            self.objects[obj_id]["database"] = {"ref": db_id}
            self.warn(obj_id, f'its connection became the database "{db_id}"')

    def _resource(self, obj_id: str, obj: Mapping[str, Any], type_name: str) -> tuple[str, dict[str, Any]]:
        section, new_type = RESOURCE_TYPES[type_name]
        result: dict[str, Any] = {"name": self.names[obj_id], "type": new_type}
        if type_name == "Ec2Resource":
            for key, value in obj.items():
                if key in ("id", "name", "type"):
                    continue
                if key == "instanceType":
                    result["instanceType"] = str(value)
                elif key == "terminateAfter":
                    result["terminateAfter"] = str(value)
                elif key == "workerGroup":
                    self.warn(obj_id, "workerGroup on a resource has no meaning here; set it on activities")
                else:
                    self.warn(obj_id, f'Ec2Resource field "{key}": {DROPPED_FIELDS.get(key) or "no equivalent; dropped"}')
            self.warn(obj_id, "became a compute profile; set its image, cpu and memory for the pods")
            return section, result
        result["image"] = "apache/spark:3.5.1"
        self.warn(obj_id, 'became a cluster profile with image "apache/spark:3.5.1"; pick the image with your tools')
        for key, value in obj.items():
            if key in ("id", "name", "type"):
                continue
            if key in CLUSTER_FIELDS:
                target = CLUSTER_FIELDS[key]
                spec = catalog.TYPES["ClusterProfile"].field_map[target]
                result[target] = self._value(obj_id, key, spec, value)
            elif key == "configuration":
                result["configuration"] = [self._emr_configuration(_ref_id(v) or "") for v in _as_list(value)]
            elif key in CLUSTER_DROPPED or key in DROPPED_FIELDS:
                self.warn(obj_id, f'EmrCluster field "{key}": {DROPPED_FIELDS.get(key) or "sizes pods, not instances; use driver/executor cpu and memory"}')
            else:
                self.warn(obj_id, f'EmrCluster field "{key}" has no equivalent; dropped')
        return section, result

    def _emr_configuration(self, config_id: str) -> dict[str, Any]:
        config = self.objects.get(config_id, {})
        properties = {}
        for ref in _as_list(config.get("property", [])):
            prop = self.objects.get(_ref_id(ref) or "", {})
            if "key" in prop:
                properties[str(prop["key"])] = str(prop.get("value", ""))
        result: dict[str, Any] = {"classification": str(config.get("classification", "")), "properties": properties}
        nested = [self._emr_configuration(_ref_id(v) or "") for v in _as_list(config.get("configuration", []))
                  if _ref_id(v)]
        if nested:
            result["configurations"] = nested
        return result

    def _secret(self, obj_id: str, key: str) -> dict[str, str]:
        secret_name = dns_name(f"{self.name}-{self.names.get(obj_id, obj_id)}")
        if not any(s["metadata"]["name"] == secret_name for s in self.secrets):
            self.secrets.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name},
                                 "stringData": {}})
        for secret in self.secrets:
            if secret["metadata"]["name"] == secret_name:
                secret["stringData"][key] = "FILL-ME-IN"
        self.warn(obj_id, f'*{key} was not copied: put it in Secret "{secret_name}" key "{key}"')
        return {"name": secret_name, "key": key}

    def _value(self, obj_id: str, key: str, spec: catalog.FieldSpec, value: Any) -> Any:
        kind = spec.kind
        if kind in (Kind.REF, Kind.REFS):
            refs = []
            for item in _as_list(value):
                ref = _ref_id(item)
                if ref is None:
                    raise ImportError_(f'object "{obj_id}": field "{key}" must be a reference {{"ref": "id"}}')
                if ref not in self.names:
                    raise ImportError_(f'object "{obj_id}": field "{key}" refers to "{ref}", which is not defined')
                refs.append(self.names[ref])
            return refs[0] if kind is Kind.REF else refs
        if kind in (Kind.STRINGS,):
            return [str(v) for v in _as_list(value)]
        if kind is Kind.INT:
            try:
                return int(str(value))
            except ValueError:
                raise ImportError_(f'object "{obj_id}": field "{key}" must be a whole number, not "{value}"') from None
        if kind is Kind.BOOL:
            return str(value).lower() == "true"
        if kind in (Kind.STRING, Kind.DURATION):
            text = str(value)
            if key == "failureAndRerunMode":
                return text.lower()
            if key == "compression":
                return text.lower()
            return text
        return value

    def _parameters(self, spec: dict[str, Any], values: Mapping[str, Any]) -> None:
        params = []
        for raw in self.raw.get("parameters") or []:
            pid = str(raw.get("id", ""))
            param: dict[str, Any] = {"id": pid.lstrip("*")}
            if pid.startswith("*"):
                self.warn(pid, "masked parameter: its value is not copied; pass secrets through Secrets, not "
                               "parameters")
            for key in ("type", "description", "helpText", "default"):
                if key in raw and not (key == "default" and pid.startswith("*")):
                    param[key] = str(raw[key]) if not isinstance(raw[key], list) else [str(v) for v in raw[key]]
            for key in ("optional", "isArray"):
                if key in raw:
                    param[key] = str(raw[key]).lower() == "true"
            if "allowedValues" in raw:
                param["allowedValues"] = [str(v) for v in _as_list(raw["allowedValues"])]
            for key in raw:
                if key not in ("id", "type", "description", "helpText", "default", "optional", "isArray",
                               "allowedValues", "watermark"):
                    self.warn(pid, f'parameter field "{key}" has no equivalent; dropped')
            params.append(param)
        if params:
            spec["parameters"] = params
        kept = {}
        for key, value in values.items():
            if str(key).startswith("*"):
                self.warn(str(key), "masked value not copied")
                continue
            kept[str(key)] = [str(v) for v in value] if isinstance(value, list) else str(value)
        if kept:
            spec["values"] = kept


def _period(text: str) -> str:
    # AWS writes "1 Day", "15 Minutes", "1 hour"; keep the words, lower case.
    return text.strip().lower()
