"""``datapipeline-runner poll``: AWS's Task Runner for a worker group, on the user's own machine.

It watches the TaskAttempts of its worker group in one namespace, claims one at a time per free slot (a
status patch conditional on the resourceVersion it saw: the API server lets one poller win), runs it as a
child ``datapipeline-runner`` with the same code that runs in Jobs, renews the claim while it runs, stops it
when the attempt is deleted (cancel, timeout) or its deadline passes, and writes the verdict. The contract
is ``datapipeline.core.taskattempt``; the design is docs/worker-groups.md.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from datapipeline.core import taskattempt as ta
from datapipeline.core.definition import GROUP, VERSION
from datapipeline.core.task import SECRET_ENV_LIST, TASK_ENV, TaskResult
from datapipeline.k8s.jobs import LABEL_WORKER_GROUP

STOP_GRACE_SECONDS = 30  # SIGTERM, then SIGKILL, as the kubelet does
WATCH_SECONDS = 60  # each watch ends after this and starts again (a fresh listing: nothing missed for long)
VERDICT_TRIES = 5
# What a task inherits from the poller's environment; nothing else (no kubeconfig, no token).
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
GROUP_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


def _now() -> datetime:
    return datetime.now(UTC)


def _say(text: str) -> None:
    print(f"{_now().strftime('%Y-%m-%dT%H:%M:%SZ')} poller: {text}", flush=True)


@dataclass
class Task:
    """One claimed attempt while its child runs."""

    name: str
    obj: dict[str, Any]
    claimed: datetime
    process: subprocess.Popen[bytes] | None = None
    last_output: datetime | None = None
    tail: collections.deque[bytes] = field(default_factory=lambda: collections.deque())
    tail_bytes: int = 0
    stop_reason: str | None = None  # why the poller stopped it: deleted, lost, DeadlineExceeded, PollerStopped
    done: threading.Event = field(default_factory=threading.Event)

    def add_output(self, line: bytes) -> None:
        self.last_output = _now()
        self.tail.append(line)
        self.tail_bytes += len(line)
        while self.tail_bytes > ta.LOG_TAIL_BYTES and len(self.tail) > 1:
            self.tail_bytes -= len(self.tail.popleft())

    def log_tail(self) -> str:
        return b"".join(self.tail).decode("utf-8", "replace")[-ta.LOG_TAIL_BYTES:]


class SecretUnavailable(Exception):
    pass


class Poller:
    def __init__(self, custom: Any, core: Any, namespace: str, group: str, identity: str, max_tasks: int,
                 secrets_dir: Path | None) -> None:
        self.custom, self.core = custom, core
        self.namespace, self.group, self.identity = namespace, group, identity
        self.max_tasks, self.secrets_dir = max_tasks, secrets_dir
        self.seen: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, Task] = {}
        self.lock = threading.Lock()
        self.claiming = threading.Lock()
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ watching and claiming
    def run(self) -> None:
        from kubernetes import watch

        _say(f'watching worker group "{self.group}" in namespace {self.namespace} as {self.identity} '
             f"({self.max_tasks} at a time)")
        while not self.stopping.is_set():
            try:
                watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
                stream = watcher.stream(self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                        ta.PLURAL, label_selector=f"{LABEL_WORKER_GROUP}={self.group}",
                                        timeout_seconds=WATCH_SECONDS)
                for event in stream:
                    if self.stopping.is_set():
                        break
                    self.observe(str(event["type"]), dict(event["object"]))
            except Exception as error:  # the API server restarting, a network blip: look again soon
                _say(f"watch ended: {type(error).__name__}: {str(error)[:200]}; watching again in 2 s")
                self.stopping.wait(2)
        self.stop_all()

    def observe(self, kind: str, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"]["name"])
        if kind == "DELETED":
            self.seen.pop(name, None)
            self.stop(name, "deleted")
            return
        if (obj.get("spec") or {}).get("workerGroup") != self.group:
            return  # the label says so, the spec does not: not ours
        self.seen[name] = obj
        status = obj.get("status") or {}
        if name in self.tasks and status.get("phase") in ta.TERMINAL_PHASES and self.tasks[name].process:
            self.stop(name, "lost")  # the operator failed it (lease) while we ran it
        self.claim_waiting()

    def claim_waiting(self) -> None:
        """Claim unclaimed attempts, oldest first, while there is a free slot (one claimer at a time: the watch
        and a finishing task may both look)."""
        with self.claiming:
            self._claim_waiting()

    def _claim_waiting(self) -> None:
        waiting = sorted((o for o in self.seen.values() if ta.is_unclaimed(o) and not (o.get("status") or {})
                          .get("phase") and not o["metadata"].get("deletionTimestamp")),
                         key=lambda o: (str(o["metadata"].get("creationTimestamp")), str(o["metadata"]["name"])))
        for obj in waiting:
            with self.lock:
                if self.stopping.is_set() or len(self.tasks) >= self.max_tasks:
                    return
            self.try_claim(obj)

    def try_claim(self, obj: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        name = str(obj["metadata"]["name"])
        now = _now()
        patch = ta.claim_patch(obj, self.identity, now)
        try:
            answer = self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, self.namespace, ta.PLURAL,
                                                                       name, patch)
        except ApiException as error:
            if error.status in (404, 409, 422):  # gone, or another poller was first
                self.seen.pop(name, None)
                return
            if error.status == 403:
                _say(f"may not claim {name}: {_api_message(error)}")
                self.seen.pop(name, None)
                return
            raise
        self.seen[name] = dict(answer)
        task = Task(name=name, obj=dict(answer), claimed=now)
        with self.lock:
            self.tasks[name] = task
        _say(f"claimed {name}")
        threading.Thread(target=self.execute, args=(task,), name=f"task-{name}", daemon=True).start()

    # ------------------------------------------------------------------ one attempt
    def execute(self, task: Task) -> None:
        workdir = Path(tempfile.mkdtemp(prefix=f"datapipeline-{task.name[:40]}-"))
        try:
            reason, exit_code, result = self.run_child(task, workdir)
            if task.stop_reason not in ("deleted", "lost"):
                self.report(task, result, exit_code, reason)
        except Exception as error:  # a bug of ours: the attempt fails, the poller lives on
            _say(f"{task.name}: internal error: {type(error).__name__}: {error}")
            self.report(task, TaskResult("FAILED", error_id="Poller.InternalError",
                                         error_message=f"{type(error).__name__}: {error}"[:1000]), 1, None)
        finally:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
            with self.lock:
                self.tasks.pop(task.name, None)
            task.done.set()
            if not self.stopping.is_set():
                self.claim_waiting()

    def run_child(self, task: Task, workdir: Path) -> tuple[str | None, int, TaskResult]:
        spec = task.obj.get("spec") or {}
        try:
            env = self.child_env(spec, workdir)
        except SecretUnavailable as error:
            return None, 1, TaskResult("FAILED", error_id="Poller.SecretUnavailable", error_message=str(error))
        except ValueError as error:
            return None, 2, TaskResult("FAILED", error_id="Task.Invalid", error_message=str(error))
        if task.stop_reason is not None:  # deleted while its secrets were being read
            return task.stop_reason, 1, TaskResult("FAILED", error_id="Runner.Cancelled", error_message="stopped")
        task.process = subprocess.Popen([sys.executable, "-m", "datapipeline.runner.main"], env=env, cwd=workdir,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)
        assert task.process.stdout is not None
        reader = threading.Thread(target=self.read_output, args=(task, task.process.stdout), daemon=True)
        reader.start()
        self.heartbeat(task, spec)
        code = task.process.wait()
        reader.join(10)
        if task.stop_reason == ta.REASON_DEADLINE:
            return ta.REASON_DEADLINE, code or 1, TaskResult(
                "FAILED", error_id="Runner.Cancelled",
                error_message=f"stopped after deadlineSeconds {spec.get('deadlineSeconds')} (attemptTimeout)")
        if task.stop_reason == ta.REASON_POLLER_STOPPED:
            return ta.REASON_POLLER_STOPPED, code or 1, TaskResult(
                "FAILED", error_id="Runner.Cancelled", error_message="the poller running it was stopped")
        return None, code, read_result(workdir / "result.json", code)

    def child_env(self, spec: Mapping[str, Any], workdir: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        env.update(ta.plain_env(spec))
        secret_names = []
        for ref in ta.secret_env(spec):
            env[ref.name] = self.secret_value(ref)
            secret_names.append(ref.name)
        env[SECRET_ENV_LIST] = ",".join(sorted(secret_names))
        env[TASK_ENV] = ta.task_json(spec)
        env["DATAPIPELINE_TERMINATION_LOG"] = str(workdir / "result.json")
        env["TMPDIR"] = str(workdir)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def secret_value(self, ref: ta.SecretEnvRef) -> str:
        """From --secrets-dir/<secret>/<key> on this machine, else the Secret if this identity may read it."""
        from kubernetes.client.exceptions import ApiException

        if self.secrets_dir is not None:
            path = self.secrets_dir / ref.secret / ref.key
            if path.is_file():
                return path.read_text(encoding="utf-8").rstrip("\n")
        try:
            secret = self.core.read_namespaced_secret(ref.secret, self.namespace)
        except ApiException as error:
            where = f"{self.secrets_dir}/{ref.secret}/{ref.key}" if self.secrets_dir else "no --secrets-dir"
            raise SecretUnavailable(f"{ref.name}: Secret {ref.secret} key {ref.key} is not on this machine ({where}) "
                                    f"and reading it from the API server failed ({error.status} "
                                    f"{_api_message(error)})") from None
        data = secret.data or {}
        if ref.key not in data:
            raise SecretUnavailable(f"{ref.name}: Secret {ref.secret} has no key {ref.key}")
        return base64.b64decode(data[ref.key]).decode("utf-8")

    def read_output(self, task: Task, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            task.add_output(line)
            sys.stdout.write(f"[{task.name}] {line.decode('utf-8', 'replace')}")
            sys.stdout.flush()

    def heartbeat(self, task: Task, spec: Mapping[str, Any]) -> None:
        """Renew the claim every third of the lease until the child ends; stop it on deletion or deadline."""
        from kubernetes.client.exceptions import ApiException

        assert task.process is not None
        every = max(1.0, int(spec.get("leaseSeconds") or 60) / 3)
        deadline = spec.get("deadlineSeconds")
        limit = task.claimed + timedelta(seconds=int(deadline)) if deadline else None
        next_renew = time.monotonic() + every
        while task.process.poll() is None:
            if limit is not None and _now() >= limit and task.stop_reason is None:
                self.stop(task.name, ta.REASON_DEADLINE)
            if time.monotonic() >= next_renew:
                next_renew = time.monotonic() + every
                try:
                    self.custom.patch_namespaced_custom_object_status(
                        GROUP, VERSION, self.namespace, ta.PLURAL, task.name,
                        ta.renew_patch(_now(), task.last_output))
                except ApiException as error:
                    if error.status == 404:
                        self.stop(task.name, "deleted")
                    elif error.status == 422:  # finished meanwhile: the operator failed our claim
                        self.stop(task.name, "lost")
                    else:
                        _say(f"{task.name}: heartbeat failed: {error.status} {_api_message(error)}")
                except Exception as error:
                    _say(f"{task.name}: heartbeat failed: {type(error).__name__}: {str(error)[:200]}")
            time.sleep(0.2)

    def stop(self, name: str, reason: str) -> None:
        """SIGTERM the task's process group, SIGKILL after the grace period (in the background)."""
        task = self.tasks.get(name)
        if task is None or task.process is None or task.process.poll() is not None:
            if task is not None and task.stop_reason is None:
                task.stop_reason = reason
            return
        if task.stop_reason is None:
            task.stop_reason = reason
        _say(f"stopping {name} ({reason})")
        _signal_group(task.process, signal.SIGTERM)

        def kill_later(process: subprocess.Popen[bytes]) -> None:
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)

        threading.Thread(target=kill_later, args=(task.process,), daemon=True).start()

    def report(self, task: Task, result: TaskResult, exit_code: int, reason: str | None) -> None:
        from kubernetes.client.exceptions import ApiException

        patch = ta.verdict_patch(result, exit_code, _now(), reason, task.log_tail())
        for attempt in range(VERDICT_TRIES):
            try:
                self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, self.namespace, ta.PLURAL,
                                                                  task.name, patch)
                _say(f"{task.name}: {patch['status']['phase']} (exit code {exit_code})")
                return
            except ApiException as error:
                if error.status in (404, 422):  # deleted, or already failed by the operator: nothing to say
                    _say(f"{task.name}: result not recorded ({error.status} {_api_message(error)})")
                    return
                _say(f"{task.name}: recording the result failed ({error.status}); trying again")
            except Exception as error:
                _say(f"{task.name}: recording the result failed ({type(error).__name__}); trying again")
            time.sleep(min(30.0, 2.0 ** attempt))
        _say(f"{task.name}: the result could not be recorded; the lease will fail the attempt")

    def stop_all(self) -> None:
        self.stopping.set()
        for name in list(self.tasks):
            self.stop(name, ta.REASON_POLLER_STOPPED)
        for task in list(self.tasks.values()):
            task.done.wait(STOP_GRACE_SECONDS + 15)


def read_result(path: Path, exit_code: int) -> TaskResult:
    """The runner's TaskResult, or one saying it wrote none."""
    try:
        return TaskResult.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return TaskResult("FAILED", error_id="Runner", error_message=f"the runner exited with code {exit_code} "
                                                                     "without a result")


def _die_with_parent() -> None:
    """In the child: SIGTERM when the poller's thread that started it dies (a poller killed must not leave a
    task running that nobody reports on, while its retry runs elsewhere). SIGTERM, not SIGKILL: the runner then
    stops its own command's process group as on a cancel (SIGTERM, SIGKILL 10 s later), so no grandchild is
    left behind. Linux only; elsewhere a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _api_message(error: Any) -> str:
    import json

    try:
        return str(json.loads(error.body).get("message"))[:300]
    except Exception:
        return str(getattr(error, "reason", "") or "")[:300]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="datapipeline-runner poll",
                                     description="Run the attempts of a worker group on this machine "
                                                 "(docs/worker-groups.md).")
    parser.add_argument("--worker-group", required=True, help="the spec.workerGroups name (mode poll)")
    parser.add_argument("--namespace", help="where the pipelines are (default: the kube context's, or the "
                                            "service account's in a pod)")
    parser.add_argument("--max-tasks", type=int, default=1, help="attempts run at once (default 1)")
    parser.add_argument("--secrets-dir", type=Path, help="DIR/<secret>/<key> files: Secret values on this "
                                                         "machine (read before asking the API server)")
    parser.add_argument("--name", help="this poller's name in status.claimedBy (default host/pid)")
    args = parser.parse_args(argv)
    if not GROUP_PATTERN.match(args.worker_group):
        parser.error(f'--worker-group "{args.worker_group}": a poll worker group is a DNS label of at most 40 '
                     "characters (lower case letters, digits and '-')")
    if not 1 <= args.max_tasks <= 64:
        parser.error("--max-tasks must be from 1 to 64")
    if args.secrets_dir is not None and not args.secrets_dir.is_dir():
        parser.error(f"--secrets-dir {args.secrets_dir}: not a directory")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    from kubernetes import client

    from datapipeline.k8s import api

    try:
        api.load()
    except Exception as error:
        print(f"datapipeline-runner poll: cannot reach the API server: {error}", file=sys.stderr)
        return 2
    namespace = args.namespace or _service_account_namespace() or api.context_namespace()
    identity = args.name or f"{socket.gethostname()}/{os.getpid()}"
    poller = Poller(client.CustomObjectsApi(api._api()), client.CoreV1Api(api._api()), namespace,
                    args.worker_group, identity[:200], args.max_tasks, args.secrets_dir)

    def on_signal(signum: int, frame: Any) -> None:
        _say("stopping: running attempts are stopped and reported failed (they are retried)")
        poller.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watcher = threading.Thread(target=poller.run, daemon=True)
    watcher.start()
    while watcher.is_alive() and not poller.stopping.is_set():
        time.sleep(0.5)
    poller.stop_all()
    return 0


def _service_account_namespace() -> str | None:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.is_file() else None
