"""Starts, checks and tears down the single-node cluster (see devcluster.py for the CLI)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import dc_config
import dc_procs
from dc_common import (
    BRIDGE,
    ETCD_CLIENT,
    ETCD_PEER,
    NODE_IP,
    NODE_NAME,
    POD_CIDR,
    SERVICE_CIDR,
    Paths,
    run,
    timed,
    wait_for,
)
from dc_pki import ensure_pki

# Stop order of `down`; `up` starts them roughly in reverse.
COMPONENTS = ("kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager", "containerd",
              "kube-apiserver", "etcd")
GUARD_CHAIN = "KDP-FORWARD"
# Set by `up`; restored by `down` with the kernel tunables the kubelet sets on start
# (it would refuse to start with protectKernelDefaults instead).
SYSCTLS_SET = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}
SYSCTLS_SAVED = (*SYSCTLS_SET, "vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
SHIM_SOCKET_DIR = Path("/run/containerd/s")
# One dev cluster per machine (one bridge, fixed ports): this records whose it is.
OWNER_FILE = Path("/run/kdp-devcluster.owner")


def component_env(paths: Paths) -> dict[str, str]:
    path = f"{paths.k8s_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


# --- API access with the admin certificate (stdlib only, usable before any client is installed)


def _ssl_context(paths: Paths) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(paths.pki / "ca.crt"))
    ctx.load_cert_chain(str(paths.pki / "admin.crt"), str(paths.pki / "admin.key"))
    return ctx


def api_get(paths: Paths, path: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(f"{dc_config.SERVER}{path}", context=_ssl_context(paths),
                                timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def node_ready(paths: Paths) -> bool:
    node = json.loads(api_get(paths, f"/api/v1/nodes/{NODE_NAME}"))
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _http_ok(url: str, insecure: bool = False) -> bool:
    # Only for the components' own health endpoints on loopback, whose serving
    # certificates are self-signed by the component at start.
    ctx = ssl._create_unverified_context() if insecure else None
    with urllib.request.urlopen(url, context=ctx, timeout=3) as resp:
        return bool(resp.status == 200)


def health_probes(paths: Paths) -> dict[str, Callable[[], bool]]:
    return {
        "etcd": lambda: _http_ok(f"{ETCD_CLIENT}/health"),
        "kube-apiserver": lambda: api_get(paths, "/readyz") == b"ok",
        "containerd": lambda: ctr(paths, "version", check=False).returncode == 0,
        "kube-controller-manager": lambda: _http_ok("https://127.0.0.1:10257/healthz", insecure=True),
        "kube-scheduler": lambda: _http_ok("https://127.0.0.1:10259/healthz", insecure=True),
        "kubelet": lambda: _http_ok("http://127.0.0.1:10248/healthz"),
        "kube-proxy": lambda: _http_ok("http://127.0.0.1:10256/healthz"),
    }


def ctr(paths: Paths, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["ctr", "--address", str(paths.containerd_sock), "--namespace", "k8s.io", *args],
               check=check, capture=True)


# --- component command lines


def argv_for(paths: Paths, name: str) -> list[str]:
    s, pki, b = paths.state, paths.pki, paths.k8s_bin
    kc = {c: str(s / f"{c}.kubeconfig") for c in ("controller-manager", "scheduler")}
    table: dict[str, list[str]] = {
        "etcd": [str(b / "etcd"), "--name=kdp", f"--data-dir={s / 'etcd'}",
                 f"--listen-client-urls={ETCD_CLIENT}", f"--advertise-client-urls={ETCD_CLIENT}",
                 f"--listen-peer-urls={ETCD_PEER}", f"--initial-advertise-peer-urls={ETCD_PEER}",
                 f"--initial-cluster=kdp={ETCD_PEER}", "--log-level=warn",
                 # A throwaway test cluster: durability is not worth an fsync per write.
                 "--unsafe-no-fsync"],
        "kube-apiserver": [
            str(b / "kube-apiserver"), f"--etcd-servers={ETCD_CLIENT}",
            f"--bind-address={NODE_IP}", f"--advertise-address={NODE_IP}", "--secure-port=6443",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true", "--profiling=false",
            f"--audit-policy-file={s / 'audit-policy.yaml'}", f"--audit-log-path={paths.logs / 'audit.log'}",
            "--audit-log-maxsize=100", "--audit-log-maxbackup=3", "--audit-log-format=json"],
        "kube-controller-manager": [
            str(b / "kube-controller-manager"), f"--kubeconfig={kc['controller-manager']}",
            f"--authentication-kubeconfig={kc['controller-manager']}",
            f"--authorization-kubeconfig={kc['controller-manager']}",
            "--bind-address=127.0.0.1", "--leader-elect=false", "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false"],
        "kube-scheduler": [
            str(b / "kube-scheduler"), f"--kubeconfig={kc['scheduler']}",
            f"--authentication-kubeconfig={kc['scheduler']}", f"--authorization-kubeconfig={kc['scheduler']}",
            "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"],
        "kubelet": [
            str(b / "kubelet"), f"--config={s / 'kubelet' / 'config.yaml'}",
            f"--kubeconfig={s / 'kubelet.kubeconfig'}", f"--root-dir={s / 'kubelet' / 'root'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={NODE_IP}"],
        "kube-proxy": [str(b / "kube-proxy"), f"--config={s / 'kube-proxy.yaml'}"],
        "containerd": ["/usr/bin/containerd", "--config", str(s / "containerd" / "config.toml")],
    }
    return table[name]


def _start(paths: Paths, name: str) -> None:
    dc_procs.start(paths, name, argv_for(paths, name), env=component_env(paths))


def _wait_healthy(paths: Paths, name: str, timeout: float) -> None:
    probe = health_probes(paths)[name]
    deadline = time.monotonic() + timeout
    gone_since: float | None = None
    while True:
        # A component is "exited" only when it stays gone for 2 s: right after a fresh `up` a live etcd was
        # once reported gone by a single look (and the next `up` then worked), failing CI for nothing.
        if dc_procs.pid_of(paths, name) is None:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > 2:
                raise RuntimeError(f"{name} exited; see {paths.logs / (name + '.log')}:\n{tail_log(paths, name)}")
        else:
            gone_since = None
        try:
            if probe():
                return
        except Exception:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not healthy after {timeout:.0f}s:\n{tail_log(paths, name)}")
        time.sleep(0.2)


def tail_log(paths: Paths, name: str, lines: int = 25) -> str:
    try:
        return "\n".join((paths.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- host network: the bridge, forwarding limited to it


def _read_sysctl(key: str) -> str:
    return Path("/proc/sys", key).read_text().strip()


def _write_sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key).write_text(value)


# A Linux bridge without a MAC of its own takes the lowest MAC of its ports, so it changes whenever a
# pod's veth comes or goes; running pods keep the old gateway MAC in their ARP cache and lose the host
# (MinIO, PostgreSQL) for up to a minute. A fixed, locally administered MAC keeps the gateway stable.
BRIDGE_MAC = "02:6b:64:70:00:01"


def setup_network(paths: Paths) -> None:
    if not Path(f"/sys/class/net/{BRIDGE}").exists():
        run(["ip", "link", "add", BRIDGE, "address", BRIDGE_MAC, "type", "bridge"])
    if Path(f"/sys/class/net/{BRIDGE}/address").read_text().strip() != BRIDGE_MAC:
        run(["ip", "link", "set", BRIDGE, "address", BRIDGE_MAC])
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE], capture=True).stdout
    if f" {NODE_IP}/" not in addrs:
        run(["ip", "addr", "add", f"{NODE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    tables = paths.run / "nft-tables.orig"
    if not tables.exists():
        tables.write_text("\n".join(_nft_tables()))
    saved = paths.run / "sysctl.orig"
    if not saved.exists():
        saved.write_text(json.dumps({k: _read_sysctl(k) for k in SYSCTLS_SAVED if Path("/proc/sys", k).exists()}))
    # Forwarding is needed for pod -> Service -> pod on the bridge; the guard chain
    # drops anything forwarded into or out of the bridge from elsewhere.
    for key, value in SYSCTLS_SET.items():
        if Path("/proc/sys", key).exists():
            _write_sysctl(key, value)
    _install_guard()


def _iptables(*args: str, check: bool = True) -> bool:
    return run(["iptables", "-w", *args], check=check, capture=True).returncode == 0


def _install_guard() -> None:
    if not _iptables("-N", GUARD_CHAIN, check=False):
        _iptables("-F", GUARD_CHAIN)
    _iptables("-A", GUARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN")
    _iptables("-A", GUARD_CHAIN, "-i", BRIDGE, "-j", "DROP")
    _iptables("-A", GUARD_CHAIN, "-o", BRIDGE, "-j", "DROP")
    if not _iptables("-C", "FORWARD", "-j", GUARD_CHAIN, check=False):
        _iptables("-I", "FORWARD", "1", "-j", GUARD_CHAIN)


def _remove_chains(tool: str, prefixes: tuple[str, ...]) -> None:
    """Deletes our chains (and the rules jumping to them); the kubelet's KUBE-FIREWALL and
    canaries are not removed by `kube-proxy --cleanup`."""
    if not shutil.which(tool):
        return
    for table in ("filter", "nat", "mangle", "raw"):
        dump = run([f"{tool}-save", "-t", table], check=False, capture=True).stdout.splitlines()
        ours = [line[1:].split()[0] for line in dump if line.startswith(":") and line[1:].startswith(prefixes)]
        for line in dump:
            words = line.split()
            if line.startswith("-A ") and "-j" in words and words[words.index("-j") + 1] in ours:
                run([tool, "-w", "-t", table, "-D", *words[1:]], check=False, capture=True)
        for flag in ("-F", "-X"):
            for chain in ours:
                run([tool, "-w", "-t", table, flag, chain], check=False, capture=True)


def _nft_tables() -> list[str]:
    if not shutil.which("nft"):
        return []
    return run(["nft", "list", "tables"], check=False, capture=True).stdout.splitlines()


def _remove_new_nft_tables(paths: Paths) -> None:
    # iptables-nft creates a table the first time a rule is added to it; drop the
    # ones that did not exist before `up` (all our rules are gone by now).
    saved = paths.run / "nft-tables.orig"
    if not saved.exists():
        return
    before = set(saved.read_text().splitlines())
    for table in _nft_tables():
        if table not in before and table.startswith("table "):
            run(["nft", "delete", *table.split()[:3]], check=False, capture=True)


def teardown_network(paths: Paths) -> None:
    kube_proxy = paths.k8s_bin / "kube-proxy"
    if kube_proxy.exists():
        # Removes every KUBE-* chain and rule kube-proxy made.
        run([str(kube_proxy), "--cleanup", "--v=0"], check=False, capture=True)
    for tool in ("iptables", "ip6tables"):
        _remove_chains(tool, ("KUBE-", "KDP-"))
    _remove_new_nft_tables(paths)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        run(["ip", "link", "delete", BRIDGE, "type", "bridge"], check=False)
    saved = paths.run / "sysctl.orig"
    if saved.exists():
        for key, value in json.loads(saved.read_text()).items():
            _write_sysctl(key, value)


# --- images into containerd


def import_images(paths: Paths, archives: dict[str, Path]) -> None:
    marker_dir = paths.run / "imported"
    marker_dir.mkdir(parents=True, exist_ok=True)
    for name, archive in archives.items():
        marker = marker_dir / hashlib.sha256(name.encode()).hexdigest()[:16]
        if marker.exists() and marker.read_text() == str(archive):
            continue
        ctr(paths, "images", "import", str(archive))
        marker.write_text(str(archive))


# --- up / down / status


def is_healthy(paths: Paths) -> bool:
    if not paths.kubeconfig.exists():
        return False
    probes = health_probes(paths)
    for name in COMPONENTS:
        if dc_procs.pid_of(paths, name) is None:
            return False
        try:
            if not probes[name]():
                return False
        except Exception:
            return False
    try:
        return node_ready(paths)
    except Exception:
        return False


def start_cluster(paths: Paths, archives: dict[str, Path], timings: dict[str, float]) -> None:
    """Starts every component on a clean state directory and waits for the node to be Ready."""
    check_owner(paths)
    with timed("pki+config", timings):
        paths.state.mkdir(parents=True, exist_ok=True)
        OWNER_FILE.write_text(str(paths.state))
        paths.run.mkdir(parents=True, exist_ok=True)
        ensure_pki(paths.pki)
        dc_config.write_all(paths)
        setup_network(paths)
    with timed("etcd+apiserver", timings):
        _start(paths, "etcd")
        _start(paths, "containerd")
        _wait_healthy(paths, "etcd", 30)
        _start(paths, "kube-apiserver")
        _wait_healthy(paths, "containerd", 30)
        importer = _ImportThread(paths, archives)
        importer.start()
        _start(paths, "kubelet")
        _wait_healthy(paths, "kube-apiserver", 90)
    with timed("controllers", timings):
        for name in ("kube-controller-manager", "kube-scheduler", "kube-proxy"):
            _start(paths, name)
        for name in ("kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"):
            _wait_healthy(paths, name, 60)
    with timed("node-ready", timings):
        wait_for("node Ready", lambda: node_ready(paths), 90)
        wait_for("default ServiceAccount", lambda: bool(api_get(paths, "/api/v1/namespaces/default/serviceaccounts/default")), 60)
    with timed("image-import-wait", timings):
        importer.join()
        if importer.error:
            raise importer.error


class _ImportThread(threading.Thread):
    """Imports images while the control plane starts (the two do not depend on each other)."""

    def __init__(self, paths: Paths, archives: dict[str, Path]) -> None:
        super().__init__(daemon=True)
        self.paths, self.archives = paths, archives
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            import_images(self.paths, self.archives)
        except BaseException as exc:
            self.error = exc


def stop_cluster(paths: Paths) -> list[str]:
    """Stops everything `start_cluster` started and removes the state; returns what it stopped."""
    stopped = [name for name in COMPONENTS[:4] if dc_procs.stop(paths, name)]
    shim_ids = _shim_ids(paths)
    if dc_procs.stop(paths, "containerd"):
        stopped.append("containerd")
    for pid in dc_procs.pids_with_arg(str(paths.containerd_sock)):
        dc_procs.stop_pid(pid, timeout=0)
    _force_delete_containers(paths)
    _remove_shim_sockets(paths, shim_ids)
    _remove_cgroups()
    stopped += [name for name in COMPONENTS[5:] if dc_procs.stop(paths, name)]
    if owner() in (None, str(paths.state)):  # the bridge and rules are the running cluster's
        teardown_network(paths)
    unmount_under(paths.state)
    shutil.rmtree(paths.state, ignore_errors=True)
    if owner() == str(paths.state):
        OWNER_FILE.unlink(missing_ok=True)
    return stopped


def owner() -> str | None:
    try:
        return OWNER_FILE.read_text().strip()
    except OSError:
        return None


def check_owner(paths: Paths) -> None:
    """Refuses to start a second cluster (another state directory) on this machine."""
    other = owner()
    if other and other != str(paths.state) and Path(other).exists():
        raise SystemExit(f"another dev cluster runs from {other}; stop it first: "
                         f"KDP_CLUSTER_DIR={other} python {Path(__file__).parent / 'devcluster.py'} down")


def _shim_ids(paths: Paths) -> list[tuple[str, str]]:
    """(namespace, id) of each of our containerd's shims, to find their sockets afterwards."""
    found = []
    for pid in dc_procs.pids_with_arg(str(paths.containerd_sock)):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "-id" in args and "-namespace" in args:
            found.append((args[args.index("-namespace") + 1], args[args.index("-id") + 1]))
    return found


def _remove_shim_sockets(paths: Paths, shim_ids: list[tuple[str, str]]) -> None:
    # containerd 1.6 names a shim's socket sha256(<containerd address>/<namespace>/<id>)
    # under /run/containerd/s; a killed shim leaves it behind.
    for namespace, shim_id in shim_ids:
        digest = hashlib.sha256(f"{paths.containerd_sock}/{namespace}/{shim_id}".encode()).hexdigest()
        (SHIM_SOCKET_DIR / digest).unlink(missing_ok=True)


def _force_delete_containers(paths: Paths) -> None:
    """Kills containers whose shim is gone: runc still knows them under our runc root."""
    if not paths.runc_root.is_dir():
        return
    for ns_root in paths.runc_root.iterdir():
        listing = run(["runc", "--root", str(ns_root), "list", "-q"], check=False, capture=True).stdout
        for cid in listing.split():
            run(["runc", "--root", str(ns_root), "delete", "--force", cid], check=False, capture=True)


def _remove_cgroups() -> None:
    """Removes the (now empty) kubepods cgroups the kubelet made in each v1 hierarchy."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / "kubepods"
        if not top.is_dir():
            continue
        for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir_quiet(path)
        _rmdir_quiet(top)


def _rmdir_quiet(path: Path) -> None:
    with contextlib.suppress(OSError):  # still busy or already gone: leave it
        path.rmdir()


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if (mount_point + "/").startswith(prefix):
            found.append(mount_point)
    return found


def unmount_under(root: Path) -> None:
    if not root.exists():
        return
    for _ in range(5):  # stacked mounts need several passes
        points = sorted(set(mounts_under(root)), key=len, reverse=True)
        if not points:
            return
        for point in points:
            if run(["umount", point], check=False, capture=True).returncode != 0:
                run(["umount", "-l", point], check=False, capture=True)
    left = mounts_under(root)
    if left:
        raise RuntimeError(f"could not unmount: {left}")


def leftovers(paths: Paths) -> list[str]:
    """What of the cluster is still on this machine (processes, mounts, bridge); empty after `down`."""
    found = [f"process {name} pid {pid}" for name in COMPONENTS
             if (pid := dc_procs.pid_of(paths, name)) is not None]
    found += [f"process pid {pid} (uses our containerd)" for pid in dc_procs.pids_with_arg(str(paths.containerd_sock))]
    found += [f"mount {m}" for m in mounts_under(paths.state)] if paths.state.exists() else []
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        found.append(f"bridge {BRIDGE}")
    return found
