"""ShellCommandActivity (and the shell half of ShellCommandPrecondition and the EMR family).

The command runs with /bin/sh in a scratch directory under $TMPDIR; its output is
logged line by line (so it also counts as progress) and kept in files that are
uploaded to the ``stdout``/``stderr`` S3 URIs. With ``stage: true`` the inputs are
downloaded into ``$INPUTn_STAGING_DIR`` first and ``$OUTPUTn_STAGING_DIR`` is
uploaded to the outputs afterwards. Only S3DataNodes are staged; other nodes (a
DynamoDBDataNode the command reads or writes itself, say) keep their place in the
numbering but get no staging directory.

The command's environment is the runner's (credentials included) without the task,
plus what the task says about AWS, in the variables boto3 and the AWS CLI read:
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL_SNS``, and, for path-style S3, an
``AWS_CONFIG_FILE`` with ``s3 = addressing_style = path`` (only when none is set).
A value already in the environment (from a ComputeProfile's env) wins.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from datapipeline.core.task import DataNodeSpec, TaskResult
from datapipeline.runner.context import Context, strings, truthy
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import get
from datapipeline.runner.nodes import S3_TYPES, basename, s3_files, s3_location
from datapipeline.runner.s3 import S3Url

log = get("shell")
TAIL_LINES = 40  # stderr lines kept for the error message (a JVM's exception is followed by its stack)


@dataclass
class Outcome:
    returncode: int
    last_stderr: str
    tail: tuple[str, ...] = ()  # the last lines of stderr, oldest first


def _pump(stream: IO[bytes], sink: IO[bytes], name: str, tail: deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        sink.write(raw)
        text = raw.decode("utf-8", "replace").rstrip("\n")
        tail.append(text)
        log.info("%s: %s", name, text)
    stream.close()


def run_command(ctx: Context, argv: Sequence[str], env: dict[str, str], cwd: str, what: str) -> Outcome:
    """Runs argv, logging and capturing its output; uploads stdout/stderr if the task names URIs."""
    scratch = ctx.scratch()
    out_path, err_path = os.path.join(scratch, "stdout"), os.path.join(scratch, "stderr")
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    ctx.progress.phase = "running"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            # A new session: on SIGTERM the whole process group is stopped, not just the shell.
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
        except OSError as e:
            raise TaskError("Shell.CannotStart", f"{what}: cannot start {argv[0]}: {e.strerror}") from None
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, out, "stdout", deque(maxlen=1)), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, err, "stderr", tail), daemon=True)]
        for t in pumps:
            t.start()
        try:
            rc = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        finally:
            for t in pumps:
                t.join(timeout=5)
    for field_name, path in (("stdout", out_path), ("stderr", err_path)):
        uri = ctx.field(field_name)
        if uri:
            url = S3Url.parse(uri, f"{what} {field_name}")
            ctx.s3.upload_file(path, url, f"{what} {field_name} ({url})")
            log.info("uploaded %s to %s", field_name, url)
    return Outcome(rc, tail[-1] if tail else "", tuple(tail))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def command_argv(ctx: Context, what: str) -> list[str]:
    """argv for ``command`` (run by sh -c, scriptArgument as $1...) or a downloaded ``scriptUri``."""
    command, script_uri = ctx.field("command"), ctx.field("scriptUri")
    args = strings(ctx.field("scriptArgument"))
    if bool(command) == bool(script_uri):
        raise InvalidTask(f"{what}: set exactly one of command and scriptUri")
    if command:
        return ["/bin/sh", "-c", str(command), "sh", *args]
    url = S3Url.parse(script_uri, f"{what} scriptUri")
    path = os.path.join(ctx.scratch(), "script")
    ctx.s3.download_file(url, path, f"{what} scriptUri ({url})")
    os.chmod(path, 0o700)
    with open(path, "rb") as f:
        shebang = f.read(2) == b"#!"
    return [path, *args] if shebang else ["/bin/sh", path, *args]


def base_env(ctx: Context) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATAPIPELINE_TASK", None)  # the command has no use for the runner's own input
    env.setdefault("TMPDIR", os.path.dirname(ctx.scratch()))
    aws = ctx.spec.aws
    for name, value in (("AWS_REGION", aws.region), ("AWS_DEFAULT_REGION", aws.region),
                        ("AWS_ENDPOINT_URL_S3", aws.s3_endpoint_url),
                        ("AWS_ENDPOINT_URL_DYNAMODB", aws.dynamodb_endpoint_url),
                        ("AWS_ENDPOINT_URL_SNS", aws.sns_endpoint_url)):
        if value and not env.get(name):
            env[name] = value
    if aws.s3_path_style and not env.get("AWS_CONFIG_FILE"):
        config = os.path.join(ctx.scratch(), "aws-config")
        with open(config, "w", encoding="utf-8") as f:
            f.write("[default]\ns3 =\n    addressing_style = path\n")
        env["AWS_CONFIG_FILE"] = config
    return env


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"ShellCommandActivity {spec.name}"
    argv = command_argv(ctx, what)
    env = base_env(ctx)
    workdir = os.path.join(ctx.scratch(), "work")
    os.makedirs(workdir)
    stage = truthy(ctx.field("stage", "false"))
    out_dirs: list[tuple[DataNodeSpec, str]] = []
    if stage:
        ctx.progress.phase = "staging inputs"
        for node, d in _staging_dirs(ctx, spec.inputs, "input", env):
            for url, name in _staged_names(node, s3_files(ctx, node, "input")):
                target = os.path.join(d, name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                ctx.progress.bytes += ctx.s3.download_file(url, target, f"input {node.name!r} ({url})")
        out_dirs = _staging_dirs(ctx, spec.outputs, "output", env)
    log.info("running %s", "script " + str(ctx.field("scriptUri")) if ctx.field("scriptUri") else "command")
    outcome = run_command(ctx, argv, env, workdir, what)
    if outcome.returncode != 0:
        detail = f"; last stderr line: {outcome.last_stderr}" if outcome.last_stderr else ""
        if outcome.returncode < 0:
            raise TaskError("Shell.Killed", f"{what}: the command was killed by signal {-outcome.returncode}{detail}")
        raise TaskError("Shell.NonZeroExit", f"{what}: the command exited with status {outcome.returncode}{detail}")
    uris: list[str] = []
    if stage:
        ctx.progress.phase = "uploading outputs"
        for node, d in out_dirs:
            uris.extend(_upload_dir(ctx, node, d))
    return TaskResult("FINISHED", bytes=ctx.progress.bytes or None, output_uris=tuple(uris[:20]))


def _staged_names(node: DataNodeSpec, files: Sequence[S3Url]) -> list[tuple[S3Url, str]]:
    """Where each input object lands in its staging folder: a directory's objects keep their path below the
    directory (like `aws s3 cp --recursive`: two days' access.log do not overwrite each other); a file or a
    manifest's entries keep their name, and two entries of one name are an error, not a silent overwrite."""
    kind, root = s3_location(node, "input")
    named: list[tuple[S3Url, str]] = []
    seen: dict[str, S3Url] = {}
    for url in files:
        inside = kind == "directoryPath" and url.bucket == root.bucket and url.key.startswith(root.dir_prefix)
        name = url.key[len(root.dir_prefix):] if inside else basename(url)
        if inside and (not name or name.endswith("/")):
            continue  # a "folder" marker object, not a file
        if name.startswith("/") or ".." in name.split("/"):
            raise TaskError("Shell.StagingInput", f"input {node.name!r}: the object {url} would be staged outside "
                            "its staging folder ('..' or a leading '/' in its key); refusing it")
        if name in seen:
            raise TaskError("Shell.StagingInput", f"input {node.name!r}: {seen[name]} and {url} would both be "
                            f"staged as {name!r}; give them different names")
        seen[name] = url
        named.append((url, name))
    return named


def _upload_dir(ctx: Context, node: DataNodeSpec, directory: str) -> list[str]:
    node_name = node.name
    files = sorted(os.path.relpath(os.path.join(root, f), directory)
                   for root, _, names in os.walk(directory) for f in names)
    kind, url = s3_location(node, "output")
    if kind == "filePath":
        if len(files) > 1:
            raise TaskError("Shell.StagingOutput", f"output {node_name!r} (filePath {url}): the command left "
                            f"{len(files)} files in OUTPUT staging; a filePath output takes one (use directoryPath)")
        targets = [(f, url) for f in files]
    elif kind == "directoryPath":
        targets = [(f, url.child(f)) for f in files]
    else:
        raise InvalidTask(f"output {node_name!r}: an output S3DataNode needs filePath or directoryPath")
    for rel, target in targets:
        path = os.path.join(directory, rel)
        ctx.s3.upload_file(path, target, f"output {node_name!r} ({target})")
        ctx.progress.bytes += os.path.getsize(path)
    if not files:
        log.warning("output %r: the command left no files in its staging directory", node_name)
    return [str(t) for _, t in targets]


def _staging_dirs(ctx: Context, nodes: Sequence[DataNodeSpec], kind: str,
                  env: dict[str, str]) -> list[tuple[DataNodeSpec, str]]:
    """A scratch folder per S3 node, exported as ${INPUTn_STAGING_DIR} / ${OUTPUTn_STAGING_DIR}.

    Other nodes keep their place in the numbering but are not staged.
    """
    dirs = []
    for i, node in enumerate(nodes, 1):
        if node.type not in S3_TYPES:
            log.info("%s %d %r is a %s: not staged", kind, i, node.name, node.type)
            continue
        d = os.path.join(ctx.scratch(), f"{kind}{i}")
        os.makedirs(d)
        env[f"{kind.upper()}{i}_STAGING_DIR"] = d
        dirs.append((node, d))
    return dirs
