"""Background processes with pidfiles and logs under the cluster's state directory."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from dc_common import Paths


def _pidfile(paths: Paths, name: str) -> Path:
    return paths.run / f"{name}.pid"


def start(paths: Paths, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    """Starts `argv` detached (own session, survives this process); returns its pid."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.run.mkdir(parents=True, exist_ok=True)
    with open(paths.logs / f"{name}.log", "ab") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, close_fds=True)
    _pidfile(paths, name).write_text(f"{proc.pid}\n{argv[0]}\n")
    return proc.pid


def pid_of(paths: Paths, name: str) -> int | None:
    """The live pid recorded for `name`, or None (also when the pid was reused by another program)."""
    try:
        pid_line, exe = _pidfile(paths, name).read_text().split("\n")[:2]
        pid = int(pid_line)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not cmdline or cmdline[0].decode(errors="replace") != exe:
        return None
    if _is_zombie(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                _reap(pid)
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def stop(paths: Paths, name: str, timeout: float = 10.0) -> bool:
    """Stops the named component if it runs; returns whether it did."""
    pid = pid_of(paths, name)
    if pid is not None:
        stop_pid(pid, timeout)
    _pidfile(paths, name).unlink(missing_ok=True)
    return pid is not None


def pids_with_arg(needle: str) -> list[int]:
    """Processes whose command line contains `needle` (e.g. our containerd's socket path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found
