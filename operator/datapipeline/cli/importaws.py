"""`datapipeline import-aws FILE`: print a Pipeline manifest for an AWS Data Pipeline definition."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from datapipeline.awsimport import forms
from datapipeline.awsimport.convert import ImportError_, convert
from datapipeline.core.loader import LoadError, load_json


def _read_json(path: Path, what: str) -> Any:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as error:
        raise ImportError_(f"{path}: cannot read {what}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ImportError_(f"{path}: {what} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        return load_json(text)
    except LoadError as error:
        raise ImportError_(f"{path}: {what}: {error}") from None


def _values(args: argparse.Namespace) -> dict[str, Any]:
    """--values FILE ({"values": {...}}, or an API-form parameterValues list) then --parameter-value id=value."""
    values: dict[str, Any] = {}
    if args.values:
        loaded = _read_json(args.values, "the values file")
        raw = loaded.get("values", loaded.get("parameterValues", loaded)) if isinstance(loaded, dict) else loaded
        try:
            values = forms.parameter_values(raw)
        except forms.FormError:
            raise ImportError_(f'{args.values}: the values file must be a JSON object like {{"values": '
                               '{"myParameter": "value"}}') from None
    given: dict[str, list[str]] = {}
    for item in args.parameter_value or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ImportError_(f'--parameter-value "{item}": write it as myParameter=value')
        given.setdefault(key, []).append(value)
    return {**values, **{k: v[0] if len(v) == 1 else v for k, v in given.items()}}


def _parameters(args: argparse.Namespace) -> list[Any] | None:
    """--parameters FILE: {"parameters": [...]} (CLI form) or {"parameterObjects": [...]} (API form)."""
    if not args.parameters:
        return None
    loaded = _read_json(args.parameters, "the parameters file")
    raw = loaded.get("parameters", loaded.get("parameterObjects")) if isinstance(loaded, dict) else loaded
    if not isinstance(raw, list):
        raise ImportError_(f'{args.parameters}: the parameters file must be a JSON object like {{"parameters": '
                           '[{"id": "myParameter", "type": "String"}]}')
    return raw


def run(args: argparse.Namespace) -> int:
    try:
        definition = _read_json(args.file, "the definition")
        name = args.name or (args.file.stem if str(args.file) != "-" else "imported")
        result = convert(definition, name, _values(args), _parameters(args))
    except ImportError_ as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug must not become a traceback
        print(f"error: internal error while converting ({type(error).__name__}: {error}); please report it",
              file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    documents = [*result.secrets, result.manifest]
    sys.stdout.write(yaml.safe_dump_all(documents, sort_keys=False, width=120))
    return 0


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "import-aws", help="convert an AWS Data Pipeline definition (JSON) into a Pipeline manifest",
        description="Reads the JSON of put-pipeline-definition (objects, parameters, values) and prints an "
                    "equivalent Pipeline manifest. What has no equivalent is a warning on stderr.")
    parser.add_argument("file", type=Path, help="the AWS definition (JSON; - for standard input)")
    parser.add_argument("--values", "--parameter-values-uri", type=Path, metavar="FILE",
                        help="a JSON file of parameter values ({\"values\": {...}}), as aws datapipeline "
                             "put-pipeline-definition --parameter-values-uri takes")
    parser.add_argument("--parameters", "--parameter-objects", type=Path, metavar="FILE",
                        help="a JSON file of parameter objects ({\"parameters\": [...]}), as "
                             "--parameter-objects takes; they replace the definition's parameters of the same id")
    parser.add_argument("--parameter-value", "--parameter-values", action="append", metavar="ID=VALUE",
                        help="one parameter value (repeat the option; an id given twice is a list)")
    parser.add_argument("--name", help="metadata.name of the Pipeline (default: the file name)")
    parser.set_defaults(func=run)
