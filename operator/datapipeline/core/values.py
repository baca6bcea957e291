"""Parameter values: what a value must be, and which values a PipelineRun may set.

One module owns the rule, so ``validate``, the admission webhook, the CLI and the operator refuse
exactly the same values with exactly the same message. A run's ``spec.values`` come from whoever may
create a PipelineRun, often a less trusted user than the Pipeline's author, so a run may set only
parameters the author marked ``overridable``, never a masked one, and every value must pass the
parameter's type, ``allowedValues`` and ``pattern``.

Patterns are RE2 (linear time, no backtracking): a hostile pattern or value cannot stall the operator.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from datapipeline.core.limits import DEFAULT_LIMITS
from datapipeline.core.problems import Problem

MAX_VALUE_LENGTH = DEFAULT_LIMITS.max_parameter_value_length
MAX_ARRAY_ITEMS = DEFAULT_LIMITS.max_array_items
MAX_PATTERN_LENGTH = DEFAULT_LIMITS.max_pattern_length

RunValues = dict[str, str | list[str]]


class PatternError(ValueError):
    pass


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    import re2  # google-re2: linear-time matching

    options = re2.Options()
    options.log_errors = False  # the message goes to the user, not to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        detail = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise PatternError(detail) from None


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable RE2 expression, or None."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH}"
    try:
        _compiled(pattern)
    except PatternError as error:
        return f"is not a valid RE2 regular expression: {error}"
    return None


def value_problem(ptype: str, allowed: Sequence[str], value: str, pattern: str | None = None) -> str | None:
    """Why ``value`` is not acceptable for a parameter of this type, allowedValues and pattern, or None."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"is {len(value)} characters long; a parameter value has at most {MAX_VALUE_LENGTH}"
    if allowed and value not in allowed:
        return f"{_quoted(value)} is not allowed; one of {', '.join(allowed)}"
    if ptype == "Integer" and not re.fullmatch(r"[+-]?\d{1,18}", value):
        return f"{_quoted(value)} is not an Integer (at most 18 digits)"
    if ptype == "Double" and not _is_double(value):
        return f"{_quoted(value)} is not a Double"
    if ptype == "AWS::S3::ObjectKey" and (problem := _s3_key_problem(value)):
        return f'{_quoted(value)} is not an S3 key: {problem}; write it like "s3://bucket/key" or "key"'
    if pattern is not None and pattern_problem(pattern) is None and _compiled(pattern).fullmatch(value) is None:
        return f"{_quoted(value)} does not match the parameter's pattern {pattern}"
    return None


def run_values(definition: Any, raw: Any, path: str = "spec.values") -> tuple[RunValues, list[Problem]]:
    """A PipelineRun's ``spec.values`` checked against the definition's parameters: (values, problems).

    ``definition`` is a :class:`~datapipeline.core.model.PipelineDefinition` (typed loosely to keep this
    module below the model in the import graph).
    """
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [Problem(path, "must map parameter ids to values")]
    parameters = definition.parameters
    values: RunValues = {}
    problems: list[Problem] = []
    for raw_key, value in raw.items():
        key = str(raw_key).lstrip("*")
        where = f"{path}.{raw_key}"
        param = parameters.get(key)
        problem = _override_problem(param, key, parameters)
        if problem is None:
            items, problem = _items(param, value)
            if problem is None:
                problem = next((p for p in (value_problem(param.type, param.allowed_values, item, param.pattern)
                                            for item in items) if p), None)
                values[key] = items if param.is_array else items[0]
        if problem is not None:
            problems.append(Problem(where, problem))
    return ({}, problems) if problems else (values, [])


def _override_problem(param: Any, key: str, parameters: Mapping[str, Any]) -> str | None:
    if param is None:
        known = ", ".join(sorted(parameters)) or "none"
        return f'no parameter "{key}" is defined (parameters: {known})'
    if param.masked:
        return f'parameter "{key}" is masked: its value comes only from its Secret, never from a run'
    if not param.overridable:
        return (f'parameter "{key}" cannot be set by a run; the Pipeline\'s author allows it with '
                "overridable: true")
    return None


def _items(param: Any, value: Any) -> tuple[list[str], str | None]:
    if isinstance(value, list):
        if not param.is_array:
            return [], f'parameter "{param.id}" is not an array (isArray: false), so its value must be a single string'
        if len(value) > MAX_ARRAY_ITEMS:
            return [], f"has {len(value)} values; at most {MAX_ARRAY_ITEMS}"
        if not all(_scalar(v) for v in value):
            return [], "must be a list of strings"
        return [_text(v) for v in value], None
    if not _scalar(value):
        return [], "must be a string (or a list of strings for an isArray parameter)"
    return [_text(value)], None


def _s3_key_problem(value: str) -> str | None:
    """AWS takes a full URI or a plain key (the guide's own templates use both)."""
    if not value:
        return "it is empty"
    if value.startswith("s3://") and not re.fullmatch(r"s3://[^/\s]+(/.*)?", value, flags=re.S):
        return "a bucket name has no spaces" if " " in value.split("/")[2] else "the bucket name is missing"
    return None


def _scalar(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() <= 63  # larger integers are not a parameter value (nor printable past 4300 digits)
    return isinstance(value, str | float)


def _text(value: str | int | float) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def _is_double(value: str) -> bool:
    if len(value) > 64:
        return False
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _quoted(value: str) -> str:
    return '"' + (value if len(value) <= 80 else value[:77] + "...") + '"'
