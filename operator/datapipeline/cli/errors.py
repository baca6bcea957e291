"""One message for whatever stops a command: the field or the cause, never a traceback.

``main`` calls :func:`explain` for any exception a command lets through. Input problems the commands
raise themselves (DefinitionError, LoadError, ValueError with a ``field: message``) pass through as they
are; the Kubernetes client's failures (no kube context, an unreachable API server, a refused request) are
said in a sentence.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from datapipeline.core.problems import DefinitionError


def explain(error: BaseException) -> list[str]:
    """The lines to print (each after ``error: ``) for an exception that ended a command."""
    if isinstance(error, DefinitionError):
        return [str(problem) for problem in error.problems] or [str(error)]
    kube = _kubernetes_failure(error)
    if kube is not None:
        return [kube]
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return [f"{where}{error.strerror or error}"]
    if isinstance(error, ValueError):
        return [str(error)]
    return [f"internal error ({type(error).__name__}: {error}); please report it"]


def _kubernetes_failure(error: BaseException) -> str | None:
    try:
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config import ConfigException
        from urllib3.exceptions import HTTPError
    except ImportError:  # pragma: no cover - the CLI's dependencies include both
        return None
    if isinstance(error, ConfigException):
        return (f"no Kubernetes cluster to talk to: {str(error).rstrip('.')}. Point KUBECONFIG at a kubeconfig "
                "with a current context (as kubectl uses), or run inside a cluster")
    if isinstance(error, ApiException):
        return f"the Kubernetes API server refused the request: {error.status} {error.reason}{_api_detail(error)}"
    if isinstance(error, HTTPError):
        reason = getattr(error, "reason", None) or error
        return f"cannot reach the Kubernetes API server: {reason}"
    if isinstance(error, yaml.YAMLError):  # every file the commands read goes through the loader: this is kubeconfig
        return f"the kubeconfig is not valid YAML: {' '.join(str(error).split())}"
    return None


def _api_detail(error: Any) -> str:
    """The API server's own message, from the Status object in the body."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message}" if message else ""
