"""The executor pods of a mode kubernetes driver (docs/spark.md): their logs into the attempt's log, then their
removal. A thin adapter over the Kubernetes API, called by the runner in the driver's pod after each launch, and
when the attempt is stopped (cancel, timeout) within the pod's grace period.

Spark is told to keep its executor pods when it stops (``spark.kubernetes.executor.deleteOnTermination=false``)
so that their logs can be read here; the pods are deleted right after. Should the runner die first, they are
still owned by the driver's pod and go with its Job.
"""

from __future__ import annotations

import time
from typing import Any

from datapipeline.core.sparkconf import LABEL_SPARK_DRIVER, DriverPod
from datapipeline.runner.log import get

log = get("spark")
MAX_LINES = 500  # per executor: the end of its log, where a failure shows
SETTLE_SECONDS = 20.0  # how long to wait for executors to exit after their driver stopped


def collect(driver: DriverPod, what: str, settle_seconds: float = SETTLE_SECONDS) -> None:
    """Logs the executors' own logs (the last MAX_LINES lines each) and deletes the executor pods; waits up to
    ``settle_seconds`` for them to exit first."""
    try:
        from kubernetes import client
        from kubernetes import config as _config

        config: Any = _config
        config.load_incluster_config()  # the driver's pod: the service account's token (mode kubernetes needs one)
        core = client.CoreV1Api()
        selector = f"{LABEL_SPARK_DRIVER}={driver.name}"
        pods = _settled(core, driver.namespace, selector, settle_seconds)
        for pod in pods:
            name = pod.metadata.name
            text = core.read_namespaced_pod_log(name, driver.namespace, container=pod.spec.containers[0].name,
                                                tail_lines=MAX_LINES) or ""
            lines = text.splitlines()
            log.info("%s: executor pod %s (%s), %d log line(s)%s", what, name, pod.status.phase, len(lines),
                     ":" if lines else "")
            for line in lines:
                log.info("executor %s: %s", name.rsplit("-", 1)[-1], line)
        if pods:
            core.delete_collection_namespaced_pod(driver.namespace, label_selector=selector)
    except Exception as e:  # the attempt's outcome is the application's, not this bookkeeping's
        log.warning("%s: the executor pods' logs could not be collected: %s", what, _short(e))


def _settled(core: Any, namespace: str, selector: str, settle_seconds: float) -> list[Any]:
    deadline = time.monotonic() + settle_seconds
    while True:
        pods = sorted(core.list_namespaced_pod(namespace, label_selector=selector).items,
                      key=lambda p: p.metadata.name)
        if all(p.status.phase in ("Succeeded", "Failed") for p in pods) or time.monotonic() > deadline:
            return pods
        time.sleep(1)


def _short(error: Exception) -> str:
    status, reason = getattr(error, "status", None), getattr(error, "reason", None)
    return f"{status} {reason}" if status else str(error).splitlines()[0][:300]
