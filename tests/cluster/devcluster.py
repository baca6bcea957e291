#!/usr/bin/env python3
"""A real single-node Kubernetes cluster on this machine, for the tests, CI and the demo.

    python tests/cluster/devcluster.py up            # build what is missing, start, wait for Ready
    python tests/cluster/devcluster.py status        # components and node readiness
    python tests/cluster/devcluster.py env           # export lines: KUBECONFIG, PATH (kubectl, helm)
    python tests/cluster/devcluster.py build-images  # (re)build the images, import them if running
    python tests/cluster/devcluster.py build-images --spark  # the Spark image alone (spark-image/), imported
    python tests/cluster/devcluster.py build-images --console  # the console image alone, imported
    python tests/cluster/devcluster.py down          # stop everything, leave nothing behind

`--use-current-context` (or KDP_USE_CURRENT_CONTEXT=1): if the current kubeconfig
reaches a cluster (kind, EKS, GKE...), use it and build nothing.

Everything is built from package registries (Debian, the Go module proxy, PyPI)
and cached under $KDP_CACHE (~/.cache/kube-datapipeline), keyed by version.
The cluster's state lives under $KDP_CLUSTER_DIR (<cache>/cluster). Needs root.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Run as a script, this directory is on sys.path; conftest.py adds it for the tests.
import dc_cluster
import dc_images
import dc_procs
from dc_common import HERE, NODE_NAME, RUNNER_IMAGE, Paths, default_paths, log, run, timed

# What `up` needs on the host: an executable (or file pattern) -> its Debian package.
HOST_NEEDS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "buildah": "buildah",
    "debootstrap": "debootstrap",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "socat": "socat",
    "openssl": "openssl",
    "gcc": "gcc",
    "/usr/lib/*/libc.a": "libc6-dev",
    "ip": "iproute2",
    "tar": "tar",
    "mount": "mount",
}
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"
LOCK_FILE = Path("/run/kdp-devcluster.lock")


@contextmanager
def machine_lock() -> Iterator[None]:
    """Serializes up/down/build-images on this machine: two test sessions starting at once
    must not both build and start a cluster; the second waits, then reuses the first's."""
    with open(LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another devcluster command is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def missing_packages() -> list[str]:
    os.environ["PATH"] = f"{os.environ.get('PATH', '')}:{SBIN_PATH}"
    missing = set()
    for need, package in HOST_NEEDS.items():
        found = glob.glob(need) if need.startswith("/") else shutil.which(need)
        if not found:
            missing.add(package)
    return sorted(missing)


def ensure_host_packages() -> None:
    missing = missing_packages()
    if not missing:
        return
    log(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=env, capture=True)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env, capture=True)


def build_k8s(paths: Paths) -> None:
    """build-k8s.sh is cached by version: a no-op once the binaries exist."""
    if not shutil.which("go") and not (paths.k8s_bin / "kdp-k8s").exists():
        raise SystemExit("the Go toolchain (go >= 1.24) is needed to build Kubernetes; put `go` on PATH")
    env = {**os.environ, "KDP_CACHE": str(paths.cache)}
    proc = subprocess.run(["bash", str(HERE / "build-k8s.sh")], env=env, check=False,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"build-k8s.sh failed ({proc.returncode})")


def current_context_reachable() -> bool:
    """Whether the current kubeconfig (KUBECONFIG or ~/.kube/config) reaches an API server."""
    try:
        from kubernetes import client, config
    except ImportError:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            return False
        return subprocess.run([kubectl, "version", "--request-timeout=5s"],
                              capture_output=True, check=False).returncode == 0
    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as exc:
        log(f"current context not reachable: {exc}")
        return False
    return True


def use_current_context(args: argparse.Namespace) -> bool:
    return bool(args.use_current_context or os.environ.get("KDP_USE_CURRENT_CONTEXT") == "1")


def print_env(paths: Paths) -> None:
    print(f"export KUBECONFIG={paths.kubeconfig}")
    print(f"export PATH={paths.k8s_bin}:{paths.helm_bin}:$PATH")
    print(f"export KDP_RUNNER_IMAGE={RUNNER_IMAGE}")


def print_timings(timings: dict[str, float], total: float) -> None:
    parts = ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    log(f"timings: {parts}; total {total:.1f}s")


def cmd_up(args: argparse.Namespace, paths: Paths) -> int:
    start = time.monotonic()
    if use_current_context(args) and current_context_reachable():
        log("using the current kubeconfig context; building nothing "
            f"(the cluster needs the image {RUNNER_IMAGE}, e.g. `kind load docker-image`)")
        return 0
    if os.geteuid() != 0:
        raise SystemExit("devcluster up needs root (containerd, kubelet, iptables, mounts)")
    timings: dict[str, float] = {}
    if dc_cluster.is_healthy(paths):
        # Reused, but never with a stale image: the build is cached by source hash, so this is quick.
        log("cluster already running and healthy; reusing it with the current sources' images")
        dc_cluster.import_images(paths, dc_images.build_all(paths))
        print_env(paths)
        return 0
    if dc_cluster.leftovers(paths) or paths.state.exists():
        log("cleaning up a previous, unhealthy cluster")
        dc_cluster.stop_cluster(paths)
    with timed("host-packages", timings):
        ensure_host_packages()
    with timed("build-k8s", timings):
        build_k8s(paths)
    with timed("images", timings):
        archives = dc_images.build_all(paths)
    try:
        dc_cluster.start_cluster(paths, archives, timings)
    except BaseException:
        log(f"start failed; logs are in {paths.logs} (run `down` to clean up)")
        raise
    print_timings(timings, time.monotonic() - start)
    log(f"node {NODE_NAME} Ready")
    print_env(paths)
    return 0


def cmd_down(args: argparse.Namespace, paths: Paths) -> int:
    start = time.monotonic()
    stopped = dc_cluster.stop_cluster(paths)
    left = dc_cluster.leftovers(paths)
    log(f"stopped {', '.join(stopped) or 'nothing'} in {time.monotonic() - start:.1f}s")
    if left:
        log("still present: " + "; ".join(left))
        return 1
    return 0


def cmd_status(args: argparse.Namespace, paths: Paths) -> int:
    if use_current_context(args):
        ok = current_context_reachable()
        print(f"current context: {'reachable' if ok else 'NOT reachable'}")
        return 0 if ok else 1
    probes = dc_cluster.health_probes(paths)
    healthy = True
    for name in reversed(dc_cluster.COMPONENTS):
        pid = dc_procs.pid_of(paths, name)
        try:
            ok = pid is not None and probes[name]()
        except Exception:
            ok = False
        healthy &= ok
        print(f"{name:25} {'pid ' + str(pid) if pid else 'stopped':12} {'healthy' if ok else 'NOT healthy'}")
    try:
        ready = dc_cluster.node_ready(paths)
    except Exception:
        ready = False
    print(f"{'node ' + NODE_NAME:25} {'':12} {'Ready' if ready else 'NOT Ready'}")
    return 0 if healthy and ready else 1


def cmd_env(args: argparse.Namespace, paths: Paths) -> int:
    if use_current_context(args) and current_context_reachable():
        print(f"export KDP_RUNNER_IMAGE={RUNNER_IMAGE}")
        return 0
    print_env(paths)
    return 0


def cmd_build_images(args: argparse.Namespace, paths: Paths) -> int:
    start = time.monotonic()
    ensure_host_packages()
    # --spark and --console build that image alone (the others are built by `up` and plain build-images).
    if args.spark or args.console:
        archives = {dc_images.SPARK_IMAGE: dc_images.build_spark(paths)} if args.spark else {}
        if args.console:
            archives[dc_images.CONSOLE_IMAGE] = dc_images.build_console(paths)
    else:
        archives = dc_images.build_all(paths)
    if dc_procs.pid_of(paths, "containerd") is not None:
        dc_cluster.import_images(paths, archives)
        log("imported into the running cluster's containerd")
    for name, archive in archives.items():
        log(f"{name}: {archive}")
    log(f"build-images took {time.monotonic() - start:.1f}s")
    return 0


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env,
            "build-images": cmd_build_images}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devcluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--use-current-context", action="store_true",
                        help="use the cluster of the current kubeconfig context if it is reachable")
    parser.add_argument("--spark", action="store_true",
                        help="build-images: build (cached) and import the Spark image (spark-image/Dockerfile) only")
    parser.add_argument("--console", action="store_true",
                        help="build-images: build (cached) and import the console image (runner-image/Dockerfile, "
                             "target console) only")
    args = parser.parse_args(argv)
    if args.command in ("up", "down", "build-images") and os.geteuid() == 0:
        with machine_lock():
            return COMMANDS[args.command](args, default_paths())
    return COMMANDS[args.command](args, default_paths())


if __name__ == "__main__":
    sys.exit(main())
