"""Runner throughput and peak memory against the standard tools, on the same servers in the same run.

    python benchmarks/runner_bench.py [--size-mib 1024] [--rows 1000000] [--repeat 3] [--only copy,stream,csv]

Starts MinIO and PostgreSQL on loopback (tests/fixtures/servers.py), then measures, each case against the
command doing the same work with the standard tools:
1. copy: a 1 GiB S3 -> S3 copy: the runner's CopyActivity (same format: a server-side multipart copy)
   against `aws s3 cp s3://... s3://...` (also a server-side multipart copy: UploadPartCopy; both go
   multipart above 8 MiB, the aws CLI in 8 MiB parts 10 at a time, the runner in 64 MiB parts 8 at a time);
2. stream: the streamed path (plain -> gzip, bytes through the runner) against
   `aws s3 cp s3://... - | gzip -6 | aws s3 cp - s3://...`;
3. csv: a 1,000,000-row CSV object -> PostgreSQL load: CopyActivity S3 -> SqlDataNode against the same S3
   download piped into psql: `aws s3 cp s3://.../rows.csv - | psql -c "\\copy t FROM STDIN CSV"`.

The machine is shared, so each case runs --repeat times, the reference and the runner alternately, and the
table shows the median time of each (every time is printed too), the speed against the reference from the
medians and from the fastest runs, and the largest peak RSS. The runner's package is byte-compiled first, as
it is when installed (the aws CLI is installed). Peak RSS is the measured process's own ru_maxrss from wait4
(via a small launcher); for a shell pipeline, its biggest member.
Not a test: it prints a table and exits 1 if the runner's peak RSS exceeds 200 MiB.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.servers import S3Server, SqlServer, minio_server, postgres_server

MiB = 1024 * 1024
RSS_LIMIT_MIB = 200


@dataclass
class Measure:
    seconds: float
    peak_rss_mib: float
    code: int


# A small launcher forks the measured command, so the child's ru_maxrss starts from the launcher's
# few MiB and not from this process's size (Linux carries the high-water mark across exec).
_LAUNCH = ("import os, sys\npid = os.fork()\nif pid == 0:\n    os.execvp(sys.argv[1], sys.argv[1:])\n"
           "_, st, ru = os.wait4(pid, 0)\nsys.stderr.write('\\nMAXRSS_KIB %d\\n' % ru.ru_maxrss)\n"
           "sys.exit(os.waitstatus_to_exitcode(st))")


def measure(argv: list[str], env: dict[str, str]) -> Measure:
    """Wall time and peak RSS (the largest single process; for a shell pipeline, its biggest member)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _LAUNCH, *argv], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss = int(proc.stderr.rsplit("MAXRSS_KIB", 1)[1].split()[0])
    return Measure(elapsed, rss / 1024, proc.returncode)


def runner_env(spec: dict[str, Any], s3: S3Server, extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(os.environ, DATAPIPELINE_TASK=json.dumps(spec), DATAPIPELINE_TERMINATION_LOG="/dev/null",
                AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key, **(extra or {}))


def aws_env(s3: S3Server) -> dict[str, str]:
    return dict(os.environ, AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key,
                AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null")


def copy_spec(s3: S3Server, src: dict[str, Any], dst: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "kind": "activity", "type": "CopyActivity", "name": "Bench", "pipeline": "bench",
            "run": "bench-1", "attempt": 1, "fields": {}, "inputs": [src], "outputs": [dst],
            "aws": {"region": "us-east-1", "s3_endpoint_url": s3.endpoint, "s3_path_style": True}}


def upload_big(s3: S3Server, bucket: str, key: str, size: int) -> None:
    """A compressible-but-not-trivial object, streamed up (CSV-like lines)."""
    block = b"".join(f"{i},name-{i * 7919 % 100003},{i * 31 % 997}.{i % 100:02d}\n".encode() for i in range(40000))
    with tempfile.TemporaryFile() as f:
        written = 0
        while written < size:
            part = block[: size - written]
            f.write(part)
            written += len(part)
        f.seek(0)
        s3.client().upload_fileobj(f, bucket, key)


@dataclass
class Case:
    """One comparison: the reference command, the runner's task, and what to reset before each run."""

    ref_name: str
    ref_argv: list[str]
    ref_env: dict[str, str]
    name: str
    env: dict[str, str]
    amount: float
    unit: str
    reset: Callable[[str], None]  # called with "ref" or "runner" before that side runs


def compare(case: Case, repeat: int, py: str) -> tuple[list[Measure], list[Measure]]:
    """Runs the reference and the runner alternately, ``repeat`` times each."""
    refs: list[Measure] = []
    mine: list[Measure] = []
    for _ in range(repeat):
        case.reset("ref")
        refs.append(measure(case.ref_argv, case.ref_env))
        case.reset("runner")
        mine.append(measure([py, "-m", "datapipeline.runner.main"], case.env))
    return refs, mine


def row(name: str, runs: list[Measure], amount: float, unit: str, base: list[Measure] | None) -> str:
    seconds = statistics.median(m.seconds for m in runs)
    rate = amount / seconds
    ratio = f"{statistics.median(m.seconds for m in base) / seconds:5.2f}x" if base else "  (ref)"
    # The fastest runs too: on a shared machine, noise only ever adds time.
    best = f"{min(m.seconds for m in base) / min(m.seconds for m in runs):5.2f}x" if base else "  (ref)"
    every = " ".join(f"{m.seconds:.2f}" for m in runs)
    return (f"{name:<50} {seconds:8.2f}s {rate:10.1f} {unit:<6} {max(m.peak_rss_mib for m in runs):8.1f} MiB  "
            f"{ratio}  {best}   [{every}]")


def copy_case(s3: S3Server, size_mib: int, aws: str) -> Case:
    ep = ["--endpoint-url", s3.endpoint]
    spec = copy_spec(s3, {"name": "In", "type": "S3DataNode", "fields": {"filePath": "s3://bench/big/in.csv"}},
                     {"name": "Out", "type": "S3DataNode", "fields": {"filePath": "s3://bench/dp/out.csv"}})
    return Case("aws s3 cp s3->s3 (server-side)",
                [aws, "s3", "cp", *ep, "s3://bench/big/in.csv", "s3://bench/aws/out.csv", "--only-show-errors"],
                aws_env(s3), "runner CopyActivity s3->s3 (server-side)", runner_env(spec, s3), size_mib, "MiB/s",
                lambda side: _delete(s3, "aws/out.csv" if side == "ref" else "dp/out.csv"))


def stream_case(s3: S3Server, size_mib: int, aws: str) -> Case:
    ep = " ".join(["--endpoint-url", s3.endpoint])
    pipe = (f"{aws} s3 cp {ep} s3://bench/big/in.csv - | gzip -6 | "
            f"{aws} s3 cp {ep} - s3://bench/aws/out.csv.gz --only-show-errors")
    spec = copy_spec(s3, {"name": "In", "type": "S3DataNode", "fields": {"filePath": "s3://bench/big/in.csv"}},
                     {"name": "Out", "type": "S3DataNode",
                      "fields": {"filePath": "s3://bench/dp/out.csv.gz", "compression": "gzip"}})
    return Case("aws s3 cp - | gzip -6 | aws s3 cp - (streamed)", ["sh", "-c", pipe], aws_env(s3),
                "runner CopyActivity s3->s3 gzip (streamed)", runner_env(spec, s3), size_mib, "MiB/s",
                lambda side: _delete(s3, "aws/out.csv.gz" if side == "ref" else "dp/out.csv.gz"))


def csv_case(s3: S3Server, pg: SqlServer, rows: int, aws: str, psql: str, tmp: str) -> Case:
    csv_path = Path(tmp) / "rows.csv"
    with open(csv_path, "w") as f:
        for i in range(1, rows + 1):
            f.write(f"{i},customer {i % 50000},{i % 1000}.{i % 100:02d},2026-11-{i % 28 + 1:02d}\n")
    s3.client().upload_file(str(csv_path), "bench", "rows/rows.csv")
    csv_path.unlink()
    ddl = "CREATE TABLE {} (id BIGINT, name TEXT, amount NUMERIC(12,2), day DATE)"
    pg.sql(ddl.format("psql_rows"))
    pg.sql(ddl.format("dp_rows"))
    # The same S3 download as the runner's, piped into psql's \copy.
    pipe = (f"{aws} s3 cp --endpoint-url {s3.endpoint} s3://bench/rows/rows.csv - | "
            f"{psql} -h 127.0.0.1 -p {pg.port} -U {pg.user} -d {pg.database} -q -v ON_ERROR_STOP=1 "
            "-c '\\copy psql_rows FROM STDIN CSV'")
    spec = copy_spec(s3, {"name": "In", "type": "S3DataNode", "fields": {"filePath": "s3://bench/rows/rows.csv"},
                          "data_format": {"type": "CSV", "fields": {}}},
                     {"name": "Out", "type": "SqlDataNode", "fields": {"table": "dp_rows"},
                      "database": {"name": "Pg", "type": "JdbcDatabase", "connection_string": pg.jdbc,
                                   "username": pg.user, "password_env": "PGPW"}})
    return Case("aws s3 cp - | psql \\copy FROM STDIN", ["sh", "-c", pipe], dict(aws_env(s3), PGPASSWORD=pg.password),
                "runner CopyActivity S3 CSV -> PostgreSQL", runner_env(spec, s3, {"PGPW": pg.password}),
                rows / 1000, "krow/s", lambda side: pg.sql(f"TRUNCATE {'psql_rows' if side == 'ref' else 'dp_rows'}"))


def compile_runner() -> None:
    """Byte-compiles the runner's package, as installing it does (pip compiles on install; the image has the
    bytecode): with PYTHONDONTWRITEBYTECODE=1, a source checkout would be compiled at every start of the
    runner, while the installed aws CLI is not."""
    import datapipeline

    compileall.compile_dir(str(Path(datapipeline.__file__).parent), quiet=1)


def _delete(s3: S3Server, key: str) -> None:
    s3.client().delete_object(Bucket="bench", Key=key)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="copy,stream,csv", help="comma-separated: copy, stream, csv")
    args = parser.parse_args()
    only = set(args.only.split(","))
    aws = shutil.which("aws")
    psql = shutil.which("psql")
    if not aws or not psql:
        raise SystemExit("needs `aws` (pip install awscli, in the dev extra) and `psql` (postgresql-client)")
    compile_runner()
    lines: list[str] = []
    peaks: list[float] = []
    with minio_server() as s3, postgres_server() as pg, tempfile.TemporaryDirectory() as tmp:
        s3.client().create_bucket(Bucket="bench")
        cases: list[Case] = []
        if only & {"copy", "stream"}:
            print(f"uploading a {args.size_mib} MiB object ...", flush=True)
            upload_big(s3, "bench", "big/in.csv", args.size_mib * MiB)
            cases += [f(s3, args.size_mib, aws) for name, f in (("copy", copy_case), ("stream", stream_case))
                      if name in only]
        if "csv" in only:
            cases.append(csv_case(s3, pg, args.rows, aws, psql, tmp))
        for case in cases:
            print(f"{case.name} ...", flush=True)
            refs, mine = compare(case, args.repeat, sys.executable)
            if case.unit == "krow/s":  # the last run of each is still in its table
                for t in ("psql_rows", "dp_rows"):
                    assert pg.sql(f"SELECT COUNT(*) FROM {t}") == [(args.rows,)], t
            peaks += [m.peak_rss_mib for m in mine]
            lines += [row(case.ref_name, refs, case.amount, case.unit, None),
                      row(case.name, mine, case.amount, case.unit, refs)]
    print(f"\n{'':<50} {'median':>9} {'throughput':>17} {'peak RSS':>12}  vs ref: median  best   "
          "[every run, s]")
    print("\n".join(lines))
    worst = max(peaks)
    print(f"\nrunner peak RSS: {worst:.1f} MiB (limit {RSS_LIMIT_MIB} MiB): {'OK' if worst < RSS_LIMIT_MIB else 'OVER'}")
    return 0 if worst < RSS_LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
