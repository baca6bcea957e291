"""Values a profile hands to Kubernetes are checked by validate, with Kubernetes' own rules."""

from __future__ import annotations

from typing import Any

import pytest

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.problems import DefinitionError


def profile_problems(**fields: Any) -> list[str]:
    spec = {"scheduleType": "ondemand",
            "computeProfiles": [{"name": "cp", "type": "ComputeProfile", **fields}],
            "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true", "runsOn": "cp"}]}
    try:
        parse_pipeline(spec)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


@pytest.mark.parametrize(("fields", "message"), [
    ({"memory": "lots"}, 'spec.computeProfiles[0].memory: "lots" is not a Kubernetes quantity (like 500m, 2, 512Mi '
                         "or 1Gi)"),
    ({"cpu": "1 core"}, 'spec.computeProfiles[0].cpu: "1 core" is not a Kubernetes quantity'),
    ({"nodeSelector": {"a b": "c"}}, 'spec.computeProfiles[0].nodeSelector.a b: "a b" is not a valid label key'),
    ({"nodeSelector": {"zone": "eu west"}}, 'spec.computeProfiles[0].nodeSelector.zone: "eu west" is not a valid '
                                            "label value"),
    ({"image": "UPPER CASE"}, 'spec.computeProfiles[0].image: "UPPER CASE" is not a container image reference'),
    ({"serviceAccountName": "Bad_Name"}, 'spec.computeProfiles[0].serviceAccountName: "Bad_Name" is not a valid '
                                         "Kubernetes name"),
    ({"env": {"A=B": "x"}}, 'spec.computeProfiles[0].env.A=B: "A=B" is not a valid environment variable name'),
    ({"envFromSecrets": ["My Secret"]}, 'spec.computeProfiles[0].envFromSecrets[0]: "My Secret" is not a valid '
                                        "Kubernetes name"),
])
def test_a_value_kubernetes_would_refuse_is_a_problem_with_its_path(fields: dict[str, Any], message: str) -> None:
    found = profile_problems(**fields)
    assert len(found) == 1 and found[0].startswith(message), found


@pytest.mark.parametrize("fields", [
    {"image": "busybox"}, {"image": "localhost:5000/team/runner:1.2-rc"},
    {"image": "docker.io/apache/spark:3.5.1@sha256:" + "a" * 64}, {"memory": "512Mi", "cpu": "0.5"},
    {"memory": "1e9", "cpu": "250m"}, {"nodeSelector": {"kubernetes.io/os": "linux", "tier": ""}},
    {"serviceAccountName": "spark-driver"}, {"env": {"JAVA_HOME": "/usr"}},
])
def test_valid_values_pass(fields: dict[str, Any]) -> None:
    assert profile_problems(**fields) == []
