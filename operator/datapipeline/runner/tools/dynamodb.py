"""Export a DynamoDB table to a file and import such files back (templates dynamodb-export/-import).

    python3 -m datapipeline.runner.tools.dynamodb export TABLE FILE
    python3 -m datapipeline.runner.tools.dynamodb import DIR_OR_FILE TABLE

The file holds one item per line in DynamoDB JSON, the low-level API's own shape
(``{"id": {"S": "1"}, "n": {"N": "2"}, "b": {"B": "<base64>"}}``). Export scans the
table page by page and writes each page as it arrives; import reads line by line
(``.gz`` files are decompressed; a directory means every file in it, in name order)
and writes in ``BatchWriteItem`` batches of 25, retrying unprocessed items. Neither
holds more than a page or a batch in memory. Lines of DynamoDB's own S3 export
(``{"Item": {...}}``) are accepted too.

Endpoint, region and credentials come from the environment as for any boto3
program: ``AWS_ENDPOINT_URL_DYNAMODB`` (or ``AWS_ENDPOINT_URL``), ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``. In a
ShellCommandActivity the runner sets the first two from the pipeline's ``aws``
settings (``dynamodbEndpointUrl``, ``region``); ``--endpoint-url`` and ``--region``
override them. Errors are one line on stderr and exit status 1 (2 for usage).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

BATCH = 25  # BatchWriteItem's limit
PROGRESS_EVERY = 10000
TYPES = frozenset(("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"))


class ToolError(Exception):
    pass


def _client(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.config import Config

    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(region_name=region, connect_timeout=5, read_timeout=60,
                    retries={"max_attempts": int(os.environ.get("DATAPIPELINE_AWS_MAX_ATTEMPTS", "4")),
                             "mode": "standard"})
    return boto3.session.Session().client("dynamodb", endpoint_url=args.endpoint_url or None, config=config)


# ------------------------------------------------------------------------------------- DynamoDB JSON
def encode(value: Any) -> Any:
    """Binary values (B, BS) as base64 text; everything else is JSON already."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    return value


def _decode_value(typed: Any, where: str) -> Any:
    if not isinstance(typed, dict) or len(typed) != 1 or next(iter(typed)) not in TYPES:
        raise ToolError(f"{where}: {json.dumps(typed)[:80]} is not a DynamoDB JSON attribute value")
    kind, value = next(iter(typed.items()))
    if kind == "B":
        return {"B": base64.b64decode(value)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in value]}
    if kind == "M":
        return {"M": {k: _decode_value(v, f"{where}.{k}") for k, v in value.items()}}
    if kind == "L":
        return {"L": [_decode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    return typed


def decode_item(line: str, where: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as e:
        raise ToolError(f"{where}: not JSON ({e.msg})") from None
    if not isinstance(item, dict) or not item:
        raise ToolError(f"{where}: an item must be a non-empty JSON object")
    wrapped = item.get("Item")
    if len(item) == 1 and isinstance(wrapped, dict) and not (len(wrapped) == 1 and next(iter(wrapped)) in TYPES):
        item = wrapped  # DynamoDB's S3 export: {"Item": {...}}
    return {name: _decode_value(value, f"{where}: attribute {name}") for name, value in item.items()}


# ------------------------------------------------------------------------------------- export
def export(args: argparse.Namespace) -> int:
    ddb = _client(args)
    count = 0
    target = args.file
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    opener = gzip.open if target.endswith(".gz") else open
    with opener(target, "wt", encoding="utf-8") as out:
        paging = {"PageSize": args.page_size} if args.page_size else {}
        for page in ddb.get_paginator("scan").paginate(TableName=args.table, ConsistentRead=args.consistent,
                                                       PaginationConfig=paging):
            for item in page.get("Items", ()):
                out.write(json.dumps(encode(item), separators=(",", ":"), sort_keys=True))
                out.write("\n")
                count += 1
                if count % PROGRESS_EVERY == 0:
                    print(f"exported {count} items", flush=True)
    print(f"exported {count} items from table {args.table} to {target}", flush=True)
    return 0


# ------------------------------------------------------------------------------------- import
def _files(path: str) -> list[str]:
    if os.path.isdir(path):
        found = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                       if not name.startswith("."))
        return found
    if os.path.isfile(path):
        return [path]
    raise ToolError(f"{path}: no such file or directory")


def _lines(paths: Sequence[str]) -> Iterator[tuple[str, str]]:
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        f: IO[str]
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield f"{os.path.basename(path)} line {number}", line


def write_batch(ddb: Any, table: str, batch: list[dict[str, Any]]) -> None:
    """One BatchWriteItem of at most BATCH items, its unprocessed items retried with backoff."""
    requests = [{"PutRequest": {"Item": item}} for item in batch]
    delay = 0.05
    for _ in range(12):
        left = ddb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {}).get(table)
        if not left:
            return
        requests = left
        time.sleep(delay)
        delay = min(delay * 2, 5)
    raise ToolError(f"table {table}: {len(requests)} items stayed unprocessed after 12 tries (throttled)")


def import_(args: argparse.Namespace) -> int:
    ddb = _client(args)
    keys = [k["AttributeName"] for k in ddb.describe_table(TableName=args.table)["Table"]["KeySchema"]]
    files = _files(args.source)
    batch: list[dict[str, Any]] = []
    in_batch: set[str] = set()
    count = 0
    for where, line in _lines(files):
        item = decode_item(line, where)
        missing = [k for k in keys if k not in item]
        if missing:
            raise ToolError(f"{where}: the item has no {', '.join(missing)} (the key of table {args.table})")
        key = json.dumps([encode(item[k]) for k in keys])
        if key in in_batch:  # one batch may not hold the same key twice; the later item wins
            write_batch(ddb, args.table, batch)
            count += len(batch)
            batch, in_batch = [], set()
        batch.append(item)
        in_batch.add(key)
        if len(batch) == BATCH:
            write_batch(ddb, args.table, batch)
            count += len(batch)
            batch, in_batch = [], set()
            if count % PROGRESS_EVERY < BATCH:
                print(f"imported {count} items", flush=True)
    if batch:
        write_batch(ddb, args.table, batch)
        count += len(batch)
    print(f"imported {count} items from {len(files)} file(s) into table {args.table}", flush=True)
    return 0


# ------------------------------------------------------------------------------------- command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m datapipeline.runner.tools.dynamodb",
                                description="Export a DynamoDB table to JSON lines, or import them.")
    p.add_argument("--endpoint-url", help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB or AWS's)")
    p.add_argument("--region", help="region (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1)")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="scan TABLE into FILE, one item per line (FILE.gz: gzip)")
    e.add_argument("table")
    e.add_argument("file")
    e.add_argument("--consistent", action="store_true", help="strongly consistent reads")
    e.add_argument("--page-size", type=int, help="items per Scan request (default: DynamoDB's 1 MB pages)")
    i = sub.add_parser("import", help="write the items of FILE (or of every file in DIR) into TABLE")
    i.add_argument("source", metavar="DIR_OR_FILE")
    i.add_argument("table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    what = f"dynamodb {args.command} {args.table}"
    try:
        return export(args) if args.command == "export" else import_(args)
    except ToolError as e:
        print(f"{what}: {e}", file=sys.stderr, flush=True)
    except ClientError as e:
        error = e.response.get("Error", {})
        print(f"{what}: {error.get('Code', 'Error')}: {error.get('Message') or e}", file=sys.stderr, flush=True)
    except BotoCoreError as e:
        print(f"{what}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    except OSError as e:
        print(f"{what}: {e.filename or ''}: {e.strerror or e}", file=sys.stderr, flush=True)
    except UnicodeDecodeError:
        print(f"{what}: the input is not UTF-8 text", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
