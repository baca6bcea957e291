"""The runner's contract with the operator: exit codes, result, progress lines, log format, secrets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner_helpers import Runner, assert_failed, task

from datapipeline.core.task import TERMINATION_MESSAGE_LIMIT, TaskResult

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING|ERROR) [a-z.]+: ")


def test_missing_task_is_invalid(runner: Runner) -> None:
    spec_less = runner.__class__(runner.tmp)
    run = spec_less({})  # a valid JSON object but no task fields
    assert_failed(run, "Task.Invalid", code=2)
    assert run.result.error_message.startswith("DATAPIPELINE_TASK is not a valid task: ")


def test_wrong_version_is_invalid(runner: Runner) -> None:
    spec = task("activity", "ShellCommandActivity", {"command": "true"})
    spec["version"] = 99
    run = runner(spec)
    assert_failed(run, "Task.Invalid", "DATAPIPELINE_TASK is not a valid task: task version 99 is not 1; runner "
                  "and operator images differ", code=2)


def test_unsupported_type(runner: Runner) -> None:
    run = runner(task("activity", "PigActivity", {"script": "x"}))
    assert_failed(run, "Task.UnsupportedType", "this runner has no handler for activity type PigActivity", code=2)


def test_log_lines_progress_and_result(runner: Runner) -> None:
    run = runner(task("activity", "ShellCommandActivity", {"command": "echo hello; sleep 1.6; echo bye"}))
    assert run.code == 0, run.output
    assert run.result == TaskResult("FINISHED")
    lines = run.stdout.splitlines()
    progress = [line for line in lines if line.startswith("progress: ")]
    assert len(progress) >= 2, run.stdout  # the test interval is 0.5 s
    assert re.match(r"progress: running elapsed=\d+s rows_read=0 rows_written=0 bytes=0$", progress[0])
    others = [line for line in lines if not line.startswith(("progress: ", "result: "))]
    assert others and all(LINE.match(line) for line in others), others
    assert any(line.endswith("INFO shell: stdout: hello") for line in others)
    assert lines[-1] == "result: " + run.termination


def test_non_zero_exit_reports_the_last_stderr_line(runner: Runner) -> None:
    run = runner(task("activity", "ShellCommandActivity", {"command": "echo oops >&2; exit 3"}))
    assert_failed(run, "Shell.NonZeroExit", "ShellCommandActivity MyShellCommandActivity: the command exited with "
                  "status 3; last stderr line: oops")


def test_script_arguments_are_positional(runner: Runner) -> None:
    run = runner(task("activity", "ShellCommandActivity", {"command": 'echo "[$1] [$2]"',
                                                             "scriptArgument": ["a b", "c"]}))
    assert run.code == 0
    assert "INFO shell: stdout: [a b] [c]" in run.stdout


def test_secrets_never_reach_the_output(runner: Runner) -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    cmd = 'echo "key=$AWS_SECRET_ACCESS_KEY"; echo "pw=$DB_PASSWORD" >&2; exit 1'
    spec = task("activity", "ShellCommandActivity", {"command": cmd})
    spec["database"] = {"name": "D", "type": "JdbcDatabase", "connection_string": "jdbc:postgresql://h/d",
                        "password_env": "DB_PASSWORD"}
    run = runner(spec, {"AWS_SECRET_ACCESS_KEY": secret, "DB_PASSWORD": secret + "-db",
                        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"})
    assert run.code == 1
    assert "key=***" in run.stdout and "pw=***" in run.stdout + run.termination
    assert secret not in run.output


def test_connection_string_passwords_are_redacted(runner: Runner) -> None:
    spec = task("activity", "SqlActivity", {"script": "SELECT 1"}, database={
        "name": "D", "type": "JdbcDatabase",
        "connection_string": "jdbc:postgresql://127.0.0.1:1/d?user=u&password=inline-secret-pw"})
    run = runner(spec)
    assert run.code == 1
    assert "inline-secret-pw" not in run.output


def test_long_error_fits_the_termination_message(runner: Runner) -> None:
    run = runner(task("activity", "ShellCommandActivity", {"command": "printf 'x%.0s' $(seq 9000) >&2; exit 1"}))
    assert run.code == 1
    assert len(run.termination.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert json.loads(run.termination)["error_id"] == "Shell.NonZeroExit"


def test_sigterm_stops_the_command_and_reports(tmp_path: Path) -> None:
    term = tmp_path / "term"
    env = dict(os.environ, DATAPIPELINE_TASK=json.dumps(task("activity", "ShellCommandActivity",
                                                             {"command": "sleep 60"})),
               DATAPIPELINE_TERMINATION_LOG=str(term), TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "datapipeline.runner.main"], env=env, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the command really runs
        if "running command" in line:
            break
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert time.monotonic() - started < 12
    assert proc.returncode == 1
    assert TaskResult.from_json(term.read_text()).error_id == "Runner.Cancelled", out
    assert not (set(os.listdir(tmp_path)) - {"term"}), "scratch space was not cleaned up"


def test_scratch_space_is_under_tmpdir(runner: Runner) -> None:
    run = runner(task("activity", "ShellCommandActivity", {"command": 'pwd; touch "$TMPDIR/x"'}))
    assert run.code == 0, run.output
    assert f"stdout: {runner.tmp}/scratch/datapipeline-" in run.stdout
