"""Configuration files of the cluster's components, written into the state directory."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from dc_common import (
    APISERVER_PORT,
    BRIDGE,
    NODE_IP,
    NODE_NAME,
    PAUSE_IMAGE,
    POD_CIDR,
    SERVICE_CIDR,
    Paths,
)

SERVER = f"https://{NODE_IP}:{APISERVER_PORT}"


def kubeconfig(paths: Paths, user: str, *, embed: bool = False) -> dict[str, object]:
    """A kubeconfig for one client certificate of the PKI; `embed` makes it self-contained."""
    pki = paths.pki

    def ref(kind: str, path: Path) -> dict[str, str]:
        if embed:
            return {f"{kind}-data": base64.b64encode(path.read_bytes()).decode()}
        return {kind: str(path)}

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kdp", "cluster": {"server": SERVER, **ref("certificate-authority", pki / "ca.crt")}}],
        "users": [{"name": user, "user": {**ref("client-certificate", pki / f"{user}.crt"),
                                          **ref("client-key", pki / f"{user}.key")}}],
        "contexts": [{"name": "kdp", "context": {"cluster": "kdp", "user": user}}],
        "current-context": "kdp",
    }


def containerd_config(paths: Paths) -> str:
    state = paths.state / "containerd"
    # The runc root and the pods' network namespaces live under the state directory too,
    # so `down` finds every mount the runtime made under one path.
    return f"""version = 2
root = "{state / 'root'}"
state = "{state / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{paths.containerd_sock}"

[ttrpc]
  address = "{paths.containerd_sock}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{state / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  netns_mounts_under_state_dir = true
  # These VMs run without CAP_SYS_RESOURCE, so nothing may lower its oom_score_adj
  # below the parent's (the pause container asks for -998, and runc fails with
  # "failed to update /proc/self/oom_score_adj: Permission denied").
  restrict_oom_score_adj = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{paths.runc_root}"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{paths.state / 'cni' / 'net.d'}"
"""


def cni_config(paths: Paths) -> str:
    # No default route and no masquerading: a pod reaches its bridge (other pods and
    # the host's address on it, where the API server listens) and the Service range,
    # which kube-proxy maps back onto the bridge. Nothing else is routable from a pod.
    gateway = NODE_IP
    return json.dumps({
        "cniVersion": "0.4.0",
        "name": "kdp",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": POD_CIDR, "gateway": gateway}]],
                "routes": [{"dst": SERVICE_CIDR}],
                "dataDir": str(paths.state / "cni" / "networks"),
            },
        }],
    }, indent=2)


def kubelet_config(paths: Paths) -> str:
    pki = paths.pki
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet.key"),
        "containerRuntimeEndpoint": f"unix://{paths.containerd_sock}",
        # These machines have cgroup v1 and no systemd: v1.34 still runs on v1 when told so.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDomain": "cluster.local",
        "resolvConf": "/etc/resolv.conf",
        # Images are imported, never pulled: garbage-collecting them would break the
        # cluster, and a test machine's disk use should not evict test pods.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "serializeImagePulls": False,
        "podCIDR": POD_CIDR,
        "maxPods": 110,
        "nodeStatusReportFrequency": "10s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(paths: Paths) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(paths.state / "kube-proxy.kubeconfig")},
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # Zeros: leave the host's conntrack table size and timeouts alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_all(paths: Paths) -> None:
    s = paths.state
    for d in ("containerd", "cni/net.d", "cni/networks", "kubelet", "etcd", "logs", "run"):
        (s / d).mkdir(parents=True, exist_ok=True)
    (s / "containerd" / "config.toml").write_text(containerd_config(paths))
    (s / "cni" / "net.d" / "10-kdp.conflist").write_text(cni_config(paths))
    (s / "kubelet" / "config.yaml").write_text(kubelet_config(paths))
    (s / "kube-proxy.yaml").write_text(kube_proxy_config(paths))
    for user, name in (("controller-manager", "controller-manager"), ("scheduler", "scheduler"),
                       ("kube-proxy", "kube-proxy"), ("kubelet-client", "kubelet")):
        (s / f"{name}.kubeconfig").write_text(yaml.safe_dump(kubeconfig(paths, user)))
    paths.kubeconfig.write_text(yaml.safe_dump(kubeconfig(paths, "admin", embed=True)))
    paths.kubeconfig.chmod(0o600)
    (s / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))


# The API server's audit log (state/logs/audit.log) records who calls what on the objects the project touches,
# at Metadata level (no bodies: never a Secret's value): benchmarks/api_cost.py counts requests from it.
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "resources": [
            {"group": "datapipeline.io"}, {"group": "batch", "resources": ["jobs", "jobs/status"]},
            {"group": "", "resources": ["pods", "pods/log", "pods/status", "events"]},
            {"group": "events.k8s.io", "resources": ["events"]},
            {"group": "coordination.k8s.io", "resources": ["leases"]}]},
        {"level": "None"}],
}
