"""The command of a Spark executor pod (mode kubernetes): ``datapipeline-spark-executor``.

The driver (the activity's Job pod) creates executor pods from the pod template the runner writes
(runner/spark.py); their container runs the Spark image with this command. Spark describes the executor in
the pod's environment (its Kubernetes backend's contract: SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, ...,
SPARK_JAVA_OPT_0..n); this turns it into the executor's JVM and replaces itself with it, so the JVM gets
the pod's signals and its exit code is the container's.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping

BACKEND = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
REQUIRED = ("SPARK_DRIVER_URL", "SPARK_EXECUTOR_ID", "SPARK_EXECUTOR_CORES", "SPARK_APPLICATION_ID",
            "SPARK_EXECUTOR_POD_IP", "SPARK_EXECUTOR_MEMORY")


class ExecutorEnvError(ValueError):
    pass


def executor_argv(env: Mapping[str, str], java: str, spark_home: str) -> list[str]:
    """The executor JVM's argv from Spark's pod environment. Pure."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise ExecutorEnvError(f"not a Spark executor pod: {', '.join(missing)} not set (Spark's driver sets "
                               "them when it creates the pod)")
    options = sorted(((int(m.group(1)), value) for key, value in env.items()
                      if (m := re.fullmatch(r"SPARK_JAVA_OPT_(\d+)", key))), key=lambda item: item[0])
    classpath = [part for part in (env.get("SPARK_CONF_DIR"), env.get("SPARK_CLASSPATH"),
                                   os.path.join(spark_home, "jars", "*"), env.get("SPARK_DIST_CLASSPATH")) if part]
    memory = env["SPARK_EXECUTOR_MEMORY"]
    return [java, *(value for _, value in options), f"-Xms{memory}", f"-Xmx{memory}",
            "-cp", os.pathsep.join(classpath), BACKEND,
            "--driver-url", env["SPARK_DRIVER_URL"],
            "--executor-id", env["SPARK_EXECUTOR_ID"],
            "--cores", env["SPARK_EXECUTOR_CORES"],
            "--app-id", env["SPARK_APPLICATION_ID"],
            "--hostname", env["SPARK_EXECUTOR_POD_IP"],
            "--resourceProfileId", env.get("SPARK_RESOURCE_PROFILE_ID") or "0",
            "--podName", env.get("SPARK_EXECUTOR_POD_NAME") or ""]


def _spark_home() -> str:
    if os.environ.get("SPARK_HOME"):
        return os.environ["SPARK_HOME"]
    import pyspark  # the image's Spark

    return os.path.dirname(pyspark.__file__)


def main() -> None:
    java_home = os.environ.get("JAVA_HOME")
    java = shutil.which("java", path=os.path.join(java_home, "bin") if java_home else None)
    if java is None:
        sys.exit("datapipeline-spark-executor: java is not installed in this image")
    try:
        argv = executor_argv(os.environ, java, _spark_home())
    except ExecutorEnvError as e:
        sys.exit(f"datapipeline-spark-executor: {e}")
    # The driver's logging (warnings and errors), in the pod's /tmp (an emptyDir): Spark's default is INFO.
    from datapipeline.runner.spark import LOG4J2

    fd, path = tempfile.mkstemp(prefix="log4j2-", suffix=".properties")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(LOG4J2)
    os.execv(java, [argv[0], f"-Dlog4j2.configurationFile=file:{path}", *argv[1:]])


if __name__ == "__main__":
    main()
