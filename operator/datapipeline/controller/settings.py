"""Operator settings from the environment (a fast clock for tests comes from here)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from datapipeline.core.limits import Limits


def _float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...]  # empty: cluster-wide
    # A Pipeline's worker looks again at its next due time and on every change (watch events); this resync is
    # only the safety net. 10 s for 1,000 idle Pipelines was 100 passes a second: 11% of a core for nothing.
    scheduler_interval: float
    resync_interval: float  # a run is reconciled at least this often
    missed_grace: timedelta  # missedRunPolicy Skip: a run due longer ago than this was missed
    metrics_port: int  # 0: no metrics endpoint
    liveness_port: int  # 0: no liveness endpoint
    webhook: bool  # serve the validating webhook
    webhook_host: str | None
    webhook_port: int
    webhook_cert_dir: str | None  # tls.crt and tls.key (the chart's Secret); kopf reloads them when they change
    standalone: bool
    worker_threads: int  # passes of runs and Pipelines in flight at once (each mostly waits on the API server)
    every_event: bool  # post an Event for every attempt's creation, start and end too (core/runstate.py)
    # Seconds a status write may wait for the next one: an attempt's start (derived again from its Job) and a
    # Pipeline's lastRun/health after its runs end. 0: write at once.
    status_delay: float
    # Seconds a status may wait while the pods contradict it or add nothing to it: a new run's first attempts'
    # pods not started ("waiting for a runner"), or an attempt's start when its pods have ended and the Job's
    # end is not yet written. Never less than status_delay.
    pending_status_limit: float
    leader_election: bool  # several replicas, one acting (controller/leader.py)
    leader_lease: str  # the Lease's name, in the operator's namespace
    lease_seconds: tuple[int, int, int]  # lease duration, renew deadline, retry period
    limits: Limits  # input limits; the administrator sets the minimum schedule period


def load() -> Settings:
    namespaces = tuple(n.strip() for n in os.environ.get("DATAPIPELINE_NAMESPACES", "").split(",") if n.strip())
    return Settings(
        namespaces=namespaces,
        scheduler_interval=_float("DATAPIPELINE_SCHEDULER_INTERVAL", 300.0),
        resync_interval=_float("DATAPIPELINE_RESYNC_INTERVAL", 30.0),
        missed_grace=timedelta(seconds=_float("DATAPIPELINE_MISSED_GRACE_SECONDS", 60.0)),
        metrics_port=int(_float("DATAPIPELINE_METRICS_PORT", 8080)),
        liveness_port=int(_float("DATAPIPELINE_LIVENESS_PORT", 8081)),
        webhook=_bool("DATAPIPELINE_WEBHOOK", False),
        webhook_host=os.environ.get("DATAPIPELINE_WEBHOOK_HOST") or None,
        webhook_port=int(_float("DATAPIPELINE_WEBHOOK_PORT", 9443)),
        webhook_cert_dir=os.environ.get("DATAPIPELINE_WEBHOOK_CERT_DIR") or None,
        standalone=_bool("DATAPIPELINE_STANDALONE", True),
        worker_threads=max(1, int(_float("DATAPIPELINE_WORKER_THREADS", 32))),
        every_event=os.environ.get("DATAPIPELINE_EVENTS", "milestones").strip().lower() == "all",
        status_delay=max(0.0, _float("DATAPIPELINE_STATUS_DELAY", 5.0)),
        pending_status_limit=max(0.0, _float("DATAPIPELINE_PENDING_STATUS_SECONDS", 30.0)),
        leader_election=_bool("DATAPIPELINE_LEADER_ELECTION", False),
        leader_lease=os.environ.get("DATAPIPELINE_LEADER_LEASE") or "kube-datapipeline-operator",
        lease_seconds=_lease_seconds(os.environ.get("DATAPIPELINE_LEASE_SECONDS", "")),
        limits=Limits.from_environ(os.environ),
    )


def _lease_seconds(text: str) -> tuple[int, int, int]:
    """"duration,renew,retry" (default 15,10,2, client-go's); the elector needs duration > renew > 1.2 retry."""
    try:
        duration, renew, retry = (int(x) for x in text.split(","))
    except ValueError:
        return 15, 10, 2
    if retry >= 1 and renew > 1.2 * retry and duration > renew:
        return duration, renew, retry
    return 15, 10, 2


SETTINGS = load()
