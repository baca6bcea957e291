"""Read YAML and JSON text into data within the limits: the one loader every CLI verb uses.

YAML is read the way kubectl reads it (date-times stay strings; a key written twice is an error), and
safely: PyYAML's SafeLoader still expands aliases, so a 500-byte "billion laughs" document becomes
billions of values for whoever walks it. Here every alias counts as a copy of what it names, and the
document is refused at the first alias that takes it past ``max_nodes``; nesting (aliases included)
stops at ``max_depth``, number literals at ``max_number_digits``. JSON gets the same bounds. Every
problem is a :class:`LoadError` whose message says where: ``line 3, column 7: ...`` or a field path.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from datapipeline.core.limits import DEFAULT_LIMITS, Limits, clip, spec_problems, too_many_digits


class LoadError(ValueError):
    """Text that cannot be read as a document; the message says where (line and column, or path)."""


class _Refused(yaml.MarkedYAMLError):
    """A limit reached while reading YAML, at a mark."""


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def check_size(text: str, what: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse text larger than ``max_bytes`` (counted cheaply: characters first, UTF-8 bytes when close)."""
    if len(text) > limits.max_bytes or len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise LoadError(f"{what} is larger than {limits.max_bytes:,} bytes")


# ---------------------------------------------------------------------------- YAML
class BoundedLoader(yaml.SafeLoader):
    """SafeLoader with kubectl's reading of date-times and duplicate keys, and the limits."""

    limits: Limits = DEFAULT_LIMITS

    def __init__(self, stream: str, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(stream)
        self.limits = limits
        self._depth = 0
        self._nodes = 0
        self._open: set[str] = set()  # anchors of collections being composed
        self._shape: dict[Node, tuple[int, int]] = {}  # node -> (values, depth), aliases expanded

    # The scanner looks ahead over a whole run of "[[[[..." before it yields a token, at a cost that grows
    # with the nesting, so nesting is refused as the scanner meets it, not only when composing.
    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level + len(self.indents) >= self.limits.max_depth:
            raise _Refused(None, None, f"nested too deeply: more than {self.limits.max_depth} levels",
                           self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if self.flow_level + len(self.indents) >= self.limits.max_depth:
            raise _Refused(None, None, f"nested too deeply: more than {self.limits.max_depth} levels",
                           self.get_mark())
        return bool(super().add_indent(column))

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            return self._alias(event, parent, index)
        anchor = event.anchor if isinstance(event, CollectionStartEvent) else None
        self._depth += 1
        self._count(1, self._depth, event.start_mark)
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor or "")

    def _alias(self, event: Any, parent: Node | None, index: Any) -> Node | None:
        if event.anchor in self._open:
            raise _Refused(None, None, f"the alias *{event.anchor} is inside the value it names (a cycle)",
                           event.start_mark)
        node = self.anchors.get(event.anchor or "")
        if node is not None:
            values, depth = self._measure(node)
            self._count(values, self._depth + depth, event.start_mark)
        return super().compose_node(parent, index)

    def _count(self, values: int, depth: int, mark: Any) -> None:
        """Add ``values`` to the document's count; ``depth`` is the nesting they reach."""
        self._nodes += values
        if self._nodes > self.limits.max_nodes:
            raise _Refused(None, None, f"the document holds more than {self.limits.max_nodes:,} values once its "
                                       "YAML aliases are expanded (an alias bomb?)", mark)
        if depth > self.limits.max_depth:
            raise _Refused(None, None, f"nested too deeply: more than {self.limits.max_depth} levels", mark)

    def _measure(self, node: Node) -> tuple[int, int]:
        """Values and depth of a composed node with its aliases expanded (memoised: linear in the text)."""
        known = self._shape.get(node)
        if known is not None:
            return known
        children: list[Node] = []
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif not isinstance(node, ScalarNode):
            children = list(node.value)
        shapes = [self._measure(child) for child in children]
        result = (1 + sum(s[0] for s in shapes), 1 + max((s[1] for s in shapes), default=0))
        self._shape[node] = result
        return result

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base" may repeat keys: the mapping's own win
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f'the key "{clip(str(key))}" is written twice (first on line {seen[key].start_mark.line + 1})',
                    key_node.start_mark)
            if isinstance(key, Hashable):
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        self._check_number(node)
        return int(super().construct_yaml_int(node))

    def construct_yaml_float(self, node: ScalarNode) -> float:
        self._check_number(node)
        return float(super().construct_yaml_float(node))

    def _check_number(self, node: ScalarNode) -> None:
        text = str(node.value)
        problem = too_many_digits("".join(c if c.isalnum() else "" for c in text), self.limits)
        if problem:
            raise _Refused(None, None, problem, node.start_mark)


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_yaml_float)
# kubectl (sigs.k8s.io/yaml) keeps 2026-01-31T00:00:00Z a string; so do we, so that string fields accept it.
BoundedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml_documents(text: str, limits: Limits = DEFAULT_LIMITS) -> list[Any]:
    """Every document of a YAML stream; LoadError naming the line and column of a syntax error or limit."""
    check_size(text, "the file", limits)
    loader: BoundedLoader | None = None
    try:
        loader = BoundedLoader(text, limits)  # the reader refuses unprintable characters right away
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
        return documents
    except _Refused as error:
        raise LoadError(f"{_where(error.problem_mark)}{error.problem}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise LoadError(f"not valid YAML: {_where(mark)}{error.problem or error.context or error}") from None
    except RecursionError:
        raise LoadError(f"nested too deeply: more than {limits.max_depth} levels") from None
    except (yaml.YAMLError, ValueError, TypeError) as error:
        raise LoadError(f"not valid YAML: {_one_line(error)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def load_yaml(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A single YAML value (e.g. the text of a --set option); LoadError as for documents."""
    documents = load_yaml_documents(text, limits)
    return documents[0] if documents else None


# ---------------------------------------------------------------------------- JSON
def load_json(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A JSON document; LoadError with the line and column of a syntax error, or the path of a value that
    is nested too deeply, too long or too large."""
    check_size(text, "the file", limits)

    def number(text_: str, kind: type[int] | type[float]) -> int | float:
        problem = too_many_digits(text_, limits)
        if problem:
            raise _TooLong(problem, text_)
        return kind(text_)

    try:
        data = json.loads(text, parse_int=lambda t: number(t, int), parse_float=lambda t: number(t, float),
                          parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise LoadError(f"not valid JSON: line {error.lineno}, column {error.colno}: "
                        f"{_json_problem(error.msg)}.") from None
    except _TooLong as error:
        raise LoadError(f"{_json_where(text, error.text)}{error}") from None
    except RecursionError:
        raise LoadError(f"nested too deeply: more than {limits.max_depth} levels") from None
    problems = spec_problems(data, "", limits)
    if problems:
        raise LoadError(f"{problems[0].path.lstrip('.') or 'the document'}: {problems[0].message}")
    return data


class _TooLong(ValueError):
    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


def _json_where(text: str, number: str) -> str:
    index = text.find(number)
    if index < 0:
        return ""
    line, column = text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)
    return f"line {line}, column {column}: "


def _constant(name: str) -> float:
    raise LoadError(f"not valid JSON: {name} is not a JSON number")


# json's messages, as sentences that say what to fix.
JSON_PROBLEMS = {
    "Expecting ',' delimiter": "a comma is missing between two items (expected ',')",
    "Expecting ':' delimiter": "a colon is missing after a key (expected ':')",
    "Expecting property name enclosed in double quotes": "a key must be a string in double quotes; a comma "
                                                         "before a closing brace is not allowed either",
    "Expecting value": "a value is missing here (after a trailing comma, or where a quote is not a double quote)",
    "Invalid control character at": "a string holds a raw tab or line break; write it as \\t or \\n",
    "Unterminated string starting at": "a string starts here and is never closed with a double quote",
    "Extra data": "the JSON document ended before this point; remove what follows, or wrap both in a list",
    "Invalid \\escape": "a backslash starts an escape JSON does not know; write a backslash as \\\\",
}


def _json_problem(message: str) -> str:
    """The json module's terse message as a sentence a user can act on."""
    return JSON_PROBLEMS.get(message, message[:1].lower() + message[1:])
