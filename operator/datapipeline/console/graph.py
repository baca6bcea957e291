"""A pipeline drawn as a graph: activities, data nodes and preconditions, coloured by their state in a run.

:func:`pipeline_graph` and :func:`to_dot` are pure; :func:`render_svg` hands the DOT text to Graphviz's
``dot`` (the layout is Graphviz's, never placed by hand) and keeps the SVG by its DOT text, so a graph whose
states did not change costs no process.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datapipeline.core.model import PipelineDefinition
from datapipeline.core.runstate import (
    CANCELED,
    CASCADE_FAILED,
    CHECKING,
    FAILED,
    FINISHED,
    MET,
    PAUSED,
    RUNNING,
    SKIPPED,
    TIMEDOUT,
    WAITING_FOR_RUNNER,
    WAITING_ON_DEPENDENCIES,
)

ACTIVITY, DATA_NODE, PRECONDITION = "activity", "dataNode", "precondition"
FAILURE_COLOUR = "#e5534b"
NO_STATE_COLOUR = "#ffffff"
# Fill colours by state; the legend and the CSS use the same table (console/static/console.css mirrors it).
STATE_COLOURS: Mapping[str, str] = {
    FINISHED: "#57ab5a", MET: "#57ab5a", SKIPPED: "#c5d1c6",
    RUNNING: "#539bf5", CHECKING: "#539bf5", WAITING_FOR_RUNNER: "#96d0ff",
    WAITING_ON_DEPENDENCIES: "#e6e6e6", PAUSED: "#daaa3f",
    FAILED: FAILURE_COLOUR, TIMEDOUT: FAILURE_COLOUR, CASCADE_FAILED: "#f69d50", CANCELED: "#909dab",
}
# A precondition checked for several activities shows the most telling of its checks' states.
_CHECK_PRECEDENCE = (FAILED, CHECKING, CANCELED, MET)
_SHAPES = {ACTIVITY: "box", DATA_NODE: "cylinder", PRECONDITION: "hexagon"}


@dataclass(frozen=True)
class GraphNode:
    kind: str  # activity | dataNode | precondition
    name: str
    type: str  # the AWS type: ShellCommandActivity, S3DataNode...
    state: str | None  # in the selected run; None without a run or before anything happened to it

    @property
    def element_id(self) -> str:
        """The id of the node's element in the SVG (``activity-load``)."""
        return f"{self.kind}-{self.name}"

    @property
    def colour(self) -> str:
        return STATE_COLOURS.get(self.state or "", NO_STATE_COLOUR)


@dataclass(frozen=True)
class GraphEdge:
    source: str  # element ids
    target: str
    kind: str  # dependsOn | input | output | precondition


@dataclass(frozen=True)
class Graph:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


def pipeline_graph(definition: PipelineDefinition, run_status: Mapping[str, Any] | None = None) -> Graph:
    """Every activity, data node and precondition, with their edges and their states in the run."""
    status = run_status or {}
    activity_states = status.get("activities") or {}
    node_states = status.get("dataNodes") or {}
    check_states = _precondition_states(activity_states)
    nodes = [GraphNode(ACTIVITY, a.name, a.type, _state(activity_states.get(a.name)))
             for a in definition.activities.values()]
    nodes += [GraphNode(DATA_NODE, n.name, n.type, _state(node_states.get(n.name)))
              for n in definition.objects.get("dataNodes", {}).values()]
    nodes += [GraphNode(PRECONDITION, p.name, p.type, check_states.get(p.name))
              for p in definition.objects.get("preconditions", {}).values()]
    return Graph(tuple(nodes), tuple(_edges(definition)))


def _edges(definition: PipelineDefinition) -> list[GraphEdge]:
    edges: list[GraphEdge] = []
    known_nodes = definition.objects.get("dataNodes", {})
    known_checks = definition.objects.get("preconditions", {})
    for activity in definition.activities.values():
        me = f"{ACTIVITY}-{activity.name}"
        edges += [GraphEdge(f"{ACTIVITY}-{d}", me, "dependsOn") for d in activity.depends_on
                  if d in definition.activities]
        edges += [GraphEdge(f"{DATA_NODE}-{n}", me, "input") for n in activity.inputs if n in known_nodes]
        edges += [GraphEdge(me, f"{DATA_NODE}-{n}", "output") for n in activity.outputs if n in known_nodes]
        edges += [GraphEdge(f"{PRECONDITION}-{p}", me, "precondition") for p in activity.preconditions
                  if p in known_checks]
    for node in known_nodes.values():
        edges += [GraphEdge(f"{PRECONDITION}-{p}", f"{DATA_NODE}-{node.name}", "precondition")
                  for p in node.refs("precondition") if p in known_checks]
    return list(dict.fromkeys(edges))  # an input named twice is one edge


def _state(entry: Any) -> str | None:
    return str(entry["status"]) if isinstance(entry, Mapping) and entry.get("status") else None


def _precondition_states(activities: Mapping[str, Any]) -> dict[str, str]:
    """A precondition's state from the checks of every activity waiting on it (keys ``name`` or ``node/name``)."""
    seen: dict[str, set[str]] = {}
    for entry in activities.values():
        for key, check in ((entry or {}).get("checks") or {}).items():
            seen.setdefault(str(key).rsplit("/", 1)[-1], set()).add(str((check or {}).get("status") or CHECKING))
    return {name: next((s for s in _CHECK_PRECEDENCE if s in states), sorted(states)[0])
            for name, states in seen.items()}


# ---------------------------------------------------------------------------- DOT
def to_dot(graph: Graph) -> str:
    """The graph in Graphviz's language, left to right; each node's SVG element gets its id and state class."""
    lines = ["digraph pipeline {", '  graph [rankdir=LR, bgcolor="transparent", nodesep=0.35, ranksep=0.55];',
             '  node [fontname="DejaVu Sans", fontsize=11, style="filled", penwidth=1.2, color="#444c56"];',
             '  edge [color="#768390", arrowsize=0.7];']
    for node in graph.nodes:
        label = "\\n".join([_quote(node.name), _quote(node.type), *([node.state] if node.state else [])])
        lines.append(f'  "{_quote(node.element_id)}" [id="{_quote(node.element_id)}", class="{node.kind} state-'
                     f'{node.state or "none"}", shape={_SHAPES[node.kind]}, label="{label}", '
                     f'fillcolor="{node.colour}", tooltip="{node.kind} {_quote(node.name)}"];')
    for edge in graph.edges:
        style = ', style="dashed"' if edge.kind in ("input", "output", "precondition") else ""
        lines.append(f'  "{_quote(edge.source)}" -> "{_quote(edge.target)}" [class="{edge.kind}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """Text inside a DOT string: a backslash would start a Graphviz escape (\\n, \\N), a quote end it."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


# ---------------------------------------------------------------------------- SVG
class LayoutUnavailable(RuntimeError):
    """Graphviz's dot is not installed or failed."""


_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)


@functools.lru_cache(maxsize=512)
def render_svg(dot: str) -> str:
    """The SVG of a DOT text as an element to inline in a page (no XML prolog or DOCTYPE)."""
    binary = shutil.which("dot")
    if binary is None:
        raise LayoutUnavailable("Graphviz is not installed (the Debian package graphviz): no graph can be drawn")
    try:
        done = subprocess.run([binary, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        raise LayoutUnavailable("Graphviz took more than 20 seconds to lay the graph out") from None
    if done.returncode != 0:
        raise LayoutUnavailable(f"Graphviz failed: {done.stderr.strip()[:300]}")
    return _PROLOG.sub("", done.stdout, count=1)
