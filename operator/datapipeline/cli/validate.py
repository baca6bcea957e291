"""`datapipeline validate FILE...`: check manifests offline, every problem with its field path."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from datapipeline.core.definition import API_VERSION, parse_manifest
from datapipeline.core.problems import DefinitionError

RUN_FIELDS = ("pipelineRef", "scheduledStartTime", "scheduledEndTime", "trigger", "values", "cancel", "rerun",
              "markFinished")


def load_documents(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (index, document) for each YAML document; raise ValueError with the line on a syntax error."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read: {error.strerror}") from None
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"not valid YAML: {where}{getattr(error, 'problem', None) or error}") from None
    for index, doc in enumerate(docs):
        if doc is not None:
            yield index, doc


def check_document(doc: Any) -> list[str]:
    """Problems of one document, as 'path: message' lines; [] when it is fine or not ours."""
    if not isinstance(doc, Mapping):
        return ["document: must be a mapping (a Kubernetes object)"]
    kind = doc.get("kind")
    if str(doc.get("apiVersion", "")).split("/")[0] != "datapipeline.io":
        return []  # Secrets, ConfigMaps and the like travel alongside pipelines
    if kind == "Pipeline":
        try:
            parse_manifest(doc)
        except DefinitionError as error:
            return [str(p) for p in error.problems]
        return []
    if kind == "PipelineRun":
        return _check_run(doc)
    return [f'kind: unknown kind "{kind}" in {API_VERSION}; expected Pipeline or PipelineRun']


def _check_run(doc: Mapping[str, Any]) -> list[str]:
    problems = []
    if doc.get("apiVersion") != API_VERSION:
        problems.append(f'apiVersion: must be "{API_VERSION}"')
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        return [*problems, "spec: is required and must be an object"]
    for key in spec:
        if key not in RUN_FIELDS:
            problems.append(f'spec.{key}: unknown field "{key}"')
    ref = spec.get("pipelineRef")
    if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
        problems.append("spec.pipelineRef.name: is required: the Pipeline to run")
    return problems


def describe(doc: Any) -> str:
    if isinstance(doc, Mapping):
        name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc.get("metadata"), Mapping) else "?"
        return f"{doc.get('kind', '?')}/{name}"
    return "?"


def validate_files(paths: list[Path], out: TextIO, err: TextIO) -> int:
    failed = 0
    for path in paths:
        try:
            documents = list(load_documents(path))
        except ValueError as error:
            print(f"{path}: {error}", file=err)
            failed += 1
            continue
        for index, doc in documents:
            problems = check_document(doc)
            label = f"{path}" + (f"[{index}]" if len(documents) > 1 else "") + f" {describe(doc)}"
            if problems:
                failed += 1
                for problem in problems:
                    print(f"{label}: {problem}", file=err)
            elif isinstance(doc, Mapping) and str(doc.get("apiVersion", "")).startswith("datapipeline.io"):
                print(f"{label}: valid", file=out)
    return 1 if failed else 0


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate", help="check Pipeline and PipelineRun manifests offline",
        description="Check manifests offline. Prints each problem with its field path; exits 1 if any.")
    parser.add_argument("files", nargs="+", type=Path, help="YAML files (- for standard input)")
    parser.set_defaults(func=lambda args: validate_files(args.files, sys.stdout, sys.stderr))
