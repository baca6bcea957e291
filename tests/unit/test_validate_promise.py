"""`validate` is a promise: a manifest it accepts resolves (render, the operator's resolution code), and
every name the operator generates from it is a valid Kubernetes name."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from datapipeline.cli.render import render_files
from datapipeline.cli.validate import check_document
from datapipeline.core.definition import NODE_FIELDS, RUNTIME_FIELDS
from datapipeline.core.runstate import action_job_name, attempt_job_name, check_job_name

NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)
DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def manifest(command: str = "echo hi", message: str = "done") -> dict[str, Any]:
    return {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "metadata": {"name": "promise"},
            "spec": {"schedule": {"period": "1 day", "startDateTime": "2026-05-01T00:00:00Z"},
                     "actions": [{"name": "told", "type": "SnsAlarm", "topicArn": "arn:aws:sns:x:1:t",
                                  "message": message}],
                     "activities": [{"name": "work", "type": "ShellCommandActivity", "command": command,
                                     "onSuccess": ["told"], "onFail": ["told"]}]}}


def outcome(doc: dict[str, Any], tmp_path: Path) -> tuple[list[str], int, str]:
    problems = check_document(doc)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    out, err = io.StringIO(), io.StringIO()
    code = render_files(path, None, None, out, err, now=NOW)
    return problems, code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("field", sorted(RUNTIME_FIELDS))
def test_each_runtime_field_in_an_activity_is_rejected_or_resolves(field: str, tmp_path: Path) -> None:
    problems, code, text = outcome(manifest(command=f"echo #{{{field}}}"), tmp_path)
    if problems:
        assert problems == [f"spec.activities[0] (work).command: #{{{field}}}: an object does not know its own "
                            f"{field} while it runs; it is only known to the actions and preconditions it "
                            f"triggers, as #{{node.{field}}}"]
        assert code == 1
    else:
        assert code == 0, text
        assert f"#{{{field}}}" not in text


@pytest.mark.parametrize("field", sorted(NODE_FIELDS | {"name", "id", "type"}))
def test_each_node_field_in_an_action_resolves(field: str, tmp_path: Path) -> None:
    problems, code, text = outcome(manifest(message=f"[#{{node.{field}}}]"), tmp_path)
    if problems:
        assert problems[0].startswith("spec.actions[0] (told).message: ")
    else:
        assert code == 0, text


def test_an_unknown_node_runtime_field_is_rejected_with_its_path() -> None:
    assert check_document(manifest(message="#{node.@statuss}")) == [
        'spec.actions[0] (told).message: #{node.@statuss}: node has no runtime field "@statuss"; did you mean '
        '"@status"?']


def test_actions_have_no_attempt_count_of_their_own() -> None:
    assert check_document(manifest(message="#{@attemptCount}")) == [
        "spec.actions[0] (told).message: #{@attemptCount}: action fields have no @attemptCount; use "
        "#{node.@attemptCount}"]


def test_names_that_make_the_same_kubernetes_name_are_rejected() -> None:
    doc = manifest()
    doc["spec"]["activities"].append({"name": "Work", "type": "ShellCommandActivity", "command": "x"})
    assert check_document(doc) == [
        'spec.activities[1] (Work).name: "Work" and "work" make the same Kubernetes name "work" (names are '
        'lower-cased and "_" and "." become "-"); rename one']


def test_generated_job_names_are_dns_names() -> None:
    run = "orders-20260504t0000z"
    for name in (attempt_job_name(run, "load_orders.v2", 3), check_job_name(run, "load", "Raw.Data/has_rows", 2),
                 check_job_name(run, "x" * 60, "node/precondition" * 4, 12),
                 action_job_name(run, "Load.Orders", "fail", "Page_Oncall")):
        assert DNS.match(name) and len(name) <= 63, name


def test_render_shows_the_resolved_fields(tmp_path: Path) -> None:
    doc = manifest(command="echo #{format(@scheduledStartTime, 'YYYY-MM-dd')} #{@attemptCount}",
                   message="#{node.name} is #{node.@status}")
    problems, code, text = outcome(doc, tmp_path)
    assert problems == [] and code == 0
    rendered = yaml.safe_load(text)
    (activity,) = rendered["activities"]
    assert rendered["scheduledStartTime"] == "2026-05-01T00:00:00Z"
    assert activity["fields"]["command"] == "echo 2026-05-01 1"
    assert [a["fields"]["message"] for a in activity["actions"]] == ["work is FINISHED", "work is FAILED"]


def test_render_names_each_field_that_does_not_resolve(tmp_path: Path) -> None:
    doc = manifest(command="echo #{plusDays(myWhen, 1)}")
    doc["spec"]["parameters"] = [{"id": "myWhen", "type": "String", "default": "soon"}]
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    err = io.StringIO()
    assert render_files(path, None, "work", io.StringIO(), err, now=NOW) == 1
    assert err.getvalue().startswith(f"{path} Pipeline/promise: spec.activities[0] (work).command: ")
    assert "Traceback" not in err.getvalue()


@pytest.mark.parametrize(("uri", "problem"), [
    ("s3://logs/#{@pipelineId}/#{@id}/#{format(@scheduledStartTime,'YYYY-MM-dd')}/", None),
    ("s3://logs/#{myNope}/", 'spec.pipelineLogUri: #{myNope} refers to nothing: no field, parameter or runtime '
                             'field "myNope"'),
    ("s3://logs/#{node.@status}/", "spec.pipelineLogUri: #{node.@status}: node.* is only known inside actions and "
                                   "preconditions"),
    ("s3://logs/#{format(}/", "spec.pipelineLogUri: bad expression"),
])
def test_the_pipeline_log_uri_is_checked_like_an_activity_field(uri: str, problem: str | None) -> None:
    doc = manifest()
    doc["spec"]["pipelineLogUri"] = uri
    found = check_document(doc)
    assert (found == []) if problem is None else any(p.startswith(problem) for p in found), found
