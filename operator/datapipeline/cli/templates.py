"""`datapipeline templates` and `datapipeline new TEMPLATE --set k=v`: ready-made pipelines (AWS console templates)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import Any

import yaml

from datapipeline.core.loader import LoadError, load_yaml
from datapipeline.core.problems import did_you_mean

PACKAGE = "datapipeline.templates"


def template_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(PACKAGE).iterdir()
                  if p.name.endswith(".yaml"))


def template_text(name: str) -> str:
    return resources.files(PACKAGE).joinpath(f"{name}.yaml").read_text()


def _summary(text: str) -> str:
    first = next((line for line in text.splitlines() if line.startswith("# ")), "# ")
    return first[2:]


def _header(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))


def apply_settings(doc: dict[str, Any], settings: list[str]) -> None:
    """name=X sets metadata.name, namespace=X metadata.namespace, myX=V a parameter value,
    and a dotted path (spec.aws.s3EndpointUrl=V) any field."""
    spec = doc.setdefault("spec", {})
    params = {p.get("id") for p in spec.get("parameters") or []}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise ValueError(f'--set "{setting}": write it as name=value')
        if key in ("name", "namespace"):
            doc.setdefault("metadata", {})[key] = value
        elif key.startswith("my"):
            if key not in params:
                raise ValueError(f'--set {key}: the template has no parameter "{key}"{did_you_mean(key, params)}')
            spec.setdefault("values", {})[key] = value
        elif "." in key:
            target = doc
            *parents, leaf = key.split(".")
            for part in parents:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise ValueError(f"--set {key}: {part} is not an object")
            target[leaf] = _scalar(key, value) if value in ("true", "false") or value.isdigit() else value
        else:
            raise ValueError(f'--set {key}: use name, namespace, a parameter (my...) or a dotted path such as '
                             "spec.activated")


def _scalar(key: str, value: str) -> Any:
    """true, false or a whole number, read as YAML reads them (through the bounded loader)."""
    try:
        return load_yaml(value)
    except LoadError as error:
        raise ValueError(f"--set {key}: {error}") from None


def cmd_templates(args: argparse.Namespace) -> int:
    for name in template_names():
        print(f"{name:28} {_summary(template_text(name))}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    names = template_names()
    if args.template not in names:
        print(f'error: no template "{args.template}"{did_you_mean(args.template, names)}; '
              "`datapipeline templates` lists them", file=sys.stderr)
        return 1
    text = template_text(args.template)
    doc = load_yaml(text)
    try:
        apply_settings(doc, args.set or [])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(_header(text) + yaml.safe_dump(doc, sort_keys=False, width=120))
    return 0


def add_parser(subparsers: Any) -> None:
    listing = subparsers.add_parser("templates", help="list the ready-made pipeline templates")
    listing.set_defaults(func=cmd_templates)
    new = subparsers.add_parser("new", help="print a pipeline manifest from a template",
                                description="Print a filled Pipeline manifest from a template.")
    new.add_argument("template", help="template name (see `datapipeline templates`)")
    new.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="name=, namespace=, a parameter (myX=) or a dotted field path; repeatable")
    new.set_defaults(func=cmd_new)
