"""Leader election: several operator replicas, one acting (a coordination.k8s.io Lease).

The Kubernetes client's own elector holds the Lease (conditional updates on its resourceVersion, as
client-go does). A replica blocks in :func:`lead` until it holds the Lease, then starts the operator; a leader
that cannot renew within the renew deadline ends its process at once, before the Lease can expire and another
replica take over, so two replicas never act together. Nothing needs handing over: every name the operator
creates (runs, Jobs, TaskAttempts) is deterministic, so the new leader's first pass finds what the old one
made and goes on (docs/controller-caches.md).
"""

from __future__ import annotations

import http.server
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

from datapipeline.k8s import api

log = logging.getLogger("datapipeline.leader")


@dataclass(frozen=True)
class Election:
    namespace: str  # where the Lease lives (the operator's own namespace)
    name: str
    identity: str
    lease_seconds: int = 15
    renew_seconds: int = 10
    retry_seconds: int = 2


def identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def lead(election: Election, liveness_port: int = 0) -> None:
    """Blocks until this process holds the Lease; from then on a thread renews it, and losing it ends the
    process. While it waits, a standby answers the liveness probe so that it is not restarted."""
    from kubernetes.leaderelection import electionconfig, leaderelection
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    api.load()
    logging.getLogger("leaderelection").setLevel(logging.WARNING)  # it logs every retry at INFO
    standby = _standby_health(liveness_port) if liveness_port else None
    acquired = threading.Event()
    lock = LeaseLock(election.name, election.namespace, election.identity)  # type: ignore[no-untyped-call]
    config = electionconfig.Config(  # type: ignore[no-untyped-call]
        lock, election.lease_seconds, election.renew_seconds, election.retry_seconds,
        onstarted_leading=acquired.set, onstopped_leading=_lost)
    elector: Any = leaderelection.LeaderElection(config)  # type: ignore[no-untyped-call]
    log.info("%s waits for the Lease %s/%s", election.identity, election.namespace, election.name)
    threading.Thread(target=elector.run, name="leader-election", daemon=True).start()
    acquired.wait()
    log.info("%s leads (Lease %s/%s)", election.identity, election.namespace, election.name)
    if standby is not None:
        standby.shutdown()
        standby.server_close()  # the operator's own liveness endpoint takes the port


def _lost() -> None:
    log.error("the Lease could not be renewed: exiting, so that only one operator ever acts")
    logging.shutdown()
    os._exit(1)


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"standby\n")

    def log_message(self, format: str, *args: object) -> None:
        return


def _standby_health(port: int) -> http.server.HTTPServer:
    server = http.server.HTTPServer(("0.0.0.0", port), _Healthy)
    server.allow_reuse_address = True
    threading.Thread(target=server.serve_forever, name="standby-health", daemon=True).start()
    return server
