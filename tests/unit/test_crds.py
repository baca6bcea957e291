"""The CRDs: generated from the catalogue, equal to the files on disk, structural, documented, and (until a
cluster is up) a Python stand-in for `kubectl apply --dry-run=server`: every example, template and imported AWS
fixture validates against the openAPIV3Schema, translated to JSON Schema the way the API server reads it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from datapipeline import crds
from datapipeline.awsimport.convert import convert
from datapipeline.cli.validate import load_yaml_documents
from datapipeline.core import catalog
from datapipeline.core.catalog import SECTIONS, TYPES
from datapipeline.core.definition import UNSUPPORTED_TYPES, parse_manifest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILES = sorted([*(p for p in (ROOT / "examples").rglob("*.yaml") if p.name != "kustomization.yaml"),
                       *(ROOT / "operator" / "datapipeline" / "templates").glob("*.yaml")])
AWS_FIXTURES = sorted((ROOT / "tests" / "aws").glob("*.json"))

PIPELINE = crds.pipeline_crd()
RUN = crds.pipelinerun_crd()


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def spec_schema(crd: dict[str, Any] = PIPELINE) -> dict[str, Any]:
    spec: dict[str, Any] = schema_of(crd)["properties"]["spec"]
    return spec


# ---------------------------------------------------------------------------------------------- files on disk


def test_generated_files_equal_the_files_on_disk() -> None:
    for path, text in crds.outputs(ROOT).items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run `python -m datapipeline.crds .`"


def test_the_chart_template_holds_the_same_crds() -> None:
    text = crds.render_chart_template()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("{{"))
    docs = [d for d in yaml.safe_load_all(body.replace('{{ "{{" }}', "{{")) if d]
    for doc in docs:
        doc["metadata"].pop("annotations", None)
    assert docs == [PIPELINE, RUN, crds.taskattempt_crd()]


# ---------------------------------------------------------------------------------------------- shape


def test_names_scope_and_subresources() -> None:
    for crd, kind, plural, short in ((PIPELINE, "Pipeline", "pipelines", "dpl"),
                                     (RUN, "PipelineRun", "pipelineruns", "dplrun")):
        spec = crd["spec"]
        assert crd["metadata"]["name"] == f"{plural}.datapipeline.io"
        assert spec["group"] == "datapipeline.io" and spec["scope"] == "Namespaced"
        assert spec["names"]["kind"] == kind and spec["names"]["plural"] == plural
        assert spec["names"]["shortNames"] == [short] and spec["names"]["categories"] == ["datapipeline"]
        (version,) = spec["versions"]
        assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    def columns(crd: dict[str, Any]) -> dict[str, str]:
        return {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}

    assert columns(PIPELINE) == {
        "Schedule": ".status.schedule", "Activated": ".spec.activated", "State": ".status.state",
        "Last Run": ".status.lastRun.name",
        "Next Run": ".status.nextRunTime", "Health": ".status.health", "Age": ".metadata.creationTimestamp"}
    assert columns(RUN) == {
        "Pipeline": ".spec.pipelineRef.name", "Scheduled Start": ".spec.scheduledStartTime",
        "Status": ".status.phase", "Progress": ".status.progress", "Age": ".metadata.creationTimestamp"}
    for crd in (PIPELINE, RUN):
        for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
            assert column["type"] in ("string", "boolean", "integer", "number", "date")
            assert resolve(schema_of(crd), column["jsonPath"]) is not None or column["name"] == "Age", column


def resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in json_path.strip(".").split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


# ---------------------------------------------------------------------------------------------- catalogue


def test_every_catalogue_field_is_in_the_schema_with_a_description() -> None:
    spec = spec_schema()["properties"]
    for type_spec in TYPES.values():
        item = spec[type_spec.section]["items"]
        assert type_spec.name in item["properties"]["type"]["enum"]
        assert type_spec.name in item["properties"]["type"]["description"]
        for field in (*type_spec.fields, *catalog.COMMON_FIELDS):
            node = item["properties"].get(field.name)
            assert node is not None, f"{type_spec.name}.{field.name} is not in the CRD"
            if field.name != "type":  # its description lists the section's types instead
                assert field.doc in node["description"], f"{type_spec.name}.{field.name}"
            if field.enum:
                assert node["enum"] == list(field.enum)
    for fields, where in ((catalog.SCHEDULE_FIELDS, spec["schedule"]),
                          (catalog.PARAMETER_FIELDS, spec["parameters"]["items"]),
                          (catalog.DEFAULTS_FIELDS, spec["defaults"])):
        for field in fields:
            assert field.name in where["properties"], field.name
            assert where["properties"][field.name]["description"]


def test_a_field_name_means_the_same_in_every_type_of_a_section() -> None:
    """The schema has one property per name and section, so the parser must not accept two kinds for it."""
    for section in SECTIONS:
        seen: dict[str, Any] = {}
        for type_spec in catalog.types_in(section):
            for field in type_spec.fields:
                shape = (field.kind, field.enum, field.ref_sections if field.name != "runsOn" else ())
                assert seen.setdefault(field.name, shape) == shape, f"{section}.{field.name} differs between types"


def walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("crd", [PIPELINE, RUN], ids=["Pipeline", "PipelineRun"])
def test_every_property_is_documented(crd: dict[str, Any]) -> None:
    # metadata is the one exception: the API server rejects anything but its type there.
    missing = [path for path, node in walk(schema_of(crd)) if path and not path.endswith(("[]", "{}"))
               and path != ".metadata" and not node.get("description")]
    assert missing == []


@pytest.mark.parametrize("crd", [PIPELINE, RUN], ids=["Pipeline", "PipelineRun"])
def test_the_schema_is_structural(crd: dict[str, Any]) -> None:
    """The rules of https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
    #specifying-a-structural-schema, as far as this schema uses the features they govern."""
    root = schema_of(crd)
    assert root["type"] == "object"
    # The API server rejects metadata with anything but its type (learned from a real kube-apiserver).
    assert root["properties"]["metadata"] == {"type": "object"}
    for path, node in walk(root):
        where = path or "<root>"
        for junctor in ("allOf", "anyOf", "oneOf", "not"):
            assert junctor not in node, f"{where}: uses {junctor}"
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, f"{where}: int-or-string must not have a type"
        elif not node.get("x-kubernetes-preserve-unknown-fields"):
            assert node.get("type") in ("object", "array", "string", "integer", "number", "boolean"), where
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{where}: an array needs items"
        assert not ("properties" in node and "additionalProperties" in node), f"{where}: both kinds of properties"
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in item.get("required", []) or "default" in item["properties"][key], where
        for key in ("enum",):
            for value in node.get(key, []):
                jsonschema.validate(value, {"type": node["type"]})
        if "default" in node:
            jsonschema.validate(node["default"], to_jsonschema(node))
        unknown = {k for k in node if k.startswith("x-kubernetes-")} - {
            "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys", "x-kubernetes-validations"}
        assert not unknown, f"{where}: {unknown}"


# ---------------------------------------------------------------------------------------------- the server's view

# The CEL rules of the schema, in Python, so that manifests can be checked without a cluster. A new rule must be
# added here (the test below fails until it is).
CEL: dict[str, Callable[[dict[str, Any]], bool]] = {
    "has(self.cron) != has(self.period)": lambda s: ("cron" in s) != ("period" in s),
    "!(has(self.startDateTime) && has(self.startAt))": lambda s: not ("startDateTime" in s and "startAt" in s),
    "!(has(self.endDateTime) && has(self.occurrences))": lambda s: not ("endDateTime" in s and "occurrences" in s),
    "(has(self.scheduleType) && self.scheduleType == 'ondemand') || has(self.schedule)":
        lambda s: s.get("scheduleType") == "ondemand" or "schedule" in s,
}


def to_jsonschema(node: dict[str, Any]) -> dict[str, Any]:
    """An openAPIV3Schema node as JSON Schema: int-or-string is either, preserve-unknown-fields allows anything
    more, and other objects reject unknown fields (kubectl's default, strict field validation)."""
    out = {k: copy.deepcopy(v) for k, v in node.items()
           if not k.startswith("x-kubernetes-") and k not in ("properties", "items", "additionalProperties")}
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if "properties" in node:
        out["properties"] = {k: to_jsonschema(v) for k, v in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        out["items"] = to_jsonschema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_jsonschema(node["additionalProperties"])
    return out


def server_problems(crd: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    """What the API server would say about a document: schema errors, duplicate map keys, CEL rules."""
    schema = schema_of(crd)
    validator = jsonschema.Draft7Validator(to_jsonschema(schema))
    found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]

    def check(node: dict[str, Any], value: Any, path: str) -> None:
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["rule"] in CEL, f"no Python stand-in for the CEL rule {rule['rule']!r}"
            if isinstance(value, dict) and not CEL[rule["rule"]](value):
                found.append(f"{path}: {rule['message']}")
        if isinstance(value, list) and node.get("x-kubernetes-list-type") == "map":
            keys = [tuple(item.get(k) for k in node["x-kubernetes-list-map-keys"]) for item in value
                    if isinstance(item, dict)]
            found.extend(f"{path}: duplicate entry {key}" for key in {k for k in keys if keys.count(k) > 1})
        if isinstance(value, dict):
            for name, child in (node.get("properties") or {}).items():
                if name in value:
                    check(child, value[name], f"{path}.{name}")
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            for index, item in enumerate(value):
                check(node["items"], item, f"{path}[{index}]")

    check(schema, doc, "")
    return found


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in load_yaml_documents(path.read_text()) if isinstance(d, dict)]


def our_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in SCHEMA_FILES:
        for doc in documents(path):
            if doc.get("kind") in ("Pipeline", "PipelineRun"):
                found.append((f"{path.relative_to(ROOT)}:{doc['metadata']['name']}", doc))
    return found


OURS = our_documents()


def test_there_are_examples_and_templates() -> None:
    assert len(OURS) >= 3


@pytest.mark.parametrize(("label", "doc"), OURS, ids=[label for label, _ in OURS])
def test_examples_and_templates_satisfy_the_crd_schema(label: str, doc: dict[str, Any]) -> None:
    crd = PIPELINE if doc["kind"] == "Pipeline" else RUN
    assert server_problems(crd, doc) == []


@pytest.mark.parametrize("path", AWS_FIXTURES, ids=[p.stem for p in AWS_FIXTURES])
def test_imported_aws_definitions_satisfy_the_crd_schema(path: Path) -> None:
    values_file, params_file = path.parent / "values" / path.name, path.parent / "parameters" / path.name
    values = json.loads(values_file.read_text())["values"] if values_file.exists() else {}
    params = json.loads(params_file.read_text())["parameters"] if params_file.exists() else None
    manifest = convert(json.loads(path.read_text()), path.stem, values, params).manifest
    # what `kubectl apply` sends: the YAML import-aws prints, read back
    doc = load_yaml_documents(yaml.safe_dump(manifest))[0]
    assert server_problems(PIPELINE, doc) == []


def manifest(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "p"}, "spec": spec}


def test_every_type_with_every_field_satisfies_the_schema() -> None:
    """What the parser accepts, the server accepts: the maximal object of every type (see test_definition)."""
    from test_definition import maximal, spec_with, with_object

    for type_spec in TYPES.values():
        spec = with_object(maximal(type_spec), type_spec.section)
        if type_spec.name not in UNSUPPORTED_TYPES:  # validation rejects those; the schema still takes them
            parse_manifest(manifest(spec))
        assert server_problems(PIPELINE, manifest(spec)) == [], type_spec.name
    assert server_problems(PIPELINE, manifest(spec_with())) == []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda s: s["activities"][0].update(comand="x"), "Additional properties are not allowed ('comand'"),
    (lambda s: s["activities"][0].update(type="ShellActivity"), "'ShellActivity' is not one of"),
    (lambda s: s["activities"][0].update(maximumRetries=-1), "-1 is less than the minimum of 0"),
    (lambda s: s["activities"][0].update(retryDelay=["1m"]), "['1m'] is not of type 'integer', 'string'"),
    (lambda s: s["activities"].append(dict(s["activities"][0])), ".activities: duplicate entry ('base',)"),
    (lambda s: s["schedule"].update(cron="0 * * * *"), ".spec.schedule: set exactly one of cron and period"),
    (lambda s: s.pop("schedule"), ".spec: schedule is required unless scheduleType is ondemand"),
    (lambda s: s.update(activities=[]), "spec.activities: [] should be non-empty"),
    (lambda s: s["databases"][0].update(passwordSecret={"name": "x"}), "'key' is a required property"),
])
def test_the_schema_rejects_what_the_server_would(change: Callable[[dict[str, Any]], Any], expected: str) -> None:
    from test_definition import spec_with

    spec = spec_with()
    change(spec)
    found = server_problems(PIPELINE, manifest(spec))
    assert any(expected in p for p in found), found


def test_pipelinerun_schema() -> None:
    run = {"apiVersion": "datapipeline.io/v1alpha1", "kind": "PipelineRun", "metadata": {"name": "r"},
           "spec": {"pipelineRef": {"name": "p"}, "scheduledStartTime": "2026-01-01T00:00:00Z", "trigger": "Manual",
                    "values": {"myX": "1"}, "rerun": {"id": "1", "activities": ["a"], "downstream": True},
                    "markFinished": ["b"], "cancel": False}}
    assert server_problems(RUN, run) == []
    del run["spec"]["pipelineRef"]
    assert any("'pipelineRef' is a required property" in p for p in server_problems(RUN, run))
