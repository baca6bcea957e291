"""Shared paths, versions and helpers of the dev cluster (see devcluster.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

K8S_VERSION = os.environ.get("K8S_VERSION", "v1.34.4")
HELM_VERSION = os.environ.get("HELM_VERSION", "v3.19.4")
PAUSE_IMAGE = "localhost/kdp-pause:3.10"
BASE_IMAGE = "localhost/kdp-base:bookworm"
RUNNER_IMAGE = os.environ.get("KDP_RUNNER_IMAGE", "localhost/kube-datapipeline:dev")
# The Spark image (spark-image/Dockerfile), built on request: `devcluster.py build-images --spark`.
SPARK_BASE_IMAGE = "localhost/kdp-spark-base:bookworm"
SPARK_IMAGE = os.environ.get("KDP_SPARK_IMAGE", "localhost/kube-datapipeline-spark:dev")
# The console image (runner-image/Dockerfile, target console), built on request: `build-images --console`.
CONSOLE_BASE_IMAGE = "localhost/kdp-console-base:bookworm"
CONSOLE_IMAGE = os.environ.get("KDP_CONSOLE_IMAGE", "localhost/kube-datapipeline-console:dev")

# The cluster's network: one bridge on this machine. The gateway address is the
# host's side of the bridge, so the API server listens there and pods reach it
# through the `kubernetes` Service; nothing is routed off this machine.
BRIDGE = "kdp0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/24"
SERVICE_IP = "10.96.0.1"
NODE_NAME = "kdp-node"
APISERVER_PORT = 6443
ETCD_CLIENT = "http://127.0.0.1:2379"
ETCD_PEER = "http://127.0.0.1:2380"


@dataclass(frozen=True)
class Paths:
    """Where everything lives: the cache (kept) and the cluster state (wiped by `down`)."""

    cache: Path

    @property
    def k8s_bin(self) -> Path:
        return self.cache / f"k8s-{K8S_VERSION}" / "bin"

    @property
    def helm_bin(self) -> Path:
        return self.cache / f"helm-{HELM_VERSION}" / "bin"

    @property
    def images(self) -> Path:
        return self.cache / "images"

    @property
    def wheels(self) -> Path:
        return self.cache / "wheels"

    @property
    def buildah_root(self) -> Path:
        return self.cache / "buildah" / "storage"

    @property
    def state(self) -> Path:
        return Path(os.environ.get("KDP_CLUSTER_DIR", str(self.cache / "cluster")))

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def containerd_sock(self) -> Path:
        return self.state / "containerd" / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.state / "runc"


def default_paths() -> Paths:
    return Paths(Path(os.environ.get("KDP_CACHE", str(Path.home() / ".cache" / "kube-datapipeline"))))


def log(msg: str) -> None:
    print(f"[devcluster] {msg}", file=sys.stderr, flush=True)


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    capture: bool = False,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs a command; on failure the error carries its output, which is what one needs to debug."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        check=False,
        text=True,
        capture_output=capture,
        env=env,
        cwd=cwd,
        input=input_text,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or "")[-4000:] if capture else ""
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{detail}")
    return proc


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def sha12(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


@contextmanager
def timed(label: str, timings: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        timings[label] = time.monotonic() - start


def wait_for(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
    """Polls `probe()` until it returns true; raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception:  # the component is still starting; keep polling
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
