"""A pass that fails becomes a condition and an Event on its object, then a backoff: never a silent tight loop.

The message names the cause as the API server or the code gave it (``Job.batch "a/b" is invalid:
metadata.name: ...``). The same message is reported once per worker, so a persistent failure costs one
status patch and one Event, not one per retry.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException

from datapipeline.core.schedule import format_time
from datapipeline.k8s import api as kube

REASON = "ReconcileError"
FIRST_DELAY = 1.0  # seconds, doubled per consecutive failure
MAX_DELAY = 300.0


def backoff(failures: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure: exponential, capped, with full jitter."""
    ceiling = min(MAX_DELAY, FIRST_DELAY * 2 ** min(failures, 16))
    return (rng or random).uniform(ceiling / 2, ceiling)


def describe(error: BaseException) -> str:
    """One sentence for a user: the API server's own message where there is one."""
    if isinstance(error, ApiException | AsyncApiException):
        message, text = "", error.body.decode(errors="replace") if isinstance(error.body, bytes) else error.body
        try:
            body = json.loads(text or "{}")
            message = str(body.get("message") or "") if isinstance(body, Mapping) else ""
        except ValueError:
            message = ""
        return f"the API server refused a request ({error.status} {error.reason}): {message or text or ''}"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def report(plural: str, namespace: str, name: str, error: BaseException, memory: dict[str, Any],
           logger: logging.Logger) -> None:
    """Put the failure on the object (condition Ready=False, reason ReconcileError) and post one Event."""
    message = describe(error)[:1000]
    if memory.get("reported") == message:
        return
    memory["reported"] = message
    try:
        body = kube.get_object(namespace, plural, name)
        if body is None:
            return
        status = body.get("status") or {}
        kube.patch_status(namespace, plural, name, {"conditions": ready_false(status, message)})
        kopf.event(cast(Any, body), type="Warning", reason=REASON, message=message)
    except Exception:  # reporting is best effort; the worker retries the pass itself
        logger.exception("%s %s/%s: could not report the failure", plural, namespace, name)


def ready_false(status: Mapping[str, Any], message: str) -> list[dict[str, Any]]:
    now = format_time(datetime.now(UTC))
    out = []
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            changed = condition.get("status") != "False"
            condition = {**condition, "status": "False", "reason": REASON, "message": message,
                         "lastTransitionTime": now if changed else condition.get("lastTransitionTime", now)}
        out.append(condition)
    if not any(c.get("type") == "Ready" for c in out):
        out.append({"type": "Ready", "status": "False", "reason": REASON, "message": message,
                    "lastTransitionTime": now})
    return out
