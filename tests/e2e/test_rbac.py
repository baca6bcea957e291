"""The installed operator's rights are exactly what its code calls, asked of the real API server."""

from __future__ import annotations

import re

import pytest
from fixtures.cluster import KubeCluster

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

# Every API call the operator makes (k8s/api.py, the kopf watches, Events), and nothing else.
EXPECTED = {
    "pipelines.datapipeline.io": {"get", "list", "watch"},
    "pipelineruns.datapipeline.io": {"get", "list", "watch", "create", "delete"},
    "pipelines.datapipeline.io/status": {"patch"},
    "pipelineruns.datapipeline.io/status": {"patch"},
    "taskattempts.datapipeline.io": {"list", "watch", "create", "delete"},
    "taskattempts.datapipeline.io/status": {"patch"},
    "jobs.batch": {"list", "watch", "create", "delete"},
    "pods": {"list", "watch"},
    "pods/log": {"get"},
    "events": {"create"},
    # Leader election: its one Lease (get, update by name; create).
    "leases.coordination.k8s.io": {"get", "update", "create"},
    # kopf's discovery of resources and namespaces (cluster-wide, read-only).
    "customresourcedefinitions.apiextensions.k8s.io": {"list", "watch"},
    "namespaces": {"list", "watch"},
}
# What every authenticated identity may do (the API server's own defaults), not the chart's grants.
BUILT_IN = {"selfsubjectaccessreviews.authorization.k8s.io", "selfsubjectrulesreviews.authorization.k8s.io",
            "selfsubjectreviews.authentication.k8s.io"}


def granted(kube_cluster: KubeCluster, namespace: str, account: str) -> dict[str, set[str]]:
    out = kube_cluster.kubectl("auth", "can-i", "--list", "-n", namespace,
                               f"--as=system:serviceaccount:{namespace}:{account}").stdout
    rights: dict[str, set[str]] = {}
    for line in out.splitlines()[1:]:
        row = re.fullmatch(r"(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*)\]\s*", line)
        if row is None or row.group(1) in BUILT_IN:
            continue  # non-resource URLs (no resource column) and the API server's own defaults
        rights.setdefault(row.group(1), set()).update(row.group(4).split())
    return rights


FORBIDDEN = [("get", "secrets"), ("list", "secrets"), ("get", "configmaps"), ("patch", "configmaps"),
             ("delete", "configmaps"), ("patch", "pipelines.datapipeline.io"),
             ("update", "pipelineruns.datapipeline.io"), ("delete", "pods"), ("patch", "jobs.batch"), ("create", "pods")]


def test_the_operator_may_do_exactly_what_its_code_calls(kube_cluster: KubeCluster, namespace: str,
                                                         release: str) -> None:
    account = f"system:serviceaccount:{namespace}:{release}-operator"
    assert granted(kube_cluster, namespace, f"{release}-operator") == EXPECTED
    for verb, resource in FORBIDDEN:
        result = kube_cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={account}",
                                      check=False)
        assert result.stdout.strip() == "no", f"the operator may {verb} {resource}"
