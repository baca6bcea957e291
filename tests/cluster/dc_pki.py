"""The cluster's PKI with the openssl CLI: one CA, serving and client certificates, SA keys.

ECDSA P-256 keys: as good as RSA for this and about a hundred times faster to generate.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from dc_common import NODE_IP, NODE_NAME, SERVICE_IP, run

DAYS = "3650"


@dataclass(frozen=True)
class Cert:
    name: str
    cn: str
    org: str = ""
    server: bool = False
    sans: tuple[str, ...] = ()


CERTS = (
    Cert("apiserver", "kube-apiserver", server=True, sans=(
        f"IP:{NODE_IP}", "IP:127.0.0.1", f"IP:{SERVICE_IP}", "DNS:localhost", "DNS:kubernetes",
        "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local")),
    Cert("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
    Cert("admin", "kubernetes-admin", "system:masters"),
    Cert("controller-manager", "system:kube-controller-manager"),
    Cert("scheduler", "system:kube-scheduler"),
    Cert("kube-proxy", "system:kube-proxy"),
    Cert("kubelet-client", f"system:node:{NODE_NAME}", "system:nodes"),
    Cert("kubelet", NODE_NAME, server=True, sans=(f"IP:{NODE_IP}", "IP:127.0.0.1", f"DNS:{NODE_NAME}")),
)


def _key(path: Path) -> None:
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path],
        capture=True)
    path.chmod(0o600)


def _subject(cert: Cert) -> str:
    return f"/O={cert.org}/CN={cert.cn}" if cert.org else f"/CN={cert.cn}"


def _extensions(cert: Cert) -> str:
    usage = "serverAuth" if cert.server else "clientAuth"
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if cert.sans:
        lines.append("subjectAltName=" + ",".join(cert.sans))
    return "\n".join(lines) + "\n"


def _issue(pki: Path, cert: Cert) -> None:
    key, crt = pki / f"{cert.name}.key", pki / f"{cert.name}.crt"
    ext = pki / f"{cert.name}.ext"
    _key(key)
    ext.write_text(_extensions(cert))
    csr = run(["openssl", "req", "-new", "-key", key, "-subj", _subject(cert)], capture=True).stdout
    run(["openssl", "x509", "-req", "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
         "-set_serial", f"0x{secrets.token_hex(16)}", "-days", DAYS, "-extfile", ext, "-out", crt],
        capture=True, input_text=csr)
    ext.unlink()


def ensure_pki(pki: Path) -> None:
    """Creates whatever is missing; existing keys are kept so running components stay valid."""
    pki.mkdir(parents=True, exist_ok=True)
    if not (pki / "ca.crt").exists():
        _key(pki / "ca.key")
        run(["openssl", "req", "-x509", "-new", "-key", pki / "ca.key", "-subj", "/CN=kdp-cluster-ca",
             "-days", DAYS, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
             "-out", pki / "ca.crt"], capture=True)
    for cert in CERTS:
        if not (pki / f"{cert.name}.crt").exists():
            _issue(pki, cert)
    if not (pki / "sa.pub").exists():
        _key(pki / "sa.key")
        run(["openssl", "pkey", "-in", pki / "sa.key", "-pubout", "-out", pki / "sa.pub"], capture=True)
