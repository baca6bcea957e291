"""The console's actions: a checked request, then the same :mod:`datapipeline.day2` call as the CLI verb."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datapipeline import day2
from datapipeline.console.auth import Caller

# action -> (what it names: "run" or "pipeline", the CLI verb it is)
ACTIONS: Mapping[str, tuple[str, str]] = {
    "rerun-failed": ("run", "datapipeline rerun RUN --failed-only"),
    "rerun": ("run", "datapipeline rerun RUN"),
    "rerun-activity": ("run", "datapipeline rerun RUN --activity A"),
    "rerun-downstream": ("run", "datapipeline rerun RUN --activity A --downstream"),
    "mark-finished": ("run", "datapipeline mark-finished RUN A"),
    "cancel": ("run", "datapipeline cancel RUN"),
    "run-now": ("pipeline", "datapipeline run PIPELINE [--at T] [--param K=V]"),
    "backfill": ("pipeline", "datapipeline backfill PIPELINE --from T --to T"),
    "activate": ("pipeline", "datapipeline activate PIPELINE"),
    "deactivate": ("pipeline", "datapipeline deactivate PIPELINE"),
    "pause": ("pipeline", "datapipeline pause PIPELINE"),
    "resume": ("pipeline", "datapipeline resume PIPELINE"),
}
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a Kubernetes object name
_ACTIVITY = re.compile(r"[A-Za-z0-9_.-]{1,253}")
PARAM_PREFIX = "param:"  # a field that is a parameter value of run-now: param:<id>
MAX_FIELDS, MAX_FIELD_LENGTH = 64, 4096
BACKFILL_REPORTED = 5  # lines of a backfill's report shown; the rest are counted


@dataclass(frozen=True)
class ActionRequest:
    action: str
    namespace: str
    target: str  # the run or the pipeline, as ACTIONS says
    activity: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)  # what the confirmation asked: at, from, to, param:*

    @staticmethod
    def from_json(body: Any) -> ActionRequest:
        """The request from a page's JSON body; a Day2Error naming the field that is wrong."""
        if not isinstance(body, Mapping):
            raise day2.Day2Error("the request is not a JSON object")
        action = _text(body, "action")
        if action not in ACTIONS:
            raise day2.Day2Error(f'action: "{action[:40]}" is not one of {", ".join(ACTIONS)}')
        kind = ACTIONS[action][0]
        namespace, target = _name(body, "namespace"), _name(body, kind)
        activity = None
        if action in ("rerun-activity", "rerun-downstream", "mark-finished"):
            activity = _text(body, "activity")
            if not _ACTIVITY.fullmatch(activity):
                raise day2.Day2Error(f'activity: "{activity[:60]}" is not an activity name')
        return ActionRequest(action, namespace, target, activity, _fields(body.get("fields")))


def _fields(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_FIELDS:
        raise day2.Day2Error(f"fields: at most {MAX_FIELDS} names with text values")
    for key, text in value.items():
        if not isinstance(text, str) or len(text) > MAX_FIELD_LENGTH or len(str(key)) > 256:
            raise day2.Day2Error(f"fields.{str(key)[:40]}: must be text of at most {MAX_FIELD_LENGTH} characters")
    return {str(k): v for k, v in value.items()}


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise day2.Day2Error(f"{key}: required")
    return value


def _name(body: Mapping[str, Any], key: str) -> str:
    value = _text(body, key)
    if not _NAME.fullmatch(value):
        raise day2.Day2Error(f'{key}: "{value[:60]}" is not a Kubernetes name')
    return value


def perform(kube: Any, caller: Caller, order: ActionRequest) -> str:
    """Runs the action as ``caller`` (the kube context's user, or a request's token); returns its one line."""
    if caller.client is None:
        return _dispatch(kube, order)
    from datapipeline.k8s import api

    with api.acting_as(caller.client):
        return _dispatch(kube, order)


def _dispatch(kube: Any, order: ActionRequest) -> str:
    ns, target, activity = order.namespace, order.target, order.activity
    match order.action:
        case "rerun-failed":
            return day2.rerun_run(kube, ns, target, failed_only=True)
        case "rerun":
            return day2.rerun_run(kube, ns, target)
        case "rerun-activity" | "rerun-downstream":
            return day2.rerun_run(kube, ns, target, activities=[str(activity)],
                                  downstream=order.action == "rerun-downstream")
        case "mark-finished":
            return day2.mark_finished(kube, ns, target, [str(activity)])
        case "cancel":
            return day2.cancel_run(kube, ns, target)
        case "run-now":
            return _run_now(kube, order)
        case "backfill":
            return _backfill(kube, order)
        case _:
            return day2.change_lifecycle(kube, ns, target, order.action)


def _run_now(kube: Any, order: ActionRequest) -> str:
    """``datapipeline run``: --at when given, each non-empty param:<id> field as --param id=value."""
    at = order.fields.get("at", "").strip()
    moment = day2.parse_time_option(at, "at") if at else None
    params = {k.removeprefix(PARAM_PREFIX): v for k, v in order.fields.items() if k.startswith(PARAM_PREFIX) and v}
    name = day2.start_run(kube, order.namespace, order.target, at=moment, params=params)
    return f"pipelinerun/{name} created"


def _backfill(kube: Any, order: ActionRequest) -> str:
    """``datapipeline backfill --from --to``: the runs it created, the first few by name."""
    times = [order.fields.get(key, "").strip() for key in ("from", "to")]
    for key, text in zip(("from", "to"), times, strict=True):
        if not text:
            raise day2.Day2Error(f"{key}: required, a date-time like 2026-01-31T00:00:00Z")
    lines: list[str] = []
    day2.backfill(kube, order.namespace, order.target, day2.parse_time_option(times[0], "from"),
                  day2.parse_time_option(times[1], "to"), report=lines.append)
    if not lines:
        return "no interval starts in that range"
    more = f" and {len(lines) - BACKFILL_REPORTED} more" if len(lines) > BACKFILL_REPORTED else ""
    return "; ".join(lines[:BACKFILL_REPORTED]) + more
