"""The CustomResourceDefinitions, generated from the field catalogue.

``crds/*.yaml`` and the chart's CRD template are written from here
(``python -m datapipeline.crds``) and a test checks that both equal what this
module generates, so they can never drift from each other or from the parser.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from datapipeline.core import catalog
from datapipeline.core.catalog import COMMON_FIELDS, SECTIONS, FieldSpec, Kind

GROUP = "datapipeline.io"
VERSION = "v1alpha1"

SECTION_DOCS = {
    "activities": "The work: each activity of a run becomes one Kubernetes Job per attempt, in dependency order.",
    "dataNodes": "Where data is read from and written to (S3, SQL tables, DynamoDB, warehouse tables).",
    "dataFormats": "How data nodes' files are laid out (CSV, TSV, Custom, RegEx, DynamoDB formats).",
    "databases": "Database connections; credentials only as references to Kubernetes Secrets.",
    "preconditions": "Checks that must hold before an activity or data node is ready; polled until "
                     "preconditionTimeout.",
    "computeProfiles": "Pod settings activities run with (the Ec2Resource stand-in).",
    "clusterProfiles": "Big-data runtimes for Emr, Hive, Pig and Hadoop activities (the EmrCluster stand-in).",
    "actions": "What onFail, onSuccess and onLateAction trigger: SNS alarms, webhooks, Terminate.",
}


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    doc = spec.doc
    kind = spec.kind
    schema: dict[str, Any]
    if kind in (Kind.STRING, Kind.REF):
        schema = {"type": "string"}
        if spec.enum:
            schema["enum"] = list(spec.enum)
    elif kind in (Kind.STRINGS, Kind.REFS):
        schema = {"type": "array", "items": {"type": "string"}}
    elif kind is Kind.INT:
        schema = {"type": "integer", "minimum": 0}
    elif kind is Kind.BOOL:
        schema = {"type": "boolean"}
    elif kind is Kind.DURATION:
        doc += ' Written like "10 minutes", "2 hours" or "1h30m" (a bare number is seconds).'
        schema = {"x-kubernetes-int-or-string": True}
    elif kind is Kind.SECRET_REF:
        schema = {"type": "object", "required": ["name", "key"], "properties": {
            "name": {"type": "string", "description": "Name of the Secret, in the Pipeline's namespace."},
            "key": {"type": "string", "description": "Key within the Secret."}}}
    elif kind is Kind.MAP:
        schema = {"type": "object", "additionalProperties": {"type": "string"}}
    elif kind is Kind.OBJECTS:
        schema = {"type": "array", "items": {"type": "object", "description": "One entry (free-form).",
                                             "x-kubernetes-preserve-unknown-fields": True}}
    else:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"description": doc, **schema}


def _section_item_schema(section: str) -> dict[str, Any]:
    types = catalog.types_in(section)
    properties: dict[str, Any] = {}
    for spec in COMMON_FIELDS:
        properties[spec.name] = _field_schema(spec)
    properties["type"]["enum"] = [t.name for t in types]
    properties["type"]["description"] = "The object's type: " + "; ".join(f"{t.name}: {t.doc}" for t in types)
    owners: dict[str, list[str]] = {}
    docs: dict[str, dict[str, list[str]]] = {}  # field -> its doc -> the types that say it
    for type_spec in types:
        for spec in type_spec.fields:
            owners.setdefault(spec.name, []).append(type_spec.name)
            docs.setdefault(spec.name, {}).setdefault(spec.doc, []).append(type_spec.name)
            if spec.name not in properties:
                properties[spec.name] = _field_schema(spec)
    for name, used_by in owners.items():
        if len(docs[name]) > 1:
            # The same field means slightly different things per type: say each (kubectl explain shows one text).
            first = next(iter(docs[name]))
            properties[name]["description"] = properties[name]["description"].replace(first, "").strip()
            properties[name]["description"] = " ".join(
                [f"{', '.join(types_)}: {doc}" for doc, types_ in docs[name].items()]
                + ([properties[name]["description"]] if properties[name]["description"] else []))
        elif len(used_by) < len(types):
            properties[name]["description"] += f" ({', '.join(used_by)})"
    default = catalog.default_type(section)
    if default:
        properties["type"]["default"] = default
    return {"type": "object", "required": ["name"], "properties": dict(sorted(properties.items()))}


def _list_of(item: dict[str, Any], doc: str) -> dict[str, Any]:
    # A map-type list: the API server itself rejects two objects with the same name.
    return {"type": "array", "description": doc, "items": item, "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"]}


def _condition_schema() -> dict[str, Any]:
    return {"type": "array", "description": "Kubernetes-style conditions.", "items": {
        "type": "object", "description": "One condition.", "required": ["type", "status"], "properties": {
            "type": {"type": "string", "description": "The condition's type, e.g. Ready."},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"],
                       "description": "Whether the condition holds."},
            "reason": {"type": "string", "description": "A CamelCase reason for the last transition."},
            "message": {"type": "string", "description": "Details in words."},
            "lastTransitionTime": {"type": "string", "format": "date-time",
                                   "description": "When the status last changed."},
            "observedGeneration": {"type": "integer",
                                   "description": "The spec generation the condition was computed from."}}},
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def _fields_object(fields: tuple[FieldSpec, ...], doc: str) -> dict[str, Any]:
    return {"type": "object", "description": doc,
            "properties": {f.name: _field_schema(f) for f in fields}}


def pipeline_spec_schema() -> dict[str, Any]:
    schedule = _fields_object(catalog.SCHEDULE_FIELDS, "When runs happen. Required unless scheduleType is ondemand.")
    schedule["x-kubernetes-validations"] = [
        {"rule": "has(self.cron) != has(self.period)", "message": "set exactly one of cron and period"},
        {"rule": "!(has(self.startDateTime) && has(self.startAt))",
         "message": "set at most one of startDateTime and startAt"},
        {"rule": "!(has(self.endDateTime) && has(self.occurrences))",
         "message": "set at most one of endDateTime and occurrences"},
    ]
    parameter = _fields_object(catalog.PARAMETER_FIELDS, "A pipeline parameter.")
    parameter["required"] = ["id"]
    parameter["properties"]["default"] = {"description": "Value used when none is given (a list if isArray).",
                                          "x-kubernetes-preserve-unknown-fields": True}
    defaults = _fields_object(catalog.DEFAULTS_FIELDS,
                              "Fields every activity inherits unless it sets them (the AWS Default object).")
    aws = {"type": "object", "description": "Where the S3-compatible store, SNS and DynamoDB are.", "properties": {
        "region": {"type": "string", "description": "Region (default us-east-1)."},
        "s3EndpointUrl": {"type": "string", "description": "S3 endpoint URL, for any S3-compatible store."},
        "snsEndpointUrl": {"type": "string", "description": "SNS endpoint URL."},
        "dynamodbEndpointUrl": {"type": "string", "description": "DynamoDB endpoint URL."},
        "s3PathStyle": {"type": "boolean", "description": "Use path-style S3 addressing (MinIO and most "
                                                          "S3-compatible stores need it)."},
        "credentialsSecret": {"type": "string", "description": "Secret with keys AWS_ACCESS_KEY_ID and "
                                                               "AWS_SECRET_ACCESS_KEY, given to the runner's pods."},
    }}
    properties: dict[str, Any] = {
        "description": {"type": "string", "description": "What the pipeline is for."},
        "activated": {"type": "boolean", "default": False,
                      "description": "Whether runs are scheduled (AWS activate/deactivate). Deactivating cancels "
                                     "the active runs unless cancelActiveOnDeactivate is false."},
        "paused": {"type": "boolean", "default": False,
                   "description": "Pause: no new runs, and active runs start nothing new (their waiting activities "
                                  "are PAUSED) until it is false again; running attempts go on."},
        "activateFrom": {"type": "string", "format": "date-time",
                         "description": "Run intervals from this time on (AWS activate --start-timestamp): earlier "
                                        "intervals not yet run are SKIPPED. Not for ondemand pipelines."},
        "cancelActiveOnDeactivate": {"type": "boolean", "default": True,
                                     "description": "On deactivation, cancel the active runs (default, like AWS "
                                                    "deactivate-pipeline) or let them finish (false, like "
                                                    "--no-cancel-active)."},
        "schedule": schedule,
        "workerGroups": {
            "type": "object", "maxProperties": 50,
            "description": "How each worker group named by an activity's or precondition's workerGroup runs its "
                           "attempts (docs/worker-groups.md).",
            "additionalProperties": {"type": "object", "properties": {
                "mode": {"type": "string", "enum": ["poll", "nodeSelector"],
                         "description": "poll: a TaskAttempt that pollers of the group claim "
                                        "(`datapipeline-runner poll`); nodeSelector: a Job on nodes labelled "
                                        "datapipeline.io/worker-group=<name>. Default poll."},
                "leaseSeconds": {"type": "integer", "minimum": 10, "maximum": 3600,
                                 "description": "poll: a claim not renewed for this long fails (default 60)."}}}},
        "schedules": {"type": "object", "maxProperties": 20,
                      "description": "More schedules by name (a DNS label of at most 20 characters), for objects "
                                     "that say schedule: <name>. Each schedule makes its own runs; spec.schedule "
                                     "is the one named default.",
                      "additionalProperties": {**schedule, "description": "A named schedule (cron or period)."}},
        "scheduleType": {"type": "string", "enum": ["cron", "timeseries", "ondemand"], "default": "cron",
                         "description": "cron: a run starts at the start of its interval; timeseries: at its end; "
                                        "ondemand: one run per activation or request."},
        "missedRunPolicy": {"type": "string", "enum": ["RunAll", "RunLatest", "Skip"], "default": "RunAll",
                            "description": "Intervals missed while the pipeline was inactive or the operator was "
                                           "down: run all oldest first (AWS backfill), only the latest, or none."},
        "maxActiveRuns": {"type": "integer", "minimum": 1, "default": 1,
                          "description": "How many runs may be active at once."},
        "successfulRunsHistoryLimit": {"type": "integer", "minimum": 0, "default": 10,
                                       "description": "Finished runs kept."},
        "failedRunsHistoryLimit": {"type": "integer", "minimum": 0, "default": 10,
                                   "description": "Failed or cancelled runs kept."},
        "pipelineLogUri": {"type": "string", "description": "S3 URI under which attempt logs are kept."},
        "runnerImage": {"type": "string", "description": "Task-runner image for this pipeline's Jobs."},
        "aws": aws,
        "parameters": {"type": "array", "description": "Parameters, referenced as #{myName}.", "items": parameter},
        "values": {"type": "object", "description": "Parameter values: id to a string (or a list for isArray).",
                   "x-kubernetes-preserve-unknown-fields": True},
        "defaults": defaults,
    }
    for section in SECTIONS:
        properties[section] = _list_of(_section_item_schema(section), SECTION_DOCS[section])
    properties["activities"]["minItems"] = 1
    return {"type": "object", "description": "The pipeline definition: AWS Data Pipeline's objects as Kubernetes "
            "YAML.", "properties": properties,
            "required": ["activities"],
            "x-kubernetes-validations": [
                {"rule": "(has(self.scheduleType) && self.scheduleType == 'ondemand') || has(self.schedule)",
                 "message": "schedule is required unless scheduleType is ondemand"}]}


def pipeline_status_schema() -> dict[str, Any]:
    return {"type": "object", "description": "Observed state, written by the operator.",
            "x-kubernetes-preserve-unknown-fields": True, "properties": {
                "observedGeneration": {"type": "integer", "description": "The spec generation last acted on."},
                "schedule": {"type": "string", "description": "The schedule in words."},
                "activatedAt": {"type": "string", "format": "date-time",
                                "description": "When the pipeline was first activated (the start of "
                                               "FIRST_ACTIVATION_DATE_TIME schedules)."},
                "lastScheduledTime": {"type": "string", "description": "Scheduled start of the newest run created."},
                "nextRunTime": {"type": "string", "description": "When the next run is due."},
                "lastRun": {"type": "object", "description": "The newest run.", "properties": {
                    "name": {"type": "string", "description": "Name of the PipelineRun."},
                    "status": {"type": "string", "description": "Its phase."}}},
                "activeRuns": {"type": "integer", "description": "Runs not yet finished."},
                "state": {"type": "string", "enum": ["PENDING", "SCHEDULED", "PAUSED", "INACTIVE", "FINISHED"],
                          "description": "The pipeline's status in AWS terms."},
                "lastDeactivatedTime": {"type": "string", "description": "When the pipeline was last deactivated "
                                        "(runs created until then are cancelled unless cancelActiveOnDeactivate "
                                        "is false)."},
                "skippedUntil": {"type": "string", "description": "Intervals starting before this time were "
                                 "SKIPPED (activateFrom)."},
                "health": {"type": "string", "enum": ["HEALTHY", "ERROR"],
                           "description": "ERROR when the last finished run failed (AWS @healthStatus)."},
                "conditions": _condition_schema()}}


def pipelinerun_spec_schema() -> dict[str, Any]:
    return {"type": "object", "description": "One run of a pipeline for one scheduled interval.",
            "required": ["pipelineRef"], "properties": {
                "pipelineRef": {"type": "object", "required": ["name"], "description": "The Pipeline to run.",
                                "properties": {"name": {"type": "string", "description": "Name of the Pipeline, "
                                                        "in the run's namespace."}}},
                "scheduledStartTime": {"type": "string", "description": "Start of the interval "
                                       "(#{@scheduledStartTime}); default: when the run was created."},
                "scheduledEndTime": {"type": "string", "description": "End of the interval (#{@scheduledEndTime})."},
                "schedule": {"type": "string", "default": "default",
                             "description": "Which of the Pipeline's schedules this run is an interval of: it holds "
                                            "the activities on that schedule (default: spec.schedule's)."},
                "trigger": {"type": "string", "enum": ["Scheduled", "Manual", "Backfill", "OnDemand"],
                            "default": "Manual", "description": "What created the run."},
                "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                           "description": "Parameter values that override the Pipeline's for this run."},
                "cancel": {"type": "boolean", "description": "Stop running Jobs and mark the rest CANCELED."},
                "rerun": {"type": "object", "description": "A rerun request; a new id asks for a new rerun.",
                          "required": ["id"], "properties": {
                              "id": {"type": "string", "description": "Request id; change it to rerun again."},
                              "activities": {"type": "array", "items": {"type": "string"},
                                             "description": "Activities to rerun (default: all failed ones)."},
                              "failedOnly": {"type": "boolean", "description": "Rerun only failed activities."},
                              "downstream": {"type": "boolean",
                                             "description": "Also rerun what depends on them."}}},
                "markFinished": {"type": "array", "items": {"type": "string"},
                                 "description": "Activities to mark FINISHED without running (AWS MARK_FINISHED)."},
            }}


def pipelinerun_status_schema() -> dict[str, Any]:
    return {"type": "object", "description": "Observed state, written by the operator.",
            "x-kubernetes-preserve-unknown-fields": True, "properties": {
                "phase": {"type": "string", "enum": ["Pending", "Running", "Paused", "Succeeded", "Failed",
                                                     "Cancelled"],
                          "description": "Where the run is."},
                "progress": {"type": "string", "description": "Finished activities out of all, e.g. 2/5."},
                "startTime": {"type": "string", "description": "When the first activity started."},
                "completionTime": {"type": "string", "description": "When the run finished."},
                "observedGeneration": {"type": "integer", "description": "The spec generation last acted on."},
                "activities": {"type": "object", "description": "A compact summary per activity.",
                               "additionalProperties": {"type": "object", "description": "One activity's state.",
                                                        "x-kubernetes-preserve-unknown-fields": True}},
                "conditions": _condition_schema()}}


def _crd(kind: str, plural: str, short: str, spec: dict[str, Any], status: dict[str, Any],
         columns: list[dict[str, Any]], doc: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "kube-datapipeline"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": [short], "categories": ["datapipeline"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "description": doc, "properties": {
                        "apiVersion": {"type": "string", "description": f"{GROUP}/{VERSION}"},
                        "kind": {"type": "string", "description": kind},
                        "metadata": {"type": "object"},  # the API server allows nothing more here
                        "spec": spec, "status": status},
                    "required": ["spec"]}},
            }],
        },
    }


def pipeline_crd() -> dict[str, Any]:
    return _crd("Pipeline", "pipelines", "dpl", pipeline_spec_schema(), pipeline_status_schema(), [
        {"name": "Schedule", "type": "string", "jsonPath": ".status.schedule"},
        {"name": "Activated", "type": "boolean", "jsonPath": ".spec.activated"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Last Run", "type": "string", "jsonPath": ".status.lastRun.name"},
        {"name": "Next Run", "type": "string", "jsonPath": ".status.nextRunTime"},
        {"name": "Health", "type": "string", "jsonPath": ".status.health"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ], "A data pipeline: activities, data nodes, preconditions and a schedule (AWS Data Pipeline's model).")


def pipelinerun_crd() -> dict[str, Any]:
    return _crd("PipelineRun", "pipelineruns", "dplrun", pipelinerun_spec_schema(), pipelinerun_status_schema(), [
        {"name": "Pipeline", "type": "string", "jsonPath": ".spec.pipelineRef.name"},
        {"name": "Scheduled Start", "type": "string", "jsonPath": ".spec.scheduledStartTime"},
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ], "One run of a Pipeline for one scheduled interval; each activity attempt is a Job.")


def taskattempt_spec_schema() -> dict[str, Any]:
    env_item = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "maxLength": 253}, "value": {"type": "string", "maxLength": 65536}}}
    ref_item = {"type": "object", "required": ["name", "secret", "key"], "properties": {
        "name": {"type": "string", "maxLength": 253}, "secret": {"type": "string", "maxLength": 253},
        "key": {"type": "string", "maxLength": 253}}}
    return {
        "type": "object", "required": ["workerGroup", "task"],
        "description": "Written once by the operator; the API server refuses any change.",
        "x-kubernetes-validations": [{"rule": "self == oldSelf",
                                      "message": "spec is immutable: the operator writes a TaskAttempt once"}],
        "properties": {
            "workerGroup": {"type": "string", "maxLength": 63, "description": "The poll worker group."},
            "task": {"type": "string", "maxLength": 262144,
                     "description": "The TaskSpec JSON (what a Job's DATAPIPELINE_TASK holds); no secret."},
            "env": {"type": "array", "maxItems": 200, "items": env_item, "description": "Plain variables."},
            "secretEnv": {"type": "array", "maxItems": 200, "items": ref_item,
                          "description": "Variables from Secrets: references the poller resolves, never values."},
            "deadlineSeconds": {"type": "integer", "minimum": 1, "description": "attemptTimeout, from the claim."},
            "leaseSeconds": {"type": "integer", "minimum": 10, "maximum": 3600,
                             "description": "A claim not renewed for this long fails (WorkerLost)."},
        },
    }


def taskattempt_status_schema() -> dict[str, Any]:
    text = {"type": "string", "maxLength": 253}
    return {
        "type": "object",
        "description": "Written by the poller that claims the attempt (the operator only fails a lost claim).",
        "x-kubernetes-validations": [
            {"rule": "!has(oldSelf.claimedBy) || (has(self.claimedBy) && self.claimedBy == oldSelf.claimedBy)",
             "message": "the attempt is claimed: claimedBy cannot change"},
            {"rule": "!has(oldSelf.phase) || !(oldSelf.phase in ['Succeeded', 'Failed']) || self == oldSelf",
             "message": "the attempt is finished: its status cannot change"},
        ],
        "properties": {
            "phase": {"type": "string", "enum": ["Claimed", "Succeeded", "Failed"]},
            "claimedBy": {**text, "description": "The poller: its identity and host."},
            "claimTime": {"type": "string", "format": "date-time"},
            "renewTime": {"type": "string", "format": "date-time", "description": "The claim's last heartbeat."},
            "progressTime": {"type": "string", "format": "date-time",
                             "description": "The task's last output line (reportProgressTimeout)."},
            "finishTime": {"type": "string", "format": "date-time"},
            "exitCode": {"type": "integer"},
            "reason": {**text, "description": "DeadlineExceeded, WorkerLost, PollerStopped."},
            "result": {"type": "string", "maxLength": 16384, "description": "The runner's TaskResult JSON."},
            "logTail": {"type": "string", "maxLength": 16384, "description": "The end of the task's output."},
        },
    }


def taskattempt_crd() -> dict[str, Any]:
    return _crd("TaskAttempt", "taskattempts", "dpta", taskattempt_spec_schema(), taskattempt_status_schema(), [
        {"name": "Worker Group", "type": "string", "jsonPath": ".spec.workerGroup"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Claimed By", "type": "string", "jsonPath": ".status.claimedBy"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ], "One attempt of an activity (or precondition check) routed to a poll worker group: claimed and run by "
       "a poller outside the cluster (docs/worker-groups.md).")


HEADER = "# Generated by `python -m datapipeline.crds` from operator/datapipeline/core/catalog.py. Do not edit.\n"
CHART_GUARD = ("{{- if .Values.crds.install }}\n", "{{- end }}\n")
CHART_ANNOTATION = '  {{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n  {{- end }}\n'


def render_crd(crd: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=120)


def render_chart_template() -> str:
    """The chart's CRD template: the same CRDs, guarded by a value so `helm upgrade` upgrades them."""
    parts = []
    for crd in (pipeline_crd(), pipelinerun_crd(), taskattempt_crd()):
        text = yaml.safe_dump(crd, sort_keys=False, width=120)
        # Escape Go-template braces that may occur in descriptions (${INPUT1_STAGING_DIR} has none; #{...} does).
        text = text.replace("{{", '{{ "{{" }}')
        text = text.replace("  labels:\n", CHART_ANNOTATION + "  labels:\n", 1)
        parts.append("---\n" + text)
    return HEADER.replace("#", "{{/*", 1).rstrip("\n") + " */}}\n" + CHART_GUARD[0] + "".join(parts) + CHART_GUARD[1]


def outputs(root: Path) -> dict[Path, str]:
    return {
        root / "crds" / "pipelines.datapipeline.io.yaml": render_crd(pipeline_crd()),
        root / "crds" / "pipelineruns.datapipeline.io.yaml": render_crd(pipelinerun_crd()),
        root / "crds" / "taskattempts.datapipeline.io.yaml": render_crd(taskattempt_crd()),
        root / "charts" / "kube-datapipeline" / "templates" / "crds.yaml": render_chart_template(),
    }


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    for path, text in outputs(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
