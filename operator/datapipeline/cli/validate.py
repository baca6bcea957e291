"""`datapipeline validate FILE...`: check manifests offline, every problem with its field path."""

from __future__ import annotations

import argparse
import bisect
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from datapipeline.core.catalog import SECTIONS
from datapipeline.core.definition import API_VERSION, METADATA_NAME_PATTERN, parse_instant, parse_manifest
from datapipeline.core.limits import Limits
from datapipeline.core.loader import BoundedLoader, load_yaml_documents
from datapipeline.core.problems import DefinitionError, did_you_mean

GROUP = API_VERSION.split("/")[0]
KINDS = ("Pipeline", "PipelineRun")
RUN_FIELDS = ("pipelineRef", "scheduledStartTime", "scheduledEndTime", "trigger", "values", "cancel", "rerun",
              "markFinished")
RUN_TRIGGERS = ("Scheduled", "Manual", "Backfill", "OnDemand")
RERUN_FIELDS = ("id", "activities", "failedOnly", "downstream")
OBJECT_PATH = re.compile(r"spec\.(" + "|".join(SECTIONS) + r")\[(\d+)\]")


# The one loader (bounded: alias bombs, nesting, huge numbers); re-exported for the commands and tests.
ManifestLoader = BoundedLoader


def read_text(path: Path) -> str:
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"cannot read: not UTF-8 text ({error.reason} at byte {error.start})") from None


def load_documents(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (index, document) for each YAML document; raise ValueError with the line on a syntax error."""
    for index, doc in enumerate(load_yaml_documents(read_text(path))):
        if doc is not None:
            yield index, doc


def expression_comments(text: str) -> list[str]:
    """Expressions YAML silently drops: in `command: run #{x}` the " #" starts a comment.

    A ``#{`` outside every YAML token, after a value on the same line and not inside an earlier comment, is
    such a comment; the message says where and how to fix it.
    """
    spans: list[tuple[int, int]] = []
    try:
        for token in yaml.scan(text, Loader=ManifestLoader):
            if token.start_mark.index < token.end_mark.index:
                spans.append((token.start_mark.index, token.end_mark.index))
    except yaml.YAMLError:
        return []
    starts = [start for start, _ in spans]
    found = []
    for match in re.finditer(r"(?<=[ \t])#\{", text):
        pos = match.start()
        i = bisect.bisect_right(starts, pos) - 1
        if i < 0 or spans[i][1] > pos:
            continue  # inside a quoted or block scalar (or before any value)
        line_start = text.rfind("\n", 0, pos) + 1
        if spans[i][1] <= line_start or "#" in text[spans[i][1]:pos]:
            continue  # a comment line, or inside an earlier comment
        line, column = text.count("\n", 0, pos) + 1, pos - line_start + 1
        found.append(f'line {line}, column {column}: "#{{" after a space starts a YAML comment, so the rest of '
                     "the line is dropped; put the whole value in quotes")
    return found


def is_ours(doc: Any) -> bool:
    """Anything in our API group, or in a misspelling of it, or a Pipeline/PipelineRun without an apiVersion.

    Other groups' objects (Secrets, ConfigMaps, even Tekton's own kind: Pipeline) are not ours to check.
    """
    if not isinstance(doc, Mapping):
        return False
    api_version = doc.get("apiVersion")
    if not isinstance(api_version, str) or "/" not in api_version:
        return doc.get("kind") in KINDS
    group = api_version.split("/")[0]
    return group == GROUP or bool(did_you_mean(group, [GROUP]))


def check_document(doc: Any, limits: Limits | None = None) -> list[str]:
    """Problems of one document, as 'path: message' lines; [] when it is fine or not ours."""
    if not isinstance(doc, Mapping):
        return ["document: must be a mapping (a Kubernetes object)"]
    if not is_ours(doc):
        return []  # Secrets, ConfigMaps and the like travel alongside pipelines
    kind = doc.get("kind")
    if kind == "Pipeline":
        try:
            parse_manifest(doc, limits or cli_limits())
        except DefinitionError as error:
            return [named_path(doc, str(p)) for p in error.problems]
        return []
    if kind == "PipelineRun":
        return _check_run(doc)
    return [f'kind: unknown kind {_quoted(kind)} in {API_VERSION}; expected Pipeline or PipelineRun'
            f"{did_you_mean(str(kind), KINDS)}"]


def named_path(doc: Mapping[str, Any], problem: str) -> str:
    """``spec.activities[0] (Mute).command: ...``: the object's name (the AWS id) next to its index."""
    match = OBJECT_PATH.match(problem)
    spec = doc.get("spec")
    if match is None or not isinstance(spec, Mapping) or not isinstance(spec.get(match.group(1)), list):
        return problem
    items, index = spec[match.group(1)], int(match.group(2))
    name = items[index].get("name") if index < len(items) and isinstance(items[index], Mapping) else None
    if not isinstance(name, str) or not name or len(name) > 80:
        return problem
    return f"{problem[:match.end()]} ({name}){problem[match.end():]}"


def _quoted(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else "nothing" if value is None else repr(value)


def _check_run(doc: Mapping[str, Any]) -> list[str]:
    problems = []
    if doc.get("apiVersion") != API_VERSION:
        problems.append(f'apiVersion: must be "{API_VERSION}", not {_quoted(doc.get("apiVersion"))}')
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not (isinstance(metadata, Mapping) and (name or metadata.get("generateName"))):
        problems.append("metadata.name: is required (or metadata.generateName)")
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        return [*problems, "spec: is required and must be an object"]
    for key in spec:
        if key not in RUN_FIELDS:
            problems.append(f'spec.{key}: unknown field "{key}"{did_you_mean(str(key), RUN_FIELDS)}')
    ref = spec.get("pipelineRef")
    if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
        problems.append("spec.pipelineRef.name: is required: the Pipeline to run")
    elif not METADATA_NAME_PATTERN.match(ref["name"]):
        problems.append(f'spec.pipelineRef.name: "{ref["name"]}" is not a Pipeline name (lower case letters, '
                        "digits and '-')")
    for key in ("scheduledStartTime", "scheduledEndTime"):
        if key in spec:
            try:
                parse_instant(spec[key])
            except ValueError:
                problems.append(f'spec.{key}: {_quoted(spec[key])} is not a date-time; write it like '
                                '"2026-01-31T00:00:00Z"')
    if "trigger" in spec and spec["trigger"] not in RUN_TRIGGERS:
        problems.append(f"spec.trigger: must be one of {', '.join(RUN_TRIGGERS)}, not {_quoted(spec['trigger'])}")
    if "values" in spec and not isinstance(spec["values"], Mapping):
        problems.append("spec.values: must map parameter ids to values")
    if "cancel" in spec and not isinstance(spec["cancel"], bool):
        problems.append(f"spec.cancel: must be true or false, not {_quoted(spec['cancel'])}")
    marks = spec.get("markFinished")
    if marks is not None and not (isinstance(marks, list) and all(isinstance(m, str) for m in marks)):
        problems.append("spec.markFinished: must be a list of activity names")
    rerun = spec.get("rerun")
    if rerun is not None:
        if not isinstance(rerun, Mapping) or not isinstance(rerun.get("id"), str):
            problems.append("spec.rerun.id: is required: a request id (change it to rerun again)")
        else:
            for key in rerun:
                if key not in RERUN_FIELDS:
                    problems.append(f'spec.rerun.{key}: unknown field "{key}"{did_you_mean(str(key), RERUN_FIELDS)}')
    return problems


def describe(doc: Any) -> str:
    if isinstance(doc, Mapping):
        name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc.get("metadata"), Mapping) else "?"
        return f"{doc.get('kind', '?')}/{name}"
    return "?"


def cli_limits() -> Limits:
    """The limits the operator applies, as its administrator configured them (DATAPIPELINE_MIN_SCHEDULE_PERIOD)."""
    return Limits.from_environ(os.environ)


def validate_files(paths: list[Path], out: TextIO, err: TextIO) -> int:
    try:
        limits = cli_limits()
    except ValueError as error:
        print(f"error: {error}", file=err)
        return 1
    failed = 0
    for path in paths:
        try:
            text = read_text(path)
            documents = [(i, d) for i, d in enumerate(load_yaml_documents(text, limits)) if d is not None]
        except ValueError as error:
            print(f"{path}: {error}", file=err)
            failed += 1
            continue
        comments = expression_comments(text)
        for problem in comments:
            print(f"{path}: {problem}", file=err)
        failed += bool(comments)
        if not any(is_ours(doc) or not isinstance(doc, Mapping) for _, doc in documents):
            print(f"{path}: no Pipeline or PipelineRun in this file (apiVersion {API_VERSION})", file=err)
            failed += 1
            continue
        for index, doc in documents:
            try:
                problems = check_document(doc, limits)
            except Exception as error:  # a bug must not become a traceback
                problems = [f"internal error while checking ({type(error).__name__}: {error}); please report it"]
            label = f"{path}" + (f"[{index}]" if len(documents) > 1 else "") + f" {describe(doc)}"
            if problems:
                failed += 1
                for problem in problems:
                    print(f"{label}: {problem}", file=err)
            elif is_ours(doc) and not comments:
                for warning in _warnings(doc, limits):
                    print(f"{label}: warning: {warning}", file=err)
                print(f"{label}: valid", file=out)
    return 1 if failed else 0


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate", help="check Pipeline and PipelineRun manifests offline",
        description="Check manifests offline. Prints each problem with its field path; exits 1 if any.")
    parser.add_argument("files", nargs="+", type=Path, help="YAML files (- for standard input)")
    parser.set_defaults(func=lambda args: validate_files(args.files, sys.stdout, sys.stderr))


def _warnings(doc: Mapping[str, Any], limits: Limits) -> tuple[str, ...]:
    """What a valid Pipeline accepts but does not act on (e.g. a resource's schedule)."""
    if doc.get("kind") != "Pipeline":
        return ()
    return parse_manifest(doc, limits).warnings
