"""Runner throughput and peak memory against the standard tools, on the same servers in the same run.

    python benchmarks/runner_bench.py [--size-mib 1024] [--rows 1000000]

Starts MinIO and PostgreSQL on loopback (tests/fixtures/servers.py), then measures:
1. a 1 GiB S3 -> S3 copy: the runner's CopyActivity (same format: server-side copy) against
   `aws s3 cp s3://... s3://...`, and the streamed path (plain -> gzip, bytes through the runner)
   against `aws s3 cp s3://... - | gzip -6 | aws s3 cp - s3://...`;
2. a 1,000,000-row CSV -> PostgreSQL load: CopyActivity S3 -> SqlDataNode against
   `psql -c "\\copy t FROM file CSV"` from a local file (psql reads no S3, so it has an edge).

Peak RSS is the measured process's own ru_maxrss from wait4 (via a small launcher).
Not a test: it prints a table and exits 1 if the runner's peak RSS exceeds 200 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.servers import S3Server, minio_server, postgres_server

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


def row(name: str, m: Measure, amount: float, unit: str, base: Measure | None) -> str:
    rate = amount / m.seconds
    ratio = f"{base.seconds / m.seconds:5.2f}x" if base else "  (ref)"
    return f"{name:<44} {m.seconds:8.2f}s {rate:10.1f} {unit:<6} {m.peak_rss_mib:8.1f} MiB  {ratio}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    aws = shutil.which("aws")
    psql = shutil.which("psql")
    if not aws or not psql:
        raise SystemExit("needs `aws` (pip install awscli, in the dev extra) and `psql` (postgresql-client)")
    py = sys.executable
    lines: list[str] = []
    peaks: list[float] = []
    with minio_server() as s3, postgres_server() as pg, tempfile.TemporaryDirectory() as tmp:
        s3.client().create_bucket(Bucket="bench")
        size = args.size_mib * MiB
        print(f"uploading a {args.size_mib} MiB object ...", flush=True)
        upload_big(s3, "bench", "big/in.csv", size)
        ep = ["--endpoint-url", s3.endpoint]

        # 1a. same format: server-side copy for both
        ref = measure([aws, "s3", "cp", *ep, "s3://bench/big/in.csv", "s3://bench/aws/out.csv", "--only-show-errors"],
                      aws_env(s3))
        spec = copy_spec(s3, {"name": "In", "type": "S3DataNode", "fields": {"filePath": "s3://bench/big/in.csv"}},
                         {"name": "Out", "type": "S3DataNode", "fields": {"filePath": "s3://bench/dp/out.csv"}})
        mine = measure([py, "-m", "datapipeline.runner.main"], runner_env(spec, s3))
        peaks.append(mine.peak_rss_mib)
        lines += [row("aws s3 cp s3->s3 (server-side)", ref, args.size_mib, "MiB/s", None),
                  row("runner CopyActivity s3->s3 (server-side)", mine, args.size_mib, "MiB/s", ref)]

        # 1b. streamed through the process: plain -> gzip
        pipe = (f"{aws} s3 cp {' '.join(ep)} s3://bench/big/in.csv - | gzip -6 | "
                f"{aws} s3 cp {' '.join(ep)} - s3://bench/aws/out.csv.gz --only-show-errors")
        ref = measure(["sh", "-c", pipe], aws_env(s3))
        spec = copy_spec(s3, {"name": "In", "type": "S3DataNode", "fields": {"filePath": "s3://bench/big/in.csv"}},
                         {"name": "Out", "type": "S3DataNode",
                          "fields": {"filePath": "s3://bench/dp/out.csv.gz", "compression": "gzip"}})
        mine = measure([py, "-m", "datapipeline.runner.main"], runner_env(spec, s3))
        peaks.append(mine.peak_rss_mib)
        lines += [row("aws s3 cp - | gzip -6 | aws s3 cp - (streamed)", ref, args.size_mib, "MiB/s", None),
                  row("runner CopyActivity s3->s3 gzip (streamed)", mine, args.size_mib, "MiB/s", ref)]

        # 2. CSV -> PostgreSQL
        csv_path = Path(tmp) / "rows.csv"
        with open(csv_path, "w") as f:
            for i in range(1, args.rows + 1):
                f.write(f"{i},customer {i % 50000},{i % 1000}.{i % 100:02d},2026-11-{i % 28 + 1:02d}\n")
        s3.client().upload_file(str(csv_path), "bench", "rows/rows.csv")
        ddl = "CREATE TABLE {} (id BIGINT, name TEXT, amount NUMERIC(12,2), day DATE)"
        pg.sql(ddl.format("psql_rows"))
        pg.sql(ddl.format("dp_rows"))
        ref = measure([psql, "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user, "-d", pg.database, "-q",
                       "-c", f"\\copy psql_rows FROM '{csv_path}' CSV"], dict(os.environ, PGPASSWORD=pg.password))
        spec = copy_spec(s3, {"name": "In", "type": "S3DataNode", "fields": {"filePath": "s3://bench/rows/rows.csv"},
                              "data_format": {"type": "CSV", "fields": {}}},
                         {"name": "Out", "type": "SqlDataNode", "fields": {"table": "dp_rows"},
                          "database": {"name": "Pg", "type": "JdbcDatabase", "connection_string": pg.jdbc,
                                       "username": pg.user, "password_env": "PGPW"}})
        mine = measure([py, "-m", "datapipeline.runner.main"], runner_env(spec, s3, {"PGPW": pg.password}))
        peaks.append(mine.peak_rss_mib)
        assert pg.sql("SELECT COUNT(*) FROM dp_rows") == [(args.rows,)]
        lines += [row("psql \\copy (local file)", ref, args.rows / 1000, "krow/s", None),
                  row("runner CopyActivity S3 CSV -> PostgreSQL", mine, args.rows / 1000, "krow/s", ref)]
    print(f"\n{'':<44} {'time':>9} {'throughput':>17} {'peak RSS':>12}  speed vs ref")
    print("\n".join(lines))
    worst = max(peaks)
    print(f"\nrunner peak RSS: {worst:.1f} MiB (limit {RSS_LIMIT_MIB} MiB): {'OK' if worst < RSS_LIMIT_MIB else 'OVER'}")
    return 0 if worst < RSS_LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
