"""The `datapipeline` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from datapipeline import __version__
from datapipeline.cli.errors import explain

# Subcommand modules, each with add_parser(subparsers) or add_subparsers(subparsers).
COMMAND_MODULES = (
    "datapipeline.cli.validate",
    "datapipeline.cli.importaws",
    "datapipeline.cli.render",
    "datapipeline.cli.templates",
    "datapipeline.cli.devcluster",
    "datapipeline.cli.ops",
    "datapipeline.cli.demo",
    "datapipeline.cli.console",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datapipeline",
        description="kube-datapipeline: AWS Data Pipeline's model on Kubernetes.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        register = getattr(module, "add_parser", None) or module.add_subparsers
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # every failure is one message naming the field or the cause
        for line in explain(error):
            print(f"error: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
