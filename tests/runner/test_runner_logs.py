"""The runner's own log, uploaded to ``<log_uri>/<pipeline>/<run>/<name>/attempt-<n>.log`` on real MinIO."""

from __future__ import annotations

import pytest
from fixtures.servers import S3Server
from runner_helpers import Runner, assert_failed, s3_aws, task

from datapipeline.cli.ops import LOG_KEY as CLI_LOG_KEY
from datapipeline.cli.ops import log_key
from datapipeline.runner import main as runner_main

RUN = "p1-20261121t1000"  # runner_helpers.task's run


def stored(minio: S3Server, url: str) -> str:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    body: bytes = minio.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body.decode()


def test_the_key_is_the_one_datapipeline_logs_reads() -> None:
    assert runner_main.LOG_KEY == CLI_LOG_KEY


@pytest.mark.servers
def test_complete_log_with_command_output_is_uploaded(runner: Runner, minio: S3Server, bucket: str) -> None:
    uri = f"s3://{bucket}/pipeline-logs/"
    spec = task("activity", "ShellCommandActivity",
                {"command": 'echo to-stdout; echo to-stderr >&2; echo "key=$AWS_SECRET_ACCESS_KEY"; sleep 1.2'},
                name="Echo", aws=s3_aws(minio), log_uri=uri)
    run = runner(spec, minio.env())
    assert run.code == 0, run.output
    url = log_key(uri, "p1", RUN, "Echo", 1)
    assert url == f"s3://{bucket}/pipeline-logs/p1/{RUN}/Echo/attempt-1.log"
    text = stored(minio, url)
    # Every line the runner printed up to the upload, in order: the pod log is the stored log plus one line.
    assert run.stdout.startswith(text), (run.stdout, text)
    rest = run.stdout[len(text):].splitlines()
    assert len(rest) == 1 and rest[0].endswith(f"INFO runner: log uploaded to {url}"), rest
    lines = text.splitlines()
    assert "activity ShellCommandActivity 'Echo' of pipeline p1" in lines[0]
    assert any(line.endswith("INFO shell: stdout: to-stdout") for line in lines)
    assert any(line.endswith("INFO shell: stderr: to-stderr") for line in lines)
    assert any(line.endswith("INFO shell: stdout: key=***") for line in lines)
    assert any(line.startswith("progress: running") for line in lines)
    assert f"result: {run.termination}" in lines
    assert lines[-1].endswith(f"INFO runner: uploading this log to {url}")
    assert minio.secret_key not in text and minio.secret_key not in run.output


@pytest.mark.servers
def test_log_is_uploaded_when_the_attempt_fails(runner: Runner, minio: S3Server, bucket: str) -> None:
    uri = f"s3://{bucket}/l"
    spec = task("activity", "ShellCommandActivity", {"command": 'echo "boom $AWS_SECRET_ACCESS_KEY" >&2; exit 3'},
                name="Fails", aws=s3_aws(minio), log_uri=uri)
    spec["attempt"] = 2
    run = runner(spec, minio.env())
    assert_failed(run, "Shell.NonZeroExit", "ShellCommandActivity Fails: the command exited with status 3; "
                  "last stderr line: boom ***")
    text = stored(minio, f"s3://{bucket}/l/p1/{RUN}/Fails/attempt-2.log")
    assert "ERROR runner: Shell.NonZeroExit: ShellCommandActivity Fails: the command exited with status 3" in text
    assert f"result: {run.termination}" in text
    assert minio.secret_key not in text


@pytest.mark.servers
def test_a_precondition_check_log_goes_under_its_own_name(runner: Runner, minio: S3Server, bucket: str) -> None:
    uri = f"s3://{bucket}/l"
    spec = task("precondition", "S3KeyExists", {"s3Key": f"s3://{bucket}/ready/_SUCCESS"}, name="InputReady",
                aws=s3_aws(minio), log_uri=uri)
    spec["attempt"] = 3  # the third check
    run = runner(spec, minio.env())
    assert run.code == 75, run.output
    text = stored(minio, f"s3://{bucket}/l/p1/{RUN}/InputReady/attempt-3.log")
    assert "precondition not met: S3KeyExists InputReady" in text


@pytest.mark.servers
def test_an_upload_failure_is_a_warning_only(runner: Runner, minio: S3Server, bucket: str) -> None:
    spec = task("activity", "ShellCommandActivity", {"command": "true"}, name="Ok", aws=s3_aws(minio),
                log_uri="s3://no-such-log-bucket-dp/x")
    run = runner(spec, minio.env())
    assert run.code == 0 and run.result.status == "FINISHED", run.output
    assert (f"WARNING runner: could not upload the log to s3://no-such-log-bucket-dp/x/p1/{RUN}/Ok/attempt-1.log: "
            "S3.NoSuchBucket: log upload (s3://no-such-log-bucket-dp/x/p1/") in run.stdout
    assert "Traceback" not in run.output


def test_no_log_uri_no_upload(runner: Runner) -> None:
    run = runner(task("activity", "ShellCommandActivity", {"command": "echo hi"}))
    assert run.code == 0, run.output
    assert "upload" not in run.stdout
    assert run.stdout.splitlines()[-1] == "result: " + run.termination


@pytest.mark.servers
def test_stdout_upload_to_a_missing_bucket_is_a_clear_error(runner: Runner, minio: S3Server) -> None:
    spec = task("activity", "ShellCommandActivity", {"command": "echo hi", "stdout": "s3://no-such-bucket-dp/out"},
                name="Out", aws=s3_aws(minio))
    run = runner(spec, minio.env())
    assert_failed(run, "S3.NoSuchBucket", "ShellCommandActivity Out stdout (s3://no-such-bucket-dp/out): bucket "
                  "'no-such-bucket-dp' does not exist")
