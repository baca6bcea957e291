"""What each page's template gets, read from the watch cache (no API request)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from datapipeline import day2
from datapipeline.console import timeline, views
from datapipeline.console.cache import WatchCache
from datapipeline.console.graph import LayoutUnavailable, pipeline_graph, render_svg, to_dot
from datapipeline.controller.frozen import FROZEN_SPEC
from datapipeline.core.model import PipelineDefinition

Readable = Callable[[str, str], bool]  # (plural, namespace) -> may the caller list them there


class PageNotFound(LookupError):
    """The object a page is about does not exist (or the caller may not see it)."""


# ---------------------------------------------------------------------------- pipelines
def pipelines_page(cache: WatchCache, readable: Readable, params: Mapping[str, str]) -> dict[str, Any]:
    namespace = params.get("namespace") or None
    health = params.get("health") or None
    if health is not None and health not in views.HEALTH_FILTERS:
        raise day2.Day2Error(f'health: "{health[:40]}" is not one of {", ".join(views.HEALTH_FILTERS)}')
    visible = [p for p in cache.pipelines() if readable("pipelines", p["metadata"].get("namespace", ""))]
    rows = views.pipeline_rows(visible, namespace, health)
    namespaces = sorted({p["metadata"].get("namespace", "") for p in visible})
    return {"rows": rows, "namespaces": namespaces, "namespace": namespace or "", "health": health or "",
            "health_filters": views.HEALTH_FILTERS, "total": len(visible),
            "events": _events_url(namespace=namespace)}


# ---------------------------------------------------------------------------- one pipeline
def pipeline_page(cache: WatchCache, readable: Readable, namespace: str, name: str,
                  params: Mapping[str, str]) -> dict[str, Any]:
    pipeline = cache.pipeline(namespace, name) if readable("pipelines", namespace) else None
    if pipeline is None:
        raise PageNotFound(f"no Pipeline {name} in namespace {namespace}")
    status = params.get("status") or None
    if status is not None and status not in views.RUN_PHASES:
        raise day2.Day2Error(f'status: "{status[:40]}" is not one of {", ".join(views.RUN_PHASES)}')
    page = _page_number(params.get("page"))
    since, until = _time_filter(params, "since"), _time_filter(params, "until")
    runs = cache.runs(namespace, name) if readable("pipelineruns", namespace) else []
    chosen = _chosen_run(runs, params.get("run"))
    definition, problem = parsed(pipeline.get("spec") or {})
    spec = pipeline.get("spec") or {}
    return {"pipeline": views.pipeline_row(pipeline),
            "runs": views.runs_page(runs, status, page, since=since, until=until),
            "since": params.get("since") or "", "until": params.get("until") or "",
            "run": views.run_row(chosen) if chosen else None, "graph": _graph(definition, chosen),
            "problem": problem, "parameters": _parameters(spec), "run_phases": views.RUN_PHASES,
            "run_fields": _run_fields(spec), "backfill_fields": BACKFILL_FIELDS,
            "status": status or "", "events": _events_url(namespace=namespace, pipeline=name)}


def _chosen_run(runs: list[dict[str, Any]], name: str | None) -> Mapping[str, Any] | None:
    if name:
        found = next((r for r in runs if r["metadata"]["name"] == name), None)
        if found is None:
            raise PageNotFound(f"the pipeline has no run named {name}")
        return found
    return views.newest_run(runs)


BACKFILL_FIELDS = ({"key": "from", "label": "from (RFC 3339)", "value": ""},
                   {"key": "to", "label": "to (RFC 3339)", "value": ""})


def _run_fields(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """What "Run now" asks: the scheduled time, and each parameter a run may set, with its default."""
    fields = [{"key": "at", "label": "scheduled start (RFC 3339; empty: now)", "value": ""}]
    for p in spec.get("parameters") or ():
        default = p.get("default")
        if p.get("overridable") and not str(p.get("id", "")).startswith("*"):
            fields.append({"key": f"param:{p['id']}", "label": f"{p['id']} ({p.get('type', 'String')})",
                           "value": default if isinstance(default, str) else ""})
    return fields


def _parameters(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """The parameters as the page lists them: a masked one shows where its value comes from, never a value."""
    shown = []
    for p in spec.get("parameters") or ():
        masked = str(p.get("id", "")).startswith("*")
        secret = p.get("valueFromSecret") or {}
        default = f"from Secret {secret.get('name')}" if secret else "(masked)" if masked else p.get("default")
        shown.append({"id": str(p.get("id", "")), "type": str(p.get("type", "String")),
                      "default": json.dumps(default) if isinstance(default, list) else str(default or ""),
                      "overridable": "yes" if p.get("overridable") else "no"})
    return shown


# ---------------------------------------------------------------------------- one run
def run_page(cache: WatchCache, readable: Readable, namespace: str, name: str) -> dict[str, Any]:
    run = cache.run(namespace, name) if readable("pipelineruns", namespace) else None
    if run is None:
        raise PageNotFound(f"no PipelineRun {name} in namespace {namespace}")
    # The run executes its frozen copy of the spec; before it has one, the Pipeline's spec is the best guess.
    frozen = (run.get("status") or {}).get(FROZEN_SPEC)
    pipeline = cache.pipeline(namespace, views.run_row(run).pipeline) or {}
    definition, problem = parsed(frozen if isinstance(frozen, Mapping) else pipeline.get("spec") or {})
    view = views.run_view(run, definition)
    rows = timeline.run_segments(run, [a.name for a in view.activities], datetime.now(UTC))
    return {"run": view, "graph": _graph(definition, run), "problem": problem, "timeline": timeline.chart(rows),
            "bar_kinds": timeline.BAR_KINDS,
            "events": _events_url(namespace=namespace, pipeline=view.pipeline, run=name)}


# ---------------------------------------------------------------------------- helpers
def parsed(spec: Mapping[str, Any]) -> tuple[PipelineDefinition | None, str | None]:
    """The definition of a spec, or why it has none; the same spec is parsed once."""
    return _parse(json.dumps(spec, sort_keys=True, default=str))


@functools.lru_cache(maxsize=256)
def _parse(spec_json: str) -> tuple[PipelineDefinition | None, str | None]:
    from datapipeline.cli.validate import cli_limits
    from datapipeline.core.definition import parse_pipeline
    from datapipeline.core.problems import DefinitionError

    try:
        return parse_pipeline(json.loads(spec_json), limits=cli_limits()), None
    except DefinitionError as error:
        return None, str(error.problems[0]) if error.problems else str(error)


def _graph(definition: PipelineDefinition | None, run: Mapping[str, Any] | None) -> dict[str, str | None]:
    if definition is None:
        return {"svg": None, "problem": None}
    try:
        return {"svg": render_svg(to_dot(pipeline_graph(definition, (run or {}).get("status")))), "problem": None}
    except LayoutUnavailable as error:
        return {"svg": None, "problem": str(error)}


def _time_filter(params: Mapping[str, str], key: str) -> datetime | None:
    """A date (2026-11-30) or date-time (2026-11-30T12:00:00Z) of the runs filter."""
    text = (params.get(key) or "").strip()
    if not text:
        return None
    try:
        return day2.parse_time_option(text if "T" in text else f"{text}T00:00:00Z", key)
    except day2.Day2Error:
        raise day2.Day2Error(f'{key}: "{text[:60]}" is not a date (2026-11-30) or date-time '
                             "(2026-11-30T12:00:00Z)") from None


def _page_number(value: str | None) -> int:
    if not value:
        return 1
    if not value.isdigit() or len(value) > 6:
        raise day2.Day2Error(f'page: "{value[:20]}" is not a page number')
    return int(value)


def _events_url(**params: str | None) -> str:
    return "/events?" + urlencode({k: v for k, v in params.items() if v})
