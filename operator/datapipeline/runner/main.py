"""``datapipeline-runner``: runs one task (activity attempt, precondition check or action) and reports.

Input: the TaskSpec JSON in ``DATAPIPELINE_TASK``. Output: log lines on stdout,
``progress:`` heartbeats, a TaskResult JSON in the termination log
(``/dev/termination-log``, or ``DATAPIPELINE_TERMINATION_LOG``), and the exit code.
A user's mistake never ends in a traceback: it becomes an error id and a message.

With ``log_uri`` set, the runner's complete log (every line it printed, the
child command's output included, redacted like stdout) is uploaded at the end of
the attempt, also when it failed, to ``<log_uri>/<pipeline>/<run>/<name>/attempt-<n>.log``:
the key ``datapipeline logs`` reads (``datapipeline.cli.ops.LOG_KEY``). ``name`` is
the TaskSpec's name: the activity for an activity attempt; for a precondition
check (the operator gives it the guarded activity's ``log_uri``) and an action the
TaskSpec does not say which activity it belongs to, so their logs are kept under
the precondition's or action's own name, with the check number as ``n``, and
never overwrite the activity's attempt logs. Failing to upload the log is a
warning: it does not change the result.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from contextlib import suppress
from types import FrameType
from typing import NoReturn

from datapipeline.core.task import (
    EXIT_FAILED,
    EXIT_FINISHED,
    EXIT_INVALID_TASK,
    EXIT_PRECONDITION_NOT_MET,
    HEADER_ENV_PREFIX,
    KIND_ACTION,
    KIND_ACTIVITY,
    KIND_PRECONDITION,
    PROGRESS_ENV,
    PROGRESS_INTERVAL_SECONDS,
    SECRET_ENV_LIST,
    SECRET_MOUNT_DIR,
    TASK_ENV,
    TERMINATION_LOG,
    TaskResult,
    TaskSpec,
)
from datapipeline.runner import log as logmod
from datapipeline.runner.context import Context
from datapipeline.runner.errors import Cancelled, NotMet, TaskError
from datapipeline.runner.log import COPY, REDACT, Progress, Tee

log = logmod.get("runner")
Handler = Callable[[Context], TaskResult]

# Where attempt logs go under log_uri: the same format as datapipeline.cli.ops.LOG_KEY (a test holds them
# equal; the runner does not import the CLI).
LOG_KEY = "{uri}/{pipeline}/{run}/{activity}/attempt-{attempt}.log"

# Environment variables whose values are secrets wherever they appear.
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def _handlers(kind: str, type_: str) -> Handler | None:
    # Imported lazily: a shell task should not pay for importing psycopg and boto3's S3 transfer.
    if kind == KIND_ACTIVITY:
        if type_ == "CopyActivity":
            from datapipeline.runner.activities import copy
            return copy.run
        if type_ == "ShellCommandActivity":
            from datapipeline.runner.activities import shell
            return shell.run
        if type_ == "SqlActivity":
            from datapipeline.runner.activities import sql
            return sql.run
        if type_ == "RedshiftCopyActivity":
            from datapipeline.runner.activities import redshift_copy
            return redshift_copy.run
        if type_ in ("EmrActivity", "HadoopActivity"):
            from datapipeline.runner.activities import emr
            return emr.run
        if type_ in ("HiveActivity", "HiveCopyActivity"):
            from datapipeline.runner.activities import hive
            return hive.run
        return None
    if kind == KIND_PRECONDITION:
        from datapipeline.runner import preconditions
        return preconditions.HANDLERS.get(type_)
    if kind == KIND_ACTION:
        from datapipeline.runner import actions
        return actions.HANDLERS.get(type_)
    return None


def _register_secrets(spec: TaskSpec | None) -> None:
    named = [n for n in os.environ.get(SECRET_ENV_LIST, "").split(",") if n]
    for name in (*SECRET_ENV, *named):
        REDACT.add(os.environ.get(name))
    for value in _mounted_secret_values(SECRET_MOUNT_DIR):
        REDACT.add(value)
    for name, value in os.environ.items():
        if name.startswith(HEADER_ENV_PREFIX):
            REDACT.add(value)
    if spec is None:
        return
    dbs = [spec.database, *(n.database for n in (*spec.inputs, *spec.outputs))]
    if spec.guarded_node:
        dbs.append(spec.guarded_node.database)
    for db in dbs:
        for env in (db.password_env, db.username_env) if db else ():
            if env:
                REDACT.add(os.environ.get(env))


def _mounted_secret_values(root: str) -> list[str]:
    """Every value of the Secrets mounted under ``root`` (one folder per Secret, one file per key)."""
    values = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.startswith(".."):
                continue  # the kubelet's atomic-update bookkeeping
            try:
                with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                    values.append(f.read(65536).strip())
            except OSError:
                continue
    return values


def _map_unexpected(e: BaseException) -> TaskError:
    """Driver exceptions that escaped a handler's own mapping still get an id and no traceback."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
        if isinstance(e, ClientError | BotoCoreError):
            from datapipeline.runner.s3 import errors_as
            try:
                with errors_as("AWS request", None, None):
                    raise e
            except TaskError as mapped:
                return mapped
    except ImportError:  # pragma: no cover - boto3 is a dependency
        pass
    return TaskError("Runner.InternalError", f"internal error in the runner: {type(e).__name__}: {e}")


def _write_result(result: TaskResult) -> None:
    path = os.environ.get("DATAPIPELINE_TERMINATION_LOG", TERMINATION_LOG)
    text = REDACT(result.to_json())
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        log.warning("cannot write the result to %s: %s", path, e)
    # The result also goes to the log, so it survives when the termination message cannot be read.
    print("result: " + text, flush=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Cancelled()


def log_url(spec: TaskSpec) -> str | None:
    """Where this task's log is uploaded (None without log_uri)."""
    if not spec.log_uri:
        return None
    return LOG_KEY.format(uri=spec.log_uri.rstrip("/"), pipeline=spec.pipeline, run=spec.run, activity=spec.name,
                          attempt=spec.attempt)


_logged: list[TaskSpec] = []  # the task whose log is being copied (main uploads it)


def _start_log_copy(spec: TaskSpec) -> None:
    if not spec.log_uri:
        return
    fd, path = tempfile.mkstemp(prefix="datapipeline-log-", suffix=".log", dir=os.environ.get("TMPDIR") or None)
    os.close(fd)
    COPY.start(path)
    _logged.append(spec)


def _upload_log() -> None:
    """Uploads the copy of the log to the task's log_uri; a failure is only a warning."""
    path = COPY.stop()
    if not _logged or path is None:
        return
    spec = _logged[-1]
    url_text = log_url(spec)
    try:
        from datapipeline.runner.s3 import S3, S3Url

        url = S3Url.parse(url_text, "pipelineLogUri")
        S3(spec.aws).upload_file(path, url, f"log upload ({url})")
        log.info("log uploaded to %s", url)
    except TaskError as e:
        log.warning("could not upload the log to %s: %s: %s", url_text, e.error_id, e.message)
    except Cancelled:
        log.warning("stopped by SIGTERM while uploading the log to %s", url_text)
    except Exception as e:
        log.warning("could not upload the log to %s: %s: %s", url_text, type(e).__name__, e)
    finally:
        os.unlink(path)


def run(text: str | None) -> tuple[int, TaskResult]:
    spec: TaskSpec | None = None
    _register_secrets(None)
    if not text:
        return EXIT_INVALID_TASK, TaskResult("FAILED", error_id="Task.Missing",
                                             error_message=f"environment variable {TASK_ENV} is not set")
    try:
        spec = TaskSpec.from_json(text)
    except (ValueError, KeyError, TypeError) as e:
        return EXIT_INVALID_TASK, TaskResult("FAILED", error_id="Task.Invalid",
                                             error_message=f"{TASK_ENV} is not a valid task: {e}")
    _register_secrets(spec)
    _start_log_copy(spec)
    handler = _handlers(spec.kind, spec.type)
    if handler is None:
        return EXIT_INVALID_TASK, TaskResult("FAILED", error_id="Task.UnsupportedType",
                                             error_message=f"this runner has no handler for {spec.kind} type {spec.type}")
    interval = float(os.environ.get(PROGRESS_ENV, PROGRESS_INTERVAL_SECONDS))
    progress = Progress(interval)
    ctx = Context(spec, progress)
    log.info("%s %s %r of pipeline %s run %s, attempt %d", spec.kind, spec.type, spec.name, spec.pipeline,
             spec.run, spec.attempt)
    progress.start()
    try:
        result = handler(ctx)
        return EXIT_FINISHED, result
    except NotMet as e:
        log.info("precondition not met: %s", e.message)
        return EXIT_PRECONDITION_NOT_MET, TaskResult("FALSE", error_id="Precondition.NotMet",
                                                     error_message=e.message)
    except TaskError as e:
        log.error("%s: %s", e.error_id, e.message)
        # rows_written is not reported: a failed load was rolled back, nothing stays written.
        return e.exit_code, TaskResult("FAILED", rows_read=progress.rows_read or None,
                                       error_id=e.error_id, error_message=e.message)
    except Cancelled:
        log.error("stopped by SIGTERM (cancelled or timed out); nothing was committed")
        return EXIT_FAILED, TaskResult("FAILED", error_id="Runner.Cancelled",
                                       error_message="the attempt was stopped (cancelled or timed out)")
    except Exception as e:
        mapped = _map_unexpected(e)
        if mapped.error_id == "Runner.InternalError":
            # A bug of ours, not the user's: the traceback helps whoever fixes it (redacted, on stderr).
            sys.stderr.write(REDACT("".join(traceback.format_exception(e))))
        log.error("%s: %s", mapped.error_id, mapped.message)
        return EXIT_FAILED, TaskResult("FAILED", error_id=mapped.error_id, error_message=mapped.message)
    finally:
        progress.stop()
        if ctx._scratch:
            shutil.rmtree(ctx._scratch, ignore_errors=True)


def main() -> None:
    if sys.argv[1:2] == ["poll"]:  # a worker group's poller (docs/worker-groups.md), not one task
        from datapipeline.runner import poller

        raise SystemExit(poller.main(sys.argv[2:]))
    # Everything printed goes through the Tee streams: redacted, and copied for the log upload.
    sys.stdout, sys.stderr = Tee(sys.stdout), Tee(sys.stderr)
    logmod.setup()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code, result = run(os.environ.get(TASK_ENV))
    except Cancelled:  # SIGTERM before the task started (while importing, say)
        code, result = EXIT_FAILED, TaskResult("FAILED", error_id="Runner.Cancelled",
                                               error_message="the attempt was stopped before it started")
    if result.error_message:
        result = TaskResult(**{**result.__dict__, "error_message": REDACT(result.error_message)})
    _write_result(result)
    sys.stdout.flush()
    if COPY.active:
        log.info("uploading this log to %s", log_url(_logged[-1]))
        _upload_log()
    _exit(code)


def _exit(code: int) -> NoReturn:
    """Ends the process once everything is reported, without tearing the interpreter down.

    Finalizing frees boto3's and psycopg's objects one by one: about 0.1 s of CPU at the end of every
    task (7% of a 1,000,000-row load), which the kernel does at once. A non-daemon thread still running
    would be cut short, so then the ordinary exit waits for it.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with suppress(Exception):
            if stream is not None:
                stream.flush()
    current = threading.current_thread()
    if any(t is not current and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    main()
