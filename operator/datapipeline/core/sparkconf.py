"""A ClusterProfile (and its EmrConfiguration list) as Spark settings. Pure: no I/O.

docs/spark.md has the table this implements. ``spark_settings`` takes the profile's resolved fields (the
TaskSpec's ``cluster``) and the pipeline's AWS settings and returns the master, the Spark configuration,
the Hadoop configuration (written as ``core-site.xml`` for Spark and plain Hadoop jars alike), the
environment, and warnings for what was ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datapipeline.core.task import AwsSpec, DataFormatSpec

MODE_LOCAL = "local"
MODE_KUBERNETES = "kubernetes"
KUBERNETES_MASTER = "k8s://https://kubernetes.default.svc"
MiB = 1024 * 1024
# What the pod needs besides the JVM heap (metaspace, threads, Python, the runner): Spark's own rule for
# executors is max(384 MiB, 10 %); the driver's pod also holds the runner and a Python driver, hence 25 %.
MIN_OVERHEAD_MIB = 384
DRIVER_OVERHEAD_SHARE = 0.25
EXECUTOR_OVERHEAD_SHARE = 0.10
MIN_HEAP_MIB = 128
# Spark refuses an executor whose heap is under 1.5 x its 300 MiB reserve (UnifiedMemoryManager).
MIN_EXECUTOR_HEAP_MIB = 450

HADOOP_CLASSIFICATIONS = frozenset({"core-site", "hdfs-site", "mapred-site", "yarn-site", "hive-site",
                                    "spark-hive-site"})
ENV_CLASSIFICATIONS = frozenset({"spark-env", "hadoop-env"})
# Keys a configuration may not set: the profile decides where Spark runs.
PROFILE_KEYS = frozenset({"spark.master", "spark.submit.deployMode",
                          # mode kubernetes: where the driver is, and that its executors are owned by its pod and
                          # made from the runner's locked-down template with only the calls the Role grants
                          "spark.kubernetes.driver.pod.name", "spark.kubernetes.namespace",
                          "spark.kubernetes.executor.podTemplateFile", "spark.driver.host", "spark.driver.bindAddress",
                          "spark.kubernetes.executor.disableConfigMap",
                          "spark.kubernetes.driver.ownPersistentVolumeClaim",
                          "spark.kubernetes.driver.reusePersistentVolumeClaim",
                          "spark.kubernetes.driver.service.deleteOnTermination",
                          "spark.kubernetes.executor.deleteOnTermination"})
S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem"

_QUANTITY = re.compile(r"\+?(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")
_FACTORS: dict[str, float] = {
    "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}


class SparkConfError(ValueError):
    """The profile cannot be turned into Spark settings; the message names the field."""


@dataclass(frozen=True)
class SparkSettings:
    master: str
    conf: Mapping[str, str] = field(default_factory=dict)  # --conf key=value
    hadoop: Mapping[str, str] = field(default_factory=dict)  # core-site.xml properties
    env: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    driver_heap_mib: int | None = None  # also the -Xmx of a plain jar's JVM


def quantity(text: Any, where: str) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``1Gi``) as a number."""
    match = _QUANTITY.fullmatch(str(text).strip())
    if match is None:
        raise SparkConfError(f"{where}: {text!r} is not a Kubernetes quantity (like 500m, 2, 512Mi or 1Gi)")
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * 10.0 ** int(suffix[1:])
    return number * _FACTORS[suffix]


def heap_mib(memory: Any, share: float, where: str, minimum: int = MIN_HEAP_MIB) -> int:
    """The JVM heap that fits a pod of ``memory``, leaving max(384 MiB, share) for the rest."""
    total = quantity(memory, where) / MiB
    heap = int(total - max(MIN_OVERHEAD_MIB, total * share))
    if heap < minimum:
        raise SparkConfError(f"{where}: {memory} leaves no room for a JVM heap of at least {minimum} MiB "
                             f"besides the {MIN_OVERHEAD_MIB} MiB overhead; give at least "
                             f"{minimum + MIN_OVERHEAD_MIB}Mi")
    return heap


def cores(cpu: Any, where: str) -> int:
    """Whole cores for Spark's thread counts: at least one, rounded up."""
    return max(1, math.ceil(quantity(cpu, where) - 1e-9))


def spark_settings(profile: Mapping[str, Any], aws: AwsSpec, name: str = "cluster profile") -> SparkSettings:
    """docs/spark.md's table: the profile's mode and sizes, its configuration, and S3A for ``aws``."""
    mode = str(profile.get("mode") or MODE_LOCAL)
    warnings: list[str] = []
    conf: dict[str, str] = {}
    hadoop = s3a_properties(aws)
    env: dict[str, str] = {}
    for item in _configurations(profile.get("configuration"), f"{name}.configuration"):
        _apply(item, conf, hadoop, env, warnings)
    driver_heap = None
    if profile.get("driverMemory"):
        driver_heap = heap_mib(profile["driverMemory"], DRIVER_OVERHEAD_SHARE, f"{name}.driverMemory")
        conf["spark.driver.memory"] = f"{driver_heap}m"
    if mode == MODE_LOCAL:
        threads = cores(profile["driverCpu"], f"{name}.driverCpu") if profile.get("driverCpu") else None
        master = f"local[{threads}]" if threads else "local[*]"
        if profile.get("executorInstances") or profile.get("executorCpu") or profile.get("executorMemory"):
            warnings.append(f"{name}: executorInstances, executorCpu and executorMemory apply in mode kubernetes; "
                            "in mode local Spark runs in the driver's pod (size it with driverCpu and driverMemory)")
    elif mode == MODE_KUBERNETES:
        master = KUBERNETES_MASTER
        conf.update(_executors(profile, name))
    else:
        raise SparkConfError(f"{name}.mode: {mode!r} is not local or kubernetes")
    return SparkSettings(master, conf, hadoop, env, tuple(warnings), driver_heap)


def _executors(profile: Mapping[str, Any], name: str) -> dict[str, str]:
    conf = {"spark.submit.deployMode": "client"}
    if profile.get("image"):
        conf["spark.kubernetes.container.image"] = str(profile["image"])
    if profile.get("executorInstances"):
        conf["spark.executor.instances"] = str(int(profile["executorInstances"]))
    if profile.get("executorCpu"):
        conf["spark.executor.cores"] = str(cores(profile["executorCpu"], f"{name}.executorCpu"))
        conf["spark.kubernetes.executor.request.cores"] = str(profile["executorCpu"])
    if profile.get("executorMemory"):
        where = f"{name}.executorMemory"
        heap = heap_mib(profile["executorMemory"], EXECUTOR_OVERHEAD_SHARE, where, MIN_EXECUTOR_HEAP_MIB)
        conf["spark.executor.memory"] = f"{heap}m"
        conf["spark.executor.memoryOverhead"] = f"{int(quantity(profile['executorMemory'], where) / MiB) - heap}m"
    if profile.get("serviceAccountName"):
        conf["spark.kubernetes.authenticate.driver.serviceAccountName"] = str(profile["serviceAccountName"])
    for key, value in sorted((profile.get("nodeSelector") or {}).items()):
        conf[f"spark.kubernetes.node.selector.{key}"] = str(value)
    return conf


# Mode kubernetes: the driver (client mode, in the activity's pod) makes only the API calls the chart's Role for
# it grants (docs/spark.md): get its own pod, create/list/watch/delete executor pods. These settings turn off
# what would call more: the executors' ConfigMap, deleting a driver Service (there is none: executors dial
# the pod's IP), and PersistentVolumeClaims.
KUBERNETES_FIXED = {
    "spark.kubernetes.executor.disableConfigMap": "true",
    "spark.kubernetes.driver.service.deleteOnTermination": "false",
    "spark.kubernetes.driver.ownPersistentVolumeClaim": "false",
    "spark.kubernetes.driver.reusePersistentVolumeClaim": "false",
    # The runner reads the executors' logs after the application, then deletes their pods (runner/spark_pods.py).
    "spark.kubernetes.executor.deleteOnTermination": "false",
    "spark.driver.port": "7078",
    "spark.driver.blockManager.port": "7079",
}
EXECUTOR_COMMAND = "datapipeline-spark-executor"
# The Job of a mode kubernetes activity tells its runner where it runs (downward API) and names, never holds, the
# pipeline's credentials Secret (k8s/jobs.py).
POD_NAME_ENV = "DATAPIPELINE_POD_NAME"
POD_NAMESPACE_ENV = "DATAPIPELINE_POD_NAMESPACE"
POD_IP_ENV = "DATAPIPELINE_POD_IP"
CREDENTIALS_SECRET_ENV = "DATAPIPELINE_AWS_CREDENTIALS_SECRET"
# The label of a driver's executor pods (never the operator's run label: they are not attempts).
LABEL_SPARK_DRIVER = "datapipeline.io/spark-driver"
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class DriverPod:
    """The activity's own pod, from the downward API: the Spark driver in mode kubernetes."""

    name: str
    namespace: str
    ip: str


def kubernetes_master(host: str | None, port: str | None) -> str:
    """The API server as the pod sees it: the kubernetes Service's address that the kubelet gives every container
    (KUBERNETES_SERVICE_HOST/PORT), which needs no cluster DNS; the Service's name otherwise."""
    if not host or not port:
        return KUBERNETES_MASTER
    return f"k8s://https://[{host}]:{port}" if ":" in host else f"k8s://https://{host}:{port}"


def kubernetes_driver_conf(pod: DriverPod, template: str, hadoop: Mapping[str, str],
                           credentials_secret: str | None) -> dict[str, str]:
    """Spark settings of a client-mode driver running in ``pod``, its executors made from ``template``.

    The executors own no files of the attempt: they get the Hadoop configuration as ``spark.hadoop.*`` and the
    pipeline's AWS keys from its credentials Secret by reference (never by value).
    """
    conf = {**KUBERNETES_FIXED,
            "spark.kubernetes.namespace": pod.namespace,
            # Spark makes its executor pods owned by this pod: deleting the Job (cancel, the run) removes them.
            "spark.kubernetes.driver.pod.name": pod.name,
            "spark.driver.host": pod.ip,
            "spark.driver.bindAddress": pod.ip,
            "spark.kubernetes.executor.podTemplateFile": template}
    for key, value in sorted(hadoop.items()):
        conf[f"spark.hadoop.{key}"] = value
    if credentials_secret:
        for key in AWS_KEYS:
            conf[f"spark.kubernetes.executor.secretKeyRef.{key}"] = f"{credentials_secret}:{key}"
    return conf


def executor_pod_template(uid: int, labels: Mapping[str, str]) -> dict[str, Any]:
    """The executors' pod: the image's executor command, as locked down as the activity's own pod."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": dict(labels)},
        "spec": {
            "automountServiceAccountToken": False,  # executors never call the API
            "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "executor",
                "command": [EXECUTOR_COMMAND],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def s3a_properties(aws: AwsSpec) -> dict[str, str]:
    """S3A for the pipeline's S3, serving s3:// and s3n:// too, so EMRFS paths work unchanged."""
    props = {
        "fs.s3.impl": S3A, "fs.s3n.impl": S3A, "fs.s3a.impl": S3A,
        "fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "fs.AbstractFileSystem.s3a.impl": "org.apache.hadoop.fs.s3a.S3A",
        # The Job passes credentials as AWS_* variables; the default chain reads them (and pod identity).
        "fs.s3a.aws.credentials.provider": "com.amazonaws.auth.DefaultAWSCredentialsProviderChain",
        "fs.s3a.endpoint.region": aws.region,
        # MapReduce's local runner, never YARN: there is none.
        "mapreduce.framework.name": "local",
    }
    if aws.s3_endpoint_url:
        props["fs.s3a.endpoint"] = aws.s3_endpoint_url
        props["fs.s3a.connection.ssl.enabled"] = str(aws.s3_endpoint_url.startswith("https://")).lower()
    if aws.s3_path_style:
        props["fs.s3a.path.style.access"] = "true"
    return props


def _configurations(value: Any, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    if not value:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise SparkConfError(f"{where}: must be a list of {{classification, properties}} objects")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not item.get("classification"):
            raise SparkConfError(f"{where}[{index}]: must be an object with a classification")
        out.append((f"{where}[{index}]", item))
    return out


def _apply(located: tuple[str, Mapping[str, Any]], conf: dict[str, str], hadoop: dict[str, str],
           env: dict[str, str], warnings: list[str]) -> None:
    where, item = located
    classification = str(item["classification"])
    properties = _properties(item.get("properties"), where)
    if classification == "spark-defaults":
        for key, value in properties.items():
            if key in PROFILE_KEYS:
                warnings.append(f"{where}: {key} ignored: the cluster profile's mode decides where Spark runs")
            else:
                conf[key] = value
    elif classification in HADOOP_CLASSIFICATIONS:
        hadoop.update(properties)
    elif classification in ENV_CLASSIFICATIONS:
        for nested_where, nested in _configurations(item.get("configurations"), f"{where}.configurations"):
            if str(nested["classification"]) == "export":
                env.update(_properties(nested.get("properties"), nested_where))
            else:
                warnings.append(f"{nested_where}: classification {nested['classification']!r} under "
                                f"{classification} ignored (only export is)")
    else:
        warnings.append(f"{where}: classification {classification!r} has no meaning here and is ignored "
                        "(spark-defaults, the Hadoop *-site files, spark-env and hadoop-env are applied)")
    if item.get("configurations") and classification not in ENV_CLASSIFICATIONS:
        warnings.append(f"{where}: nested configurations are applied only under spark-env and hadoop-env")


def _properties(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SparkConfError(f"{where}.properties: must map keys to values")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


# ---------------------------------------------------------------------------------------------- data formats

# Spark's CSV source reads and writes every delimited format Hive's tables here use (docs/spark.md).
HIVE_FORMATS = ("CSV", "TSV", "Custom")


def table_options(data_format: DataFormatSpec | None, gzip: bool, where: str) -> dict[str, str]:
    """Spark CSV options for a data node's format, with the project's NULL conventions (runner/formats.py)."""
    if data_format is None:
        options = {"sep": ",", "quote": '"', "escape": '"', "header": "false", "nullValue": ""}
    elif data_format.type in HIVE_FORMATS:
        options = _delimited(data_format, where)
    else:
        raise SparkConfError(f"{where}: data format {data_format.type} cannot be a Hive table here "
                             f"({', '.join(HIVE_FORMATS)} can)")
    if gzip:
        options["compression"] = "gzip"
    return options


def _delimited(data_format: DataFormatSpec, where: str) -> dict[str, str]:
    fields = data_format.fields
    header = str(fields.get("headerRow", "")).lower() == "true"
    if data_format.type == "CSV":  # RFC 4180: quotes doubled inside quotes
        escape = _char(fields.get("escapeChar"), where, "escapeChar") or '"'
        options = {"sep": ",", "quote": '"', "escape": escape, "nullValue": ""}
    elif data_format.type == "TSV":  # PostgreSQL's text form: \N is NULL; no quoting
        options = {"sep": _separator(fields.get("columnSeparator"), "\t"), "quote": "", "escape": "\\",
                   "nullValue": "\\N"}
    else:
        if not fields.get("columnSeparator"):
            raise SparkConfError(f"{where}: data format Custom needs columnSeparator")
        options = {"sep": _separator(fields.get("columnSeparator"), ","), "quote": "", "nullValue": ""}
    record = _separator(fields.get("recordSeparator"), "\n")
    if record != "\n":
        if len(record) != 1:
            raise SparkConfError(f"{where}: recordSeparator {fields.get('recordSeparator')!r} must be one character "
                                 "in a Hive table")
        options["lineSep"] = record
    options["header"] = str(header).lower()
    return options


def table_schema(data_format: DataFormatSpec | None) -> str | None:
    """The format's ``column`` entries (``name TYPE``, Hive types; STRING when none) as a Spark DDL schema."""
    if data_format is None:
        return None
    columns = data_format.fields.get("column")
    items = [columns] if isinstance(columns, str) else list(columns or ())
    parts = []
    for item in items:
        name, _, kind = str(item).strip().partition(" ")
        if name:
            parts.append(f"`{name.replace('`', '``')}` {kind.strip() or 'STRING'}")
    return ", ".join(parts) or None


def _separator(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    text = str(value)
    # Definitions spell control characters as escapes ("\\t", "\\u0001"), as the runner's formats read them.
    return text.encode().decode("unicode_escape") if "\\" in text else text


def _char(value: Any, where: str, name: str) -> str | None:
    if value is None or value == "":
        return None
    text = _separator(value, "")
    if len(text) != 1:
        raise SparkConfError(f"{where}: {name} must be one character, not {value!r}")
    return text
