"""``datapipeline-operator``: run the kopf operator (cluster-wide, or the namespaces in DATAPIPELINE_NAMESPACES)."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
from collections.abc import Iterable
from typing import Any

import kopf

from datapipeline.controller import metrics, pipelines, runs  # importing them registers their handlers
from datapipeline.controller.leader import Election, identity, lead
from datapipeline.controller.settings import SETTINGS
from datapipeline.k8s import async_api as writes
from datapipeline.k8s.jobs import LABEL_RUN


@kopf.on.startup()
async def threads(**_: Any) -> None:
    """Passes observe and decide in threads (asyncio.to_thread) and write on the event loop; a pass's rare reads
    (a cold cache after a restart) still wait in its thread: the default pool (cores + 4 threads) made 200
    Pipelines due at once wait for each other."""
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=SETTINGS.worker_threads, thread_name_prefix="pass"))


@kopf.on.cleanup()
async def stop_workers(**_: Any) -> None:
    """The workers first (a pass may be writing), then the async client they write with."""
    await runs.RUNS.stop_all()
    await pipelines.PIPELINES.stop_all()
    await writes.close()


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf builds a diff base (a deep copy of the whole body) on every watch event, for on.create/update/field
    handlers to compare against; the operator has none (event watchers, indexes and webhooks only), and that
    copy (and kopf clearing it) was nearly a fifth of its CPU under a burst of runs. Nothing is built, stored or read."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


# Filtered by the API server: only a run's Jobs and pods reach the operator (the handlers and indexes filter on
# the same label), so the cluster's other Jobs and pods cost it neither bandwidth nor parsing.
SERVER_SIDE_SELECTORS = {("batch", "v1", "jobs"): LABEL_RUN, ("", "v1", "pods"): LABEL_RUN}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Every handler is an event watcher or a webhook: kopf stores no progress or diff-base on our objects.
    settings.persistence.diffbase_storage = NoDiffBase()
    for resource, selector in SERVER_SIDE_SELECTORS.items():
        settings.watching.label_selectors[resource] = selector
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    if SETTINGS.webhook:
        settings.admission.server = webhook_server()
        settings.admission.managed = None  # the chart owns the configuration: no right on it needed here
    metrics.serve(SETTINGS.metrics_port)


def webhook_server() -> kopf.WebhookServer:
    """HTTPS with the chart's certificate when there is one (re-read when renewed), else kopf's own."""
    directory = SETTINGS.webhook_cert_dir
    if directory:
        return kopf.WebhookServer(addr="0.0.0.0", port=SETTINGS.webhook_port, host=SETTINGS.webhook_host,
                                  certfile=os.path.join(directory, "tls.crt"),
                                  pkeyfile=os.path.join(directory, "tls.key"))
    return kopf.WebhookServer(port=SETTINGS.webhook_port, host=SETTINGS.webhook_host)


class QuietSuccesses(logging.Filter):
    """kopf logs each handler call's success: for the event watchers, one line per watch event of every Job and
    run (5,600 lines for a burst of 500 runs), saying only that a worker was woken. Failures, retries and
    everything else still log; ``--verbose`` keeps these too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        message = record.getMessage()
        return not (message.startswith("Handler '") and message.endswith("' succeeded."))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="datapipeline-operator", description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", default=[], help="watch only these namespaces")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    namespaces = args.namespace or list(SETTINGS.namespaces)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.verbose:
        logging.getLogger("kopf.objects").addFilter(QuietSuccesses())
    liveness = f"http://0.0.0.0:{SETTINGS.liveness_port}/healthz" if SETTINGS.liveness_port else None
    if SETTINGS.leader_election:
        duration, renew, retry = SETTINGS.lease_seconds
        lead(Election(namespace=os.environ.get("POD_NAMESPACE") or (namespaces[0] if namespaces else "default"),
                      name=SETTINGS.leader_lease, identity=identity(), lease_seconds=duration,
                      renew_seconds=renew, retry_seconds=retry), SETTINGS.liveness_port)
    kopf.run(clusterwide=not namespaces, namespaces=namespaces, standalone=SETTINGS.standalone,
             liveness_endpoint=liveness)


if __name__ == "__main__":
    main()
