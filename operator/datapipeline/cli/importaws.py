"""`datapipeline import-aws FILE`: print a Pipeline manifest for an AWS Data Pipeline definition."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

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


def run(args: argparse.Namespace) -> int:
    try:
        definition = _read_json(args.file, "the definition")
        values: Any = {}
        if args.values:
            loaded = _read_json(args.values, "the values file")
            values = loaded.get("values", loaded) if isinstance(loaded, dict) else None
            if not isinstance(values, dict):
                raise ImportError_(f'{args.values}: the values file must be a JSON object like {{"values": '
                                   '{"myParameter": "value"}}')
        name = args.name or (args.file.stem if str(args.file) != "-" else "imported")
        result = convert(definition, name, values)
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
    parser.add_argument("--values", type=Path, help="a JSON file of parameter values ({\"values\": {...}})")
    parser.add_argument("--name", help="metadata.name of the Pipeline (default: the file name)")
    parser.set_defaults(func=run)
