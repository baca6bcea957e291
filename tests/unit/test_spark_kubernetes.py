"""Mode kubernetes of a ClusterProfile (docs/spark.md): the driver's settings, the executors' pod and command,
the Job's view of its own pod, and the Spark image's jar lock. Pure: no cluster."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.resolve import RunContext, resolve_command
from datapipeline.core.sparkconf import (
    KUBERNETES_FIXED,
    DriverPod,
    executor_pod_template,
    kubernetes_driver_conf,
)
from datapipeline.k8s.jobs import Owner, build_job_spec
from datapipeline.runner.spark_executor import BACKEND, ExecutorEnvError, executor_argv

ROOT = Path(__file__).resolve().parents[2]
POD = DriverPod("p-1-hive-attempt-1-x7k2q", "team-a", "10.244.0.17")


def test_the_driver_makes_only_the_calls_the_chart_grants() -> None:
    conf = kubernetes_driver_conf(POD, "/tmp/s/spark-conf/executor-pod.json",
                                  {"fs.s3a.endpoint": "http://minio:9000"}, "aws-keys")
    assert conf == {
        **KUBERNETES_FIXED,
        "spark.kubernetes.namespace": "team-a",
        "spark.kubernetes.driver.pod.name": "p-1-hive-attempt-1-x7k2q",
        "spark.driver.host": "10.244.0.17", "spark.driver.bindAddress": "10.244.0.17",
        "spark.kubernetes.executor.podTemplateFile": "/tmp/s/spark-conf/executor-pod.json",
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        # by reference: the keys themselves are never in Spark's configuration or the executor pods' spec
        "spark.kubernetes.executor.secretKeyRef.AWS_ACCESS_KEY_ID": "aws-keys:AWS_ACCESS_KEY_ID",
        "spark.kubernetes.executor.secretKeyRef.AWS_SECRET_ACCESS_KEY": "aws-keys:AWS_SECRET_ACCESS_KEY",
    }
    # No ConfigMap, no Service, no PersistentVolumeClaim: the Role has no rights on them.
    assert KUBERNETES_FIXED["spark.kubernetes.executor.disableConfigMap"] == "true"
    assert KUBERNETES_FIXED["spark.kubernetes.driver.service.deleteOnTermination"] == "false"
    assert KUBERNETES_FIXED["spark.kubernetes.driver.ownPersistentVolumeClaim"] == "false"
    assert KUBERNETES_FIXED["spark.kubernetes.driver.reusePersistentVolumeClaim"] == "false"
    assert not any(k.startswith("spark.kubernetes.executor.secretKeyRef")
                   for k in kubernetes_driver_conf(POD, "t", {}, None))


def test_executor_pods_are_locked_down_like_attempts() -> None:
    pod = executor_pod_template(10001, {"datapipeline.io/spark-driver": POD.name})
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert container["command"] == ["datapipeline-spark-executor"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["metadata"]["labels"] == {"datapipeline.io/spark-driver": POD.name}
    assert "datapipeline.io/run" not in pod["metadata"]["labels"]  # not an attempt: the operator must not see it


EXECUTOR_ENV = {
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@10.244.0.17:7078", "SPARK_EXECUTOR_ID": "2",
    "SPARK_EXECUTOR_CORES": "1", "SPARK_APPLICATION_ID": "spark-app-1", "SPARK_EXECUTOR_POD_IP": "10.244.0.21",
    "SPARK_EXECUTOR_MEMORY": "1024m", "SPARK_RESOURCE_PROFILE_ID": "0", "SPARK_EXECUTOR_POD_NAME": "x-exec-2",
    "SPARK_JAVA_OPT_10": "-Dlast", "SPARK_JAVA_OPT_2": "-Dsecond", "SPARK_JAVA_OPT_0": "-Dfirst",
}


def test_the_executor_command_follows_sparks_pod_contract() -> None:
    argv = executor_argv(EXECUTOR_ENV, "/usr/bin/java", "/opt/spark")
    assert argv == ["/usr/bin/java", "-Dfirst", "-Dsecond", "-Dlast", "-Xms1024m", "-Xmx1024m",
                    "-cp", "/opt/spark/jars/*", BACKEND,
                    "--driver-url", "spark://CoarseGrainedScheduler@10.244.0.17:7078", "--executor-id", "2",
                    "--cores", "1", "--app-id", "spark-app-1", "--hostname", "10.244.0.21",
                    "--resourceProfileId", "0", "--podName", "x-exec-2"]
    with pytest.raises(ExecutorEnvError, match="SPARK_DRIVER_URL, SPARK_EXECUTOR_ID"):
        executor_argv({}, "/usr/bin/java", "/opt/spark")


def _job(mode: str, credentials: bool = True) -> dict[str, Any]:
    aws: dict[str, Any] = {"region": "eu-west-1", **({"credentialsSecret": "aws-keys"} if credentials else {})}
    spec = {"scheduleType": "ondemand", "aws": aws,
            "clusterProfiles": [{"name": "spark", "image": "localhost/kube-datapipeline-spark:dev", "mode": mode,
                                 "serviceAccountName": "kdp-spark-driver", "executorInstances": 2}],
            "activities": [{"name": "a", "type": "EmrActivity", "runsOn": "spark",
                            "step": ["command-runner.jar,spark-submit,s3://b/app.py"]}]}
    definition = parse_pipeline(spec)
    task = resolve_command(definition, RunContext("p", "p-1", None, None), "activity", "a", "a", 1).task
    return build_job_spec(name="p-1-a-1", namespace="team-a", owner=Owner("p-1", "uid-1"), pipeline="p", task=task,
                          definition=definition, activity="a", environ={})


def test_a_kubernetes_mode_job_tells_its_driver_where_it_runs() -> None:
    env = {e["name"]: e for e in _job("kubernetes")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATAPIPELINE_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["DATAPIPELINE_POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["DATAPIPELINE_POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["DATAPIPELINE_AWS_CREDENTIALS_SECRET"]["value"] == "aws-keys"  # its name, not its keys
    pod = _job("kubernetes")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kdp-spark-driver" and pod["automountServiceAccountToken"] is True
    local = {e["name"] for e in _job("local")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "DATAPIPELINE_POD_IP" not in local
    no_keys = {e["name"] for e in _job("kubernetes", credentials=False)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "DATAPIPELINE_AWS_CREDENTIALS_SECRET" not in no_keys


def _install_jars() -> Any:
    spec = importlib.util.spec_from_file_location("install_jars", ROOT / "spark-image" / "install_jars.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_spark_images_jars_are_pinned_and_checked(tmp_path: Path) -> None:
    install_jars = _install_jars()
    entries = install_jars.read_lock((ROOT / "spark-image" / "jars.lock").read_text())
    assert {name for name, _, _ in entries} >= {"hadoop-aws-3.3.4.jar", "aws-java-sdk-bundle-1.12.262.jar"}
    with pytest.raises(ValueError, match=r"jars\.lock line 1: expected NAME SHA256 MAVEN-PATH"):
        install_jars.read_lock("x.jar deadbeef org/x.jar")
    source, dest = tmp_path / "src", tmp_path / "dest"
    source.mkdir()
    (source / "a.jar").write_bytes(b"jar")
    lock = tmp_path / "jars.lock"
    lock.write_text(f"a.jar {hashlib.sha256(b'jar').hexdigest()} g/a/1/a.jar\n")
    install_jars.install(lock, dest, source)
    assert (dest / "a.jar").read_bytes() == b"jar"
    (source / "a.jar").write_bytes(b"tampered")
    with pytest.raises(SystemExit, match=r"a\.jar from .* has SHA-256 .*, jars\.lock says"):
        install_jars.install(lock, dest, source)


def test_an_executor_too_small_for_spark_is_refused_naming_the_field() -> None:
    from datapipeline.core.sparkconf import SparkConfError, spark_settings
    from datapipeline.core.task import AwsSpec

    with pytest.raises(SparkConfError, match=r"c\.executorMemory: 768Mi leaves no room for a JVM heap of at least "
                                             r"450 MiB besides the 384 MiB overhead; give at least 834Mi"):
        spark_settings({"mode": "kubernetes", "executorMemory": "768Mi"}, AwsSpec(), "c")


def test_the_driver_reaches_the_api_server_without_cluster_dns() -> None:
    from datapipeline.core.sparkconf import kubernetes_master

    assert kubernetes_master("10.96.0.1", "443") == "k8s://https://10.96.0.1:443"
    assert kubernetes_master("fd00::1", "443") == "k8s://https://[fd00::1]:443"
    assert kubernetes_master(None, None) == "k8s://https://kubernetes.default.svc"


def test_a_runner_without_a_pod_of_its_own_refuses_mode_kubernetes(monkeypatch: pytest.MonkeyPatch) -> None:
    from datapipeline.runner.errors import InvalidTask
    from datapipeline.runner.spark import driver_pod

    for name in ("DATAPIPELINE_POD_NAME", "DATAPIPELINE_POD_NAMESPACE", "DATAPIPELINE_POD_IP"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidTask, match="a poll worker group runs mode local only") as caught:
        driver_pod("HiveActivity work")
    assert str(caught.value).startswith("HiveActivity work: mode kubernetes runs the Spark driver in the activity's "
                                        "own pod, which sets DATAPIPELINE_POD_NAME")
    monkeypatch.setenv("DATAPIPELINE_POD_NAME", "p")
    monkeypatch.setenv("DATAPIPELINE_POD_NAMESPACE", "ns")
    monkeypatch.setenv("DATAPIPELINE_POD_IP", "10.0.0.1")
    assert driver_pod("x") == DriverPod("p", "ns", "10.0.0.1")


def test_a_configuration_cannot_move_the_driver_or_its_executors() -> None:
    from datapipeline.core.sparkconf import spark_settings
    from datapipeline.core.task import AwsSpec

    configuration = [{"classification": "spark-defaults", "properties": {
        "spark.kubernetes.namespace": "elsewhere", "spark.kubernetes.executor.podTemplateFile": "s3://x/pod.yaml",
        "spark.sql.shuffle.partitions": "4"}}]
    settings = spark_settings({"mode": "kubernetes", "configuration": configuration}, AwsSpec(), "c")
    assert "spark.kubernetes.namespace" not in settings.conf
    assert "spark.kubernetes.executor.podTemplateFile" not in settings.conf
    assert settings.conf["spark.sql.shuffle.partitions"] == "4"
    assert settings.warnings == (
        "c.configuration[0]: spark.kubernetes.namespace ignored: the cluster profile's mode decides where Spark runs",
        "c.configuration[0]: spark.kubernetes.executor.podTemplateFile ignored: the cluster profile's mode decides "
        "where Spark runs")


def test_a_step_cannot_move_the_driver_either() -> None:
    from datapipeline.core.emrsteps import SparkSubmit, parse_step

    plan = parse_step("command-runner.jar,spark-submit,--conf,spark.kubernetes.namespace=x,--conf,spark.a=b,app.py")
    assert isinstance(plan, SparkSubmit)
    assert plan.options == (("--conf", "spark.a=b"),)
    assert plan.dropped == ("--conf spark.kubernetes.namespace=x",)


def test_a_failed_launch_quotes_its_error_not_a_spark_warning() -> None:
    from datapipeline.runner.activities.shell import Outcome
    from datapipeline.runner.spark import failure_detail

    warned = ("WARN NativeCodeLoader: Unable to load native-hadoop library", "usage: report.py DAY",
              "WARN ShutdownHookManager: ShutdownHook '' timeout")
    assert failure_detail(Outcome(2, warned[-1], warned)) == "usage: report.py DAY"
    raised = ("WARN X: y", "ValueError: no such day", "WARN Z: later")
    assert failure_detail(Outcome(1, raised[-1], raised)) == "ValueError: no such day"
    only_warnings = ("WARN X: y",)
    assert failure_detail(Outcome(1, only_warnings[-1], only_warnings)) == "WARN X: y"
