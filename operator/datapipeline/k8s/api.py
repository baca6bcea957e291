"""Thin, synchronous Kubernetes API calls (run in a thread from the async handlers).

Every write is idempotent: creating what exists and deleting what is gone both succeed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException

from datapipeline.core.definition import GROUP, VERSION
from datapipeline.k8s.jobs import LABEL_PIPELINE, LABEL_RUN, label_value

config: Any = _config
_client: Any = None


def load() -> None:
    global _client
    if _client is not None:
        return
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    _client = client.ApiClient()


def context_namespace() -> str:
    """The current kube context's namespace, as kubectl picks it; "default" when it names none."""
    try:
        _, active = config.list_kube_config_contexts(config_file=os.environ.get("KUBECONFIG"))
    except (config.ConfigException, OSError):
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")


# A client that acts for someone else than the kube context's user: the web console's request's bearer token.
_acting: ContextVar[Any] = ContextVar("datapipeline_acting_client", default=None)


@contextmanager
def acting_as(api_client: Any) -> Iterator[None]:
    """Every call of this module in the block (same thread or task) is made with ``api_client``."""
    token = _acting.set(api_client)
    try:
        yield
    finally:
        _acting.reset(token)


def _api() -> Any:
    chosen = _acting.get()
    if chosen is not None:
        return chosen
    load()
    assert _client is not None
    return _client


def custom() -> Any:
    return client.CustomObjectsApi(_api())


def batch() -> Any:
    return client.BatchV1Api(_api())


def core() -> Any:
    return client.CoreV1Api(_api())


def plain(obj: Any) -> Any:
    return _api().sanitize_for_serialization(obj)


# ---------------------------------------------------------------------------- custom resources
def get_object(namespace: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(custom().get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def list_runs(namespace: str, pipeline: str | None = None) -> list[dict[str, Any]]:
    selector = f"{LABEL_PIPELINE}={label_value(pipeline)}" if pipeline else None
    kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
    result = custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "pipelineruns", **kwargs)
    return list(result.get("items") or [])


def create_object(namespace: str, plural: str, body: Mapping[str, Any]) -> bool:
    """True if created, False if it already existed."""
    try:
        custom().create_namespaced_custom_object(GROUP, VERSION, namespace, plural, dict(body))
        return True
    except ApiException as error:
        if error.status == 409:
            return False
        raise


def apply_object(namespace: str, plural: str, body: Mapping[str, Any]) -> None:
    """Create, or replace the spec of what exists (like kubectl apply, for the CLI's demo)."""
    if create_object(namespace, plural, body):
        return
    patch_spec(namespace, plural, str(body["metadata"]["name"]), {"spec": body.get("spec") or {}})


def extensions() -> Any:
    return client.ApiextensionsV1Api(_api())


def crd_labels(name: str) -> dict[str, str] | None:
    """The labels of a CustomResourceDefinition, or None when it does not exist."""
    try:
        crd: Any = extensions().read_custom_resource_definition(name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return dict(crd.metadata.labels or {})


def apply_crd(body: Mapping[str, Any]) -> None:
    """Create or replace a CustomResourceDefinition (for the demo; the chart does this in a release)."""
    name = str(body["metadata"]["name"])
    try:
        current: Any = extensions().read_custom_resource_definition(name)
    except ApiException as error:
        if error.status != 404:
            raise
        extensions().create_custom_resource_definition(dict(body))
        return
    replacement = {**body, "metadata": {**body["metadata"], "resourceVersion": current.metadata.resource_version}}
    extensions().replace_custom_resource_definition(name, replacement)


def ensure_namespace(name: str) -> None:
    try:
        core().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as error:
        if error.status != 409:
            raise


def delete_object(namespace: str, plural: str, name: str) -> None:
    try:
        custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name,
                                                 body=client.V1DeleteOptions(propagation_policy="Background"))
    except ApiException as error:
        if error.status != 404:
            raise


def patch_status(namespace: str, plural: str, name: str, status: Mapping[str, Any],
                 resource_version: str | None = None) -> dict[str, Any] | None:
    """A JSON merge patch of the status; with ``resource_version``, only if the object is still at it (409).
    Returns the object as the API server stored it."""
    body: dict[str, Any] = {"status": dict(status)}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    answer = custom().patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural, name, body)
    return dict(answer) if isinstance(answer, Mapping) else None


def patch_spec(namespace: str, plural: str, name: str, patch: Mapping[str, Any]) -> None:
    """For the CLI only: the operator never writes a spec."""
    custom().patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, dict(patch))


# ---------------------------------------------------------------------------- jobs and pods
def list_jobs(namespace: str, run: str) -> list[dict[str, Any]]:
    result = batch().list_namespaced_job(namespace, label_selector=f"{LABEL_RUN}={label_value(run)}")
    return [plain(j) for j in result.items]


def list_attempts(namespace: str, run: str) -> list[dict[str, Any]]:
    result = custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "taskattempts",
                                                    label_selector=f"{LABEL_RUN}={label_value(run)}")
    return list(result.get("items") or [])


def list_pipeline_attempts(namespace: str, selector: str) -> list[dict[str, Any]]:
    result = custom().list_namespaced_custom_object(GROUP, VERSION, namespace, "taskattempts", label_selector=selector)
    return list(result.get("items") or [])


def list_pods(namespace: str, run: str) -> list[dict[str, Any]]:
    result = core().list_namespaced_pod(namespace, label_selector=f"{LABEL_RUN}={label_value(run)}")
    return [plain(p) for p in result.items]


def last_log_time(namespace: str, pod: str) -> datetime | None:
    """The Kubernetes timestamp of the pod's newest log line (None: no line yet, or the pod is gone)."""
    try:
        text = core().read_namespaced_pod_log(pod, namespace, timestamps=True, tail_lines=1,
                                              _request_timeout=10)
    except ApiException as error:
        if error.status in (400, 404):
            return None
        raise
    return parse_log_time(str(text or ""))


def parse_log_time(text: str) -> datetime | None:
    """``2026-11-21T19:56:53.123456789Z line`` -> that instant (nanoseconds cut to microseconds)."""
    stamp = text.strip().split(" ", 1)[0] if text.strip() else ""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp)
    if not match:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}").astimezone(UTC)


def create_job(namespace: str, manifest: Mapping[str, Any]) -> bool:
    try:
        batch().create_namespaced_job(namespace, dict(manifest))
        return True
    except ApiException as error:
        if error.status == 409:
            return False
        raise


def delete_job(namespace: str, name: str) -> None:
    try:
        batch().delete_namespaced_job(name, namespace, propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise
