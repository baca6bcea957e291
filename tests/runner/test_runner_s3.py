"""CopyActivity, ShellCommandActivity staging, RedshiftCopyActivity and S3 preconditions on real MinIO."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import pytest
from fixtures.servers import S3Server, SqlServer, free_port
from runner_helpers import Runner, assert_failed, csv, s3_aws, s3_node, sql_node, task

pytestmark = pytest.mark.servers
PW_ENV = "DB_PASSWORD"


def put(minio: S3Server, bucket: str, key: str, data: bytes | str) -> None:
    minio.client().put_object(Bucket=bucket, Key=key, Body=data.encode() if isinstance(data, str) else data)


def get(minio: S3Server, bucket: str, key: str) -> bytes:
    body: bytes = minio.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def keys(minio: S3Server, bucket: str, prefix: str = "") -> list[str]:
    return [o["Key"] for o in minio.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def copy_task(minio: S3Server, src: dict[str, Any], dst: dict[str, Any]) -> dict[str, Any]:
    return task("activity", "CopyActivity", name="MyCopy", inputs=[src], outputs=[dst], aws=s3_aws(minio))


def pgdb(server: SqlServer) -> dict[str, Any]:
    return {"name": "Warehouse", "type": "JdbcDatabase", "connection_string": server.jdbc, "username": server.user,
            "password_env": PW_ENV}


# ------------------------------------------------------------------------------------------- S3 -> S3
def test_same_format_copy_is_server_side(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "in/a.csv", "1,a\n")
    put(minio, bucket, "in/sub/b.csv", "2,b\n")
    run = runner(copy_task(minio, s3_node("In", directoryPath=f"s3://{bucket}/in"),
                           s3_node("Out", directoryPath=f"s3://{bucket}/out/")), minio.env())
    assert run.code == 0, run.output
    assert sorted(keys(minio, bucket, "out/")) == ["out/a.csv", "out/sub/b.csv"]
    assert run.result.bytes == 8
    assert "server-side" in run.stdout


def test_csv_to_gzipped_tsv_file(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "in.csv", 'id,name\n1,"a, quoted\ttab"\n2,\n3,plain\n')
    src = s3_node("In", csv(headerRow="true"), filePath=f"s3://{bucket}/in.csv")
    dst = s3_node("Out", {"type": "TSV", "fields": {}}, filePath=f"s3://{bucket}/out.tsv.gz", compression="gzip")
    run = runner(copy_task(minio, src, dst), minio.env())
    assert run.code == 0, run.output
    assert gzip.decompress(get(minio, bucket, "out.tsv.gz")) == b"1\ta, quoted\\ttab\n2\t\\N\n3\tplain\n"
    assert (run.result.rows_read, run.result.rows_written) == (3, 3)
    assert run.result.output_uris == (f"s3://{bucket}/out.tsv.gz",)


def test_manifest_and_regex_to_custom(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "logs/1.log", "GET /a 200\nPOST /b 500\n")
    put(minio, bucket, "logs/2.log", "GET /c 404\n")
    put(minio, bucket, "m.json", json.dumps({"entries": [
        {"url": f"s3://{bucket}/logs/1.log", "mandatory": True}, {"url": f"s3://{bucket}/logs/2.log"},
        {"url": f"s3://{bucket}/logs/gone.log", "mandatory": False}]}))
    src = s3_node("Logs", {"type": "RegEx", "fields": {"inputRegEx": r"(\S+) (\S+) (\d+)"}},
                  manifestFilePath=f"s3://{bucket}/m.json")
    dst = s3_node("Out", {"type": "Custom", "fields": {"columnSeparator": "|"}}, filePath=f"s3://{bucket}/o.txt")
    run = runner(copy_task(minio, src, dst), minio.env())
    assert run.code == 0, run.output
    assert get(minio, bucket, "o.txt") == b"GET|/a|200\nPOST|/b|500\nGET|/c|404\n"


def test_regex_line_that_does_not_match(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "l.log", "GET /a 200\nnonsense\n")
    src = s3_node("Logs", {"type": "RegEx", "fields": {"inputRegEx": r"(\S+) (\S+) (\d+)"}},
                  filePath=f"s3://{bucket}/l.log")
    run = runner(copy_task(minio, src, s3_node("Out", filePath=f"s3://{bucket}/o.csv")), minio.env())
    assert_failed(run, "Format.MalformedRow", f"input 'Logs' (s3://{bucket}/l.log): line 2 does not match inputRegEx")
    assert keys(minio, bucket, "o.csv") == []


def test_missing_bucket(runner: Runner, minio: S3Server, bucket: str) -> None:
    run = runner(copy_task(minio, s3_node("In", csv(), filePath="s3://no-such-bucket-dp/x.csv"),
                           s3_node("Out", {"type": "TSV"}, filePath=f"s3://{bucket}/o")), minio.env())
    assert_failed(run, "S3.NoSuchBucket", "input 'In' (s3://no-such-bucket-dp/x.csv): bucket 'no-such-bucket-dp' "
                  "does not exist")


def test_missing_key(runner: Runner, minio: S3Server, bucket: str) -> None:
    run = runner(copy_task(minio, s3_node("In", filePath=f"s3://{bucket}/nope.csv"),
                           s3_node("Out", filePath=f"s3://{bucket}/o.csv")), minio.env())
    assert_failed(run, "S3.NoSuchKey", f"input 'In' (s3://{bucket}/nope.csv): object s3://{bucket}/nope.csv does not "
                  "exist")


def test_bad_credentials_and_secret_scan(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "a.csv", "1\n")
    spec = copy_task(minio, s3_node("In", csv(), filePath=f"s3://{bucket}/a.csv"),
                     s3_node("Out", {"type": "TSV"}, filePath=f"s3://{bucket}/b.tsv"))
    run = runner(spec, {"AWS_ACCESS_KEY_ID": "nobody-here", "AWS_SECRET_ACCESS_KEY": "wrong-secret-123456"})
    assert_failed(run, "S3.InvalidAccessKeyId", f"input 'In' (s3://{bucket}/a.csv): the S3 access key is not valid "
                  "(check the AWS_ACCESS_KEY_ID credentials)")
    assert "wrong-secret-123456" not in run.output
    run = runner(spec, {"AWS_ACCESS_KEY_ID": minio.access_key, "AWS_SECRET_ACCESS_KEY": "wrong-secret-123456"})
    assert_failed(run, "S3.SignatureDoesNotMatch")
    ok = runner(spec, minio.env())
    assert ok.code == 0 and minio.secret_key not in ok.output


def test_unreachable_endpoint(runner: Runner, minio: S3Server, bucket: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    spec = copy_task(minio, s3_node("In", filePath=f"s3://{bucket}/a.csv"), s3_node("Out", filePath="s3://x/b"))
    spec["aws"]["s3_endpoint_url"] = dead
    run = runner(spec, minio.env() | {"DATAPIPELINE_AWS_MAX_ATTEMPTS": "1"})
    assert_failed(run, "S3.EndpointUnreachable", f"input 'In' (s3://{bucket}/a.csv): cannot connect to the S3 "
                  f"endpoint {dead} (EndpointConnectionError)")


def test_bad_gzip(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "a.csv.gz", "1,2\n")
    src = s3_node("In", csv(), filePath=f"s3://{bucket}/a.csv.gz", compression="gzip")
    run = runner(copy_task(minio, src, s3_node("Out", {"type": "TSV"}, filePath=f"s3://{bucket}/o")), minio.env())
    assert_failed(run, "Format.Compression")
    assert run.result.error_message.startswith(f"input 'In' (s3://{bucket}/a.csv.gz): cannot decompress the data as "
                                               "gzip (")


# ------------------------------------------------------------------------------------------- S3 <-> SQL
@pytest.fixture(params=["postgres", "mariadb"])
def server(request: pytest.FixtureRequest) -> SqlServer:
    s: SqlServer = request.getfixturevalue(request.param)
    return s


def table(server: SqlServer, name: str) -> str:
    server.sql(f"DROP TABLE IF EXISTS {name}")
    server.sql(f"CREATE TABLE {name} (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2))")
    return name


def test_s3_gzip_csv_to_sql_and_back(runner: Runner, minio: S3Server, bucket: str, server: SqlServer) -> None:
    t = table(server, "loaded")
    lines = "".join(f"{i},name {i},{i}.25\n" for i in range(1, 3001))
    put(minio, bucket, "in/part-0.csv.gz", gzip.compress(lines.encode()))
    put(minio, bucket, "in/part-1.csv.gz", gzip.compress(b'3001,"with ""quotes"", comma",\n'))
    src = s3_node("In", csv("id INT", "name STRING", "amount"), directoryPath=f"s3://{bucket}/in/",
                  compression="gzip")
    node = sql_node("Table", pgdb(server), "SqlDataNode", table=t)
    run = runner(copy_task(minio, src, node), minio.env() | {PW_ENV: server.password})
    assert run.code == 0, run.output
    assert run.result.rows_written == 3001
    assert server.sql(f"SELECT name, amount FROM {t} WHERE id = 3001") == [('with "quotes", comma', None)]
    # and back out, as TSV with a header
    back = runner(copy_task(minio, sql_node("Table", pgdb(server), table=t, selectQuery=f"SELECT * FROM {t} "
                                            "WHERE id IN (1, 3001) ORDER BY id"),
                            s3_node("Out", {"type": "TSV", "fields": {"headerRow": "true"}},
                                    directoryPath=f"s3://{bucket}/out/")), minio.env() | {PW_ENV: server.password})
    assert back.code == 0, back.output
    assert get(minio, bucket, "out/part-00000.tsv") == b'id\tname\tamount\n1\tname 1\t1.25\n3001\twith "quotes", ' \
                                                       b'comma\t\\N\n'


def test_malformed_csv_row_rolls_back(runner: Runner, minio: S3Server, bucket: str, server: SqlServer) -> None:
    t = table(server, "bad1")
    server.sql(f"INSERT INTO {t} VALUES (0, 'existing', 1)")
    put(minio, bucket, "bad.csv", "".join(f"{i},n,1\n" for i in range(1, 2000)) + '2000,"unterminated,1\n')
    run = runner(copy_task(minio, s3_node("In", csv(), filePath=f"s3://{bucket}/bad.csv"),
                           sql_node("Out", pgdb(server), table=t)), minio.env() | {PW_ENV: server.password})
    assert_failed(run, "Format.MalformedRow", f"input 'In' (s3://{bucket}/bad.csv): line 2000 is not valid CSV: "
                  "unexpected end of data")
    assert server.sql(f"SELECT id FROM {t}") == [(0,)]


def test_wrong_column_count(runner: Runner, minio: S3Server, bucket: str, server: SqlServer) -> None:
    t = table(server, "bad2")
    put(minio, bucket, "short.csv", "1,a,1\n2,b\n")
    run = runner(copy_task(minio, s3_node("In", csv(), filePath=f"s3://{bucket}/short.csv"),
                           sql_node("Out", pgdb(server), table=t)), minio.env() | {PW_ENV: server.password})
    assert_failed(run, "Format.ColumnCount", f"input 'In' (s3://{bucket}/short.csv): line 2 has 2 columns, expected 3")
    assert server.sql(f"SELECT COUNT(*) FROM {t}") == [(0,)]


def test_rejected_value_names_the_record(runner: Runner, minio: S3Server, bucket: str, server: SqlServer) -> None:
    t = table(server, "bad3")
    put(minio, bucket, "a.csv", "1,a,1\n")
    put(minio, bucket, "b.csv", "2,b,2\n3,c,not-a-number\n")
    run = runner(copy_task(minio, s3_node("In", csv(), manifestFilePath=f"s3://{bucket}/m"),
                           sql_node("Out", pgdb(server), table=t)), minio.env() | {PW_ENV: server.password})
    assert_failed(run, "S3.NoSuchKey")  # the manifest itself is missing
    put(minio, bucket, "m", json.dumps({"entries": [{"url": f"s3://{bucket}/a.csv"}, {"url": f"s3://{bucket}/b.csv"}]}))
    run = runner(copy_task(minio, s3_node("In", csv(), manifestFilePath=f"s3://{bucket}/m"),
                           sql_node("Out", pgdb(server), table=t)), minio.env() | {PW_ENV: server.password})
    assert_failed(run, "SQL.BadRow")
    assert run.result.error_message.startswith(f"output 'Out' (table {t}): record 2 of s3://{bucket}/b.csv was "
                                               "rejected: "), run.output
    assert server.sql(f"SELECT COUNT(*) FROM {t}") == [(0,)]


def test_csv_load_reads_quoting_header_and_line_ends_alike(runner: Runner, minio: S3Server, bucket: str,
                                                             server: SqlServer) -> None:
    """PostgreSQL's fast path (the bytes straight into COPY) and MariaDB's per-row path load the same rows."""
    t = table(server, "fast1")
    put(minio, bucket, "in/0.csv.gz", gzip.compress(b'id,name,amount\r\n1,"a, ""b""",1.5\r\n2,"",\r\n3,"two\r\nlines",'
                                                    b'3'))  # no line end at the end of the object
    put(minio, bucket, "in/1.csv.gz", gzip.compress(b'id,name,amount\r\n4,plain,4\r\n'))
    src = s3_node("In", csv(headerRow="true"), directoryPath=f"s3://{bucket}/in/", compression="gzip")
    run = runner(copy_task(minio, src, sql_node("Out", pgdb(server), table=t)), minio.env() | {PW_ENV: server.password})
    assert run.code == 0, run.output
    assert (run.result.rows_read, run.result.rows_written) == (4, 4)
    assert "row by row" not in run.stdout
    assert [tuple(r) for r in server.sql(f"SELECT id, name, amount FROM {t} ORDER BY id")] == [
        (1, 'a, "b"', Decimal("1.50")), (2, None, None), (3, "two\r\nlines", Decimal("3.00")),
        (4, "plain", Decimal("4.00"))]


def test_csv_postgresql_may_read_otherwise_loads_row_by_row(runner: Runner, minio: S3Server, bucket: str,
                                                            postgres: SqlServer) -> None:
    t = table(postgres, "fast2")
    # A quote inside an unquoted field (literal to the csv module) after a few MiB already sent to COPY.
    rows = "".join(f'{i},"name {i}",{i}\n' for i in range(3, 200_000))
    put(minio, bucket, "q.csv", f'1,"ok",1\n{rows}2,5" tall,2\n')
    run = runner(copy_task(minio, s3_node("In", csv(), filePath=f"s3://{bucket}/q.csv"),
                           sql_node("Out", pgdb(postgres), table=t)), minio.env() | {PW_ENV: postgres.password})
    assert run.code == 0, run.output
    assert "loading row by row" in run.stdout
    assert (run.result.rows_read, run.result.rows_written) == (199_999, 199_999)
    assert postgres.sql(f"SELECT name FROM {t} WHERE id < 4 ORDER BY id") == [("ok",), ('5" tall',), ("name 3",)]
    assert postgres.sql(f"SELECT COUNT(*) FROM {t}") == [(199_999,)]
    postgres.sql(f"DELETE FROM {t} WHERE id > 2")
    # PostgreSQL's end-of-data marker is a one-column row to the csv module: an error, not the end
    put(minio, bucket, "m.csv", "1,a,1\n\\.\n2,b,2\n")
    run = runner(copy_task(minio, s3_node("In", csv(), filePath=f"s3://{bucket}/m.csv"),
                           sql_node("Out", pgdb(postgres), table=t)), minio.env() | {PW_ENV: postgres.password})
    assert_failed(run, "Format.ColumnCount", f"input 'In' (s3://{bucket}/m.csv): line 2 has 1 columns, expected 3")
    assert postgres.sql(f"SELECT COUNT(*) FROM {t}") == [(2,)]


def test_missing_table(runner: Runner, minio: S3Server, bucket: str, server: SqlServer) -> None:
    server.sql("DROP TABLE IF EXISTS absent")
    put(minio, bucket, "a.csv", "1,a,1\n")
    run = runner(copy_task(minio, s3_node("In", csv(), filePath=f"s3://{bucket}/a.csv"),
                           sql_node("Out", pgdb(server), table="absent")), minio.env() | {PW_ENV: server.password})
    assert_failed(run, "SQL.NoSuchTable", "output 'Out' (table absent): the table does not exist in database "
                  "Warehouse and the node has no createTableSql")


# ------------------------------------------------------------------------------------------- RedshiftCopyActivity
@pytest.mark.parametrize(("mode", "expected"), [
    ("KEEP_EXISTING", [(1, "old"), (2, "new"), (9, "untouched")]),
    ("OVERWRITE_EXISTING", [(1, "NEW"), (2, "new"), (9, "untouched")]),
    ("TRUNCATE", [(1, "NEW"), (2, "new")]),
])
def test_redshift_copy_insert_modes(runner: Runner, minio: S3Server, bucket: str, postgres: SqlServer,
                                    mode: str, expected: list[tuple[int, str]]) -> None:
    postgres.sql("DROP TABLE IF EXISTS wh")
    postgres.sql("CREATE TABLE wh (id INT PRIMARY KEY, name TEXT)")
    postgres.sql("INSERT INTO wh VALUES (1, 'old'), (9, 'untouched')")
    put(minio, bucket, "load.csv", "id,name\n1,NEW\n2,new\n")
    spec = task("activity", "RedshiftCopyActivity", {"insertMode": mode, "commandOptions": ["IGNOREHEADER 1"]},
                inputs=[s3_node("In", csv(), filePath=f"s3://{bucket}/load.csv")],
                outputs=[{"name": "Wh", "type": "RedshiftDataNode", "fields": {"tableName": "wh"},
                          "database": pgdb(postgres) | {"type": "RedshiftDatabase"}}], aws=s3_aws(minio))
    run = runner(spec, minio.env() | {PW_ENV: postgres.password})
    assert run.code == 0, run.output
    assert postgres.sql("SELECT id, name FROM wh ORDER BY id") == expected


def test_redshift_copy_append_with_transform(runner: Runner, minio: S3Server, bucket: str,
                                             postgres: SqlServer) -> None:
    postgres.sql("DROP TABLE IF EXISTS wh2")
    put(minio, bucket, "l.csv", "1,a\n1,b\n")
    spec = task("activity", "RedshiftCopyActivity",
                {"insertMode": "APPEND", "transformSql": "SELECT id * 10, upper(name) FROM staging"},
                inputs=[s3_node("In", csv(), filePath=f"s3://{bucket}/l.csv")],
                outputs=[{"name": "Wh", "type": "RedshiftDataNode",
                          "fields": {"tableName": "wh2", "createTableSql": "CREATE TABLE wh2 (id INT, name TEXT)"},
                          "database": pgdb(postgres)}], aws=s3_aws(minio))
    for _ in range(2):
        run = runner(spec, minio.env() | {PW_ENV: postgres.password})
        assert run.code == 0, run.output
    assert postgres.sql("SELECT id, name FROM wh2 ORDER BY name") == [(10, "A"), (10, "A"), (10, "B"), (10, "B")]


def test_redshift_keep_existing_needs_keys(runner: Runner, minio: S3Server, bucket: str, postgres: SqlServer) -> None:
    postgres.sql("DROP TABLE IF EXISTS wh3")
    postgres.sql("CREATE TABLE wh3 (id INT, name TEXT)")
    put(minio, bucket, "l.csv", "1,a\n")
    spec = task("activity", "RedshiftCopyActivity", {"insertMode": "KEEP_EXISTING"},
                inputs=[s3_node("In", csv(), filePath=f"s3://{bucket}/l.csv")],
                outputs=[{"name": "Wh", "type": "RedshiftDataNode", "fields": {"tableName": "wh3"},
                          "database": pgdb(postgres)}], aws=s3_aws(minio))
    run = runner(spec, minio.env() | {PW_ENV: postgres.password})
    assert_failed(run, "Task.Invalid", "RedshiftCopyActivity MyRedshiftCopyActivity: insertMode KEEP_EXISTING needs "
                  "primary keys: set primaryKeys on output 'Wh' or give table wh3 a primary key", code=2)


# ------------------------------------------------------------------------------------------- ShellCommandActivity
def test_shell_staging_script_and_stdout(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "src/part-1", "a\n")
    put(minio, bucket, "src/part-2", "b\n")
    put(minio, bucket, "script.sh", '#!/bin/sh\ncat "$INPUT1_STAGING_DIR"/part* > "$OUTPUT1_STAGING_DIR/all.txt"\n'
                                    'echo "staged $(ls $INPUT1_STAGING_DIR | wc -l) files"\n')
    spec = task("activity", "ShellCommandActivity",
                {"scriptUri": f"s3://{bucket}/script.sh", "stage": "true", "stdout": f"s3://{bucket}/logs/out.txt"},
                inputs=[s3_node("In", directoryPath=f"s3://{bucket}/src")],
                outputs=[s3_node("Out", directoryPath=f"s3://{bucket}/dst/")], aws=s3_aws(minio))
    run = runner(spec, minio.env())
    assert run.code == 0, run.output
    assert get(minio, bucket, "dst/all.txt") == b"a\nb\n"
    assert get(minio, bucket, "logs/out.txt") == b"staged 2 files\n"
    assert run.result.output_uris == (f"s3://{bucket}/dst/all.txt",)


def test_shell_staging_keeps_the_folders_below_a_directory(runner: Runner, minio: S3Server, bucket: str) -> None:
    """Two days' access.log stay two files (they used to overwrite each other in the staging folder)."""
    put(minio, bucket, "logs/2026-11-02/access.log", "monday\n")
    put(minio, bucket, "logs/2026-11-03/access.log", "tuesday\n")
    spec = task("activity", "ShellCommandActivity",
                {"command": 'cd "$INPUT1_STAGING_DIR" && find . -type f | sort && cat */access.log', "stage": "true",
                 "stdout": f"s3://{bucket}/out.txt"},
                inputs=[s3_node("Logs", directoryPath=f"s3://{bucket}/logs/")], aws=s3_aws(minio))
    run = runner(spec, minio.env())
    assert run.code == 0, run.output
    assert get(minio, bucket, "out.txt") == b"./2026-11-02/access.log\n./2026-11-03/access.log\nmonday\ntuesday\n"


def test_shell_script_uri_missing(runner: Runner, minio: S3Server, bucket: str) -> None:
    spec = task("activity", "ShellCommandActivity", {"scriptUri": f"s3://{bucket}/nope.sh"}, aws=s3_aws(minio))
    run = runner(spec, minio.env())
    assert_failed(run, "S3.NoSuchKey")
    assert run.result.error_message.startswith(f"ShellCommandActivity MyShellCommandActivity scriptUri "
                                               f"(s3://{bucket}/nope.sh): ")


# ------------------------------------------------------------------------------------------- preconditions
def test_s3_preconditions(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "ready/_SUCCESS", "")
    def check(type_: str, fields: dict[str, Any], **extra: Any) -> int:
        return runner(task("precondition", type_, fields, aws=s3_aws(minio), **extra), minio.env()).code
    assert check("S3KeyExists", {"s3Key": f"s3://{bucket}/ready/_SUCCESS"}) == 0
    assert check("S3KeyExists", {"s3Key": f"s3://{bucket}/ready/_FAILURE"}) == 75
    assert check("S3KeyExists", {"s3Key": "s3://no-such-bucket-dp/x"}) == 75
    assert check("S3PrefixNotEmpty", {"s3Prefix": f"s3://{bucket}/rea"}) == 0
    assert check("S3PrefixNotEmpty", {"s3Prefix": f"s3://{bucket}/other/"}) == 75
    assert check("Exists", {}, guarded_node=s3_node("N", directoryPath=f"s3://{bucket}/ready")) == 0
    assert check("Exists", {}, guarded_node=s3_node("N", filePath=f"s3://{bucket}/ready")) == 75
    assert check("ShellCommandPrecondition", {"command": "test -n \"$1\"", "scriptArgument": ["x"]}) == 0
    assert check("ShellCommandPrecondition", {"command": "exit 4"}) == 75


def test_s3_precondition_with_bad_credentials_fails(runner: Runner, minio: S3Server, bucket: str) -> None:
    run = runner(task("precondition", "S3KeyExists", {"s3Key": f"s3://{bucket}/x"}, aws=s3_aws(minio)),
                 {"AWS_ACCESS_KEY_ID": "nobody-here", "AWS_SECRET_ACCESS_KEY": "wrong-secret-123456"})
    assert run.code == 1
    assert run.result.error_id in ("S3.InvalidAccessKeyId", "S3.AccessDenied"), run.output


def test_recompression_streams_bytes(runner: Runner, minio: S3Server, bucket: str) -> None:
    put(minio, bucket, "plain/a.csv", "1,a\n")
    put(minio, bucket, "plain/b.csv", "2,b\n")
    run = runner(copy_task(minio, s3_node("In", directoryPath=f"s3://{bucket}/plain"),
                           s3_node("Out", filePath=f"s3://{bucket}/all.csv.gz", compression="gzip")), minio.env())
    assert run.code == 0, run.output
    assert gzip.decompress(get(minio, bucket, "all.csv.gz")) == b"1,a\n2,b\n"
    run = runner(copy_task(minio, s3_node("In", filePath=f"s3://{bucket}/all.csv.gz", compression="gzip"),
                           s3_node("Out", directoryPath=f"s3://{bucket}/unzipped")), minio.env())
    assert run.code == 0, run.output
    assert get(minio, bucket, "unzipped/all.csv") == b"1,a\n2,b\n"
