"""Prometheus metrics of the operator."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RUNS = Counter("datapipeline_runs_finished_total", "PipelineRuns that reached a final phase", ["namespace", "pipeline", "phase"])
RUNS_CREATED = Counter("datapipeline_runs_scheduled_total", "PipelineRuns created by the scheduler",
                       ["namespace", "pipeline"])
ATTEMPTS = Counter("datapipeline_attempts_total", "Activity attempts by outcome", ["namespace", "pipeline", "status"])
ACTIVE_RUNS = Gauge("datapipeline_active_runs", "Runs not yet finished", ["namespace", "pipeline"])
QUEUE_DEPTH = Gauge("datapipeline_queue_depth", "Due intervals held back by maxActiveRuns", ["namespace", "pipeline"])
SCHEDULE_LAG = Histogram("datapipeline_schedule_lag_seconds", "Run creation time minus its due time",
                         ["namespace", "pipeline"], buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600))
RECONCILE = Histogram("datapipeline_reconcile_seconds", "Time of one reconcile step of a run",
                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
JOBS_CREATED = Counter("datapipeline_jobs_created_total", "Jobs created", ["namespace", "kind"])

_started = False


def serve(port: int) -> None:
    global _started
    if port and not _started:
        start_http_server(port)
        _started = True
