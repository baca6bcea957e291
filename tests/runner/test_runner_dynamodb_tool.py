"""``python3 -m datapipeline.runner.tools.dynamodb`` against moto, alone and inside the two templates."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from fixtures.servers import MotoServer, S3Server
from runner_helpers import Runner, resolve, template

pytestmark = pytest.mark.servers
TOOL = [sys.executable, "-m", "datapipeline.runner.tools.dynamodb"]


def new_table(moto: MotoServer, name: str | None = None) -> str:
    name = name or "t-" + uuid.uuid4().hex[:8]
    moto.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    return name


def item(i: int) -> dict[str, Any]:
    return {"pk": {"S": f"user-{i % 7}"}, "sk": {"N": str(i)}, "name": {"S": f"näme {i}"},
            "blob": {"B": bytes([i % 256, 0, 255])}, "tags": {"SS": ["a", f"t{i}"]},
            "nested": {"M": {"l": {"L": [{"N": "1.5"}, {"NULL": True}, {"BOOL": False}]},
                             "bs": {"BS": [b"\x00\x01", bytes([i % 256])]}}}}


def fill(moto: MotoServer, table: str, n: int) -> list[dict[str, Any]]:
    ddb = moto.client("dynamodb")
    items = [item(i) for i in range(n)]
    for i in range(0, n, 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": it}} for it in items[i:i + 25]]})
    return items


def scan(moto: MotoServer, table: str) -> list[dict[str, Any]]:
    pages = moto.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return sorted((it for page in pages for it in page["Items"]), key=lambda it: int(it["sk"]["N"]))


def tool(moto: MotoServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(moto.env(), AWS_ENDPOINT_URL_DYNAMODB=moto.endpoint, AWS_DEFAULT_REGION=moto.region,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run([*TOOL, *args], env=env, capture_output=True, text=True, timeout=120)


def test_export_and_import_round_trip(moto: MotoServer, tmp_path: Path) -> None:
    source, target = new_table(moto), new_table(moto)
    items = fill(moto, source, 60)
    out = tmp_path / "export" / "items.json"
    # A page size of 7 makes the scan take nine pages.
    done = tool(moto, "export", source, str(out), "--page-size", "7")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"exported 60 items from table {source} to {out}"
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 60
    first = json.loads(lines[0])
    assert set(first) == {"pk", "sk", "name", "blob", "tags", "nested"}
    assert base64.b64decode(first["blob"]["B"]) == bytes([int(first["sk"]["N"]) % 256, 0, 255])
    done = tool(moto, "import", str(out.parent), target)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"imported 60 items from 1 file(s) into table {target}"
    assert scan(moto, target) == scan(moto, source)
    assert sorted(int(it["sk"]["N"]) for it in scan(moto, target)) == [int(it["sk"]["N"]) for it in items]


def test_import_gzip_and_dynamodb_s3_export_lines(moto: MotoServer, tmp_path: Path) -> None:
    import gzip

    table = new_table(moto)
    with gzip.open(tmp_path / "part-1.json.gz", "wt") as f:
        f.write('{"Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "Item": {"S": "x"}}}\n\n')
    (tmp_path / "part-2.json").write_text('{"pk": {"S": "a"}, "sk": {"N": "2"}, "Item": {"M": {}}}\n'
                                          '{"pk": {"S": "a"}, "sk": {"N": "2"}, "v": {"N": "3"}}\n')
    done = tool(moto, "import", str(tmp_path), table)
    assert done.returncode == 0, done.stderr
    assert scan(moto, table) == [{"pk": {"S": "a"}, "sk": {"N": "1"}, "Item": {"S": "x"}},
                                 {"pk": {"S": "a"}, "sk": {"N": "2"}, "v": {"N": "3"}}]  # the later item wins


def test_errors_are_one_clear_line(moto: MotoServer, tmp_path: Path) -> None:
    done = tool(moto, "export", "no-such-table", str(tmp_path / "x.json"))
    assert done.returncode == 1
    assert done.stderr.startswith("dynamodb export no-such-table: ResourceNotFoundException: "), done.stderr
    table = new_table(moto)
    bad = tmp_path / "bad.json"
    bad.write_text('{"pk": {"S": "a"}, "sk": {"N": "1"}}\n{"pk": "a"\n')
    done = tool(moto, "import", str(bad), table)
    assert (done.returncode, done.stderr) == (1, f"dynamodb import {table}: bad.json line 2: not JSON "
                                                 "(Expecting ',' delimiter)\n")
    bad.write_text('{"pk": {"S": "a"}}\n')
    done = tool(moto, "import", str(bad), table)
    assert done.stderr == f"dynamodb import {table}: bad.json line 1: the item has no sk (the key of table {table})\n"
    done = tool(moto, "import", str(tmp_path / "missing"), table)
    assert done.stderr == f"dynamodb import {table}: {tmp_path / 'missing'}: no such file or directory\n"
    assert "Traceback" not in done.stderr


def test_the_templates_export_and_import_through_the_runner(runner: Runner, moto: MotoServer, minio: S3Server,
                                                           tmp_path: Path) -> None:
    """dynamodb-export then dynamodb-import, resolved as the operator does; endpoints reach the command via env."""
    source, restored = new_table(moto), new_table(moto)
    fill(moto, source, 40)
    bucket = "exports-" + uuid.uuid4().hex[:8]
    minio.client().create_bucket(Bucket=bucket)
    aws = {"region": moto.region, "s3EndpointUrl": minio.endpoint, "s3PathStyle": True,
           "dynamodbEndpointUrl": moto.endpoint}
    env = minio.env()  # moto takes any keys; MinIO's serve both

    spec = template("dynamodb-export")
    spec["aws"] = aws
    values = {"myDDBTableName": source, "myOutputS3Loc": f"s3://{bucket}/dynamodb"}
    check = resolve(spec, "precondition", "table-exists", "export-table", values=values)
    assert runner(json.loads(check.task.to_json()), env).code == 0
    export = resolve(spec, "activity", "export-table", values=values)
    run = runner(json.loads(export.task.to_json()), env)
    assert run.code == 0, run.output
    key = "dynamodb/2026-11-21-10-00-00/items.json"
    assert run.result.output_uris == (f"s3://{bucket}/{key}",)
    assert "input 1 'table' is a DynamoDBDataNode: not staged" in run.stdout
    assert f"stdout: exported 40 items from table {source}" in run.stdout
    body = minio.client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert len(body.splitlines()) == 40

    spec = template("dynamodb-import")
    spec["aws"] = aws
    values = {"myInputS3Loc": f"s3://{bucket}/dynamodb/2026-11-21-10-00-00/", "myDDBTableName": restored}
    imported = resolve(spec, "activity", "import-items", values=values)
    run = runner(json.loads(imported.task.to_json()), env)
    assert run.code == 0, run.output
    assert f"stdout: imported 40 items from 1 file(s) into table {restored}" in run.stdout
    assert scan(moto, restored) == scan(moto, source)


def test_the_runner_passes_aws_settings_to_commands(runner: Runner, moto: MotoServer) -> None:
    spec = {"version": 1, "kind": "activity", "type": "ShellCommandActivity", "name": "Env", "pipeline": "p",
            "run": "r", "attempt": 1, "fields": {"command": "env | grep -E '^AWS_(REGION|DEFAULT_REGION|ENDPOINT)' "
                                                             "| sort; cat \"$AWS_CONFIG_FILE\""},
            "aws": {"region": "eu-west-3", "s3_endpoint_url": "http://s3.test:9000", "s3_path_style": True,
                    "dynamodb_endpoint_url": moto.endpoint, "sns_endpoint_url": "http://sns.test"}}
    runner.env = {"AWS_CONFIG_FILE": ""}  # as in a pod: none set
    run = runner(spec)
    assert run.code == 0, run.output
    shown = [line.split("stdout: ", 1)[1] for line in run.stdout.splitlines() if "shell: stdout: " in line]
    assert shown == ["AWS_DEFAULT_REGION=eu-west-3", f"AWS_ENDPOINT_URL_DYNAMODB={moto.endpoint}",
                     "AWS_ENDPOINT_URL_S3=http://s3.test:9000", "AWS_ENDPOINT_URL_SNS=http://sns.test",
                     "AWS_REGION=eu-west-3", "[default]", "s3 =", "    addressing_style = path"]
