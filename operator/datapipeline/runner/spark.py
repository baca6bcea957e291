"""Launching Spark (and plain Hadoop jars) for the EMR family: docs/spark.md.

Everything a launch needs besides its own arguments is written into one configuration folder in the
attempt's scratch space, which is both ``SPARK_CONF_DIR`` and ``HADOOP_CONF_DIR``:

* ``spark-defaults.conf``: the master and configuration of the cluster profile (a step's own ``--conf``
  options still win, as on spark-submit's command line);
* ``core-site.xml``: S3A at the pipeline's endpoint, ``s3://`` served by S3A, and the profile's Hadoop
  properties; Spark and a plain Hadoop jar both read it from the classpath;
* ``log4j2.properties``: warnings and errors only, so the attempt's log holds the job's output, not
  Spark's chatter.

Spark is pyspark's own distribution (or ``SPARK_HOME``'s, in an image with Spark installed); the S3A
connector (hadoop-aws and its AWS SDK bundle) is found in Spark's jars or in the cache that
``tests/setup-spark.sh`` fills, ``DATAPIPELINE_SPARK_JARS`` naming another folder.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from datapipeline.core.emrsteps import JarMain, SparkSubmit
from datapipeline.core.sparkconf import (
    CREDENTIALS_SECRET_ENV,
    LABEL_SPARK_DRIVER,
    MODE_KUBERNETES,
    POD_IP_ENV,
    POD_NAME_ENV,
    POD_NAMESPACE_ENV,
    DriverPod,
    SparkConfError,
    SparkSettings,
    executor_pod_template,
    kubernetes_driver_conf,
    kubernetes_master,
    spark_settings,
)
from datapipeline.runner.activities.shell import Outcome, base_env, run_command
from datapipeline.runner.context import Context
from datapipeline.runner.errors import Cancelled, InvalidTask, TaskError
from datapipeline.runner.log import get
from datapipeline.runner.s3 import S3Url

log = get("spark")

JARS_ENV = "DATAPIPELINE_SPARK_JARS"
# Spark's own settings for a launch inside a pod: the web UI on port 4040 of the pod's loopback (SPARK_LOCAL_IP
# below), so `kubectl port-forward` reaches it and no other pod does, without its kill buttons; no console
# progress bar (it would fill the log), and the driver on loopback (no name lookup of the pod).
UI_PORT = 4040
LAUNCH_DEFAULTS = {
    "spark.ui.enabled": "true",
    "spark.ui.port": str(UI_PORT),
    "spark.ui.killEnabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
LOG4J2 = """rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %p %c{1}: %m%n%ex
# Hadoop warns about a native library and a metrics file that a pod has no use for.
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.metrics.name = org.apache.hadoop.metrics2
logger.metrics.level = error
logger.s3a.name = org.apache.hadoop.fs.s3a.impl.MultiObjectDeleteSupport
logger.s3a.level = error
logger.profile.name = com.amazonaws.auth.profile
logger.profile.level = error
# S3A has no committer of its own without Spark's hadoop-cloud module: the classic one renames (docs/spark.md).
logger.committer.name = org.apache.hadoop.fs.s3a.commit.AbstractS3ACommitterFactory
logger.committer.level = error
# An output table's directory that does not exist yet is no news.
logger.listing.name = org.apache.spark.util.HadoopFSUtils
logger.listing.level = error
# Hive's metastore, new for each attempt, warns about the defaults it creates and settings it does not know.
logger.objectstore.name = org.apache.hadoop.hive.metastore.ObjectStore
logger.objectstore.level = error
logger.hiveconf.name = org.apache.hadoop.hive.conf.HiveConf
logger.hiveconf.level = error
logger.sessionstate.name = org.apache.hadoop.hive.ql.session.SessionState
logger.sessionstate.level = error
# The output tables are Spark's CSV tables in a metastore that lives for one attempt: that Hive itself could not
# read them is no news.
logger.hivecatalog.name = org.apache.spark.sql.hive.HiveExternalCatalog
logger.hivecatalog.level = error
"""
# Lines worth quoting when a launch fails: an exception's own line, not the stack or Spark's shutdown notes.
_LOG4J_NOTE = re.compile(r"(WARN|INFO|DEBUG|TRACE) [A-Za-z0-9_.$]+: ")  # our log4j2 pattern: "%p %c{1}: %m"
_ERROR_LINE = re.compile(r"([A-Za-z0-9_.$]+(Exception|Error)\b:?.*|Traceback.*|.*\b(ERROR|FATAL)\b.*)")


@dataclass(frozen=True)
class SparkEnv:
    home: Path  # SPARK_HOME: bin/spark-submit, jars/
    connector: tuple[Path, ...]  # the S3A connector's jars, when not already in home/jars

    @property
    def submit(self) -> str:
        return str(self.home / "bin" / "spark-submit")

    def classpath(self, conf_dir: str, *first: str) -> str:
        """A plain JVM's classpath: the jar, the configuration folder, Spark's jars (Hadoop's client) and S3A."""
        return os.pathsep.join([*first, conf_dir, str(self.home / "jars" / "*"), *map(str, self.connector)])


def find_spark(what: str) -> SparkEnv:
    home = _spark_home()
    if home is None:
        raise TaskError("Spark.NotInstalled", f"{what}: this runner has no Spark: install the [spark] extra "
                        "(pip install 'kube-datapipeline[spark]') or set SPARK_HOME")
    if list((home / "jars").glob("hadoop-aws-*.jar")):
        return SparkEnv(home, ())
    folder = _connector_dir(home)
    jars = tuple(sorted(folder.glob("*.jar"))) if folder else ()
    if not any(j.name.startswith("hadoop-aws-") for j in jars):
        raise TaskError("Spark.NoS3Connector", f"{what}: the S3A connector (hadoop-aws and the AWS SDK bundle) is "
                        f"neither in {home / 'jars'} nor in {folder or '$' + JARS_ENV}; run tests/setup-spark.sh "
                        f"or set {JARS_ENV}")
    return SparkEnv(home, jars)


def _spark_home() -> Path | None:
    configured = os.environ.get("SPARK_HOME")
    if configured and (Path(configured) / "bin" / "spark-submit").exists():
        return Path(configured)
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return None
    home = Path(next(iter(spec.submodule_search_locations)))
    return home if (home / "bin" / "spark-submit").exists() else None


def hadoop_version(home: Path) -> str | None:
    for jar in (home / "jars").glob("hadoop-client-api-*.jar"):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return None


def _connector_dir(home: Path) -> Path | None:
    if os.environ.get(JARS_ENV):
        return Path(os.environ[JARS_ENV])
    version = hadoop_version(home)
    if version is None:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "kube-datapipeline" / "spark" / version / "jars"


# ---------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Launcher:
    """What every launch of one attempt shares: Spark, the configuration folder and the environment."""

    spark: SparkEnv
    settings: SparkSettings
    conf_dir: str
    env: dict[str, str]
    driver: DriverPod | None = None  # mode kubernetes: the pod whose executors each launch leaves behind


def prepare(ctx: Context, what: str) -> Launcher:
    """Finds Spark, turns the cluster profile into settings and writes the configuration folder."""
    spark = find_spark(what)
    try:
        settings = spark_settings(ctx.spec.cluster, ctx.spec.aws, f"cluster profile {ctx.field('runsOn') or ''}".strip())
    except SparkConfError as e:
        raise InvalidTask(f"{what}: {e}", "Spark.BadProfile") from None
    for warning in settings.warnings:
        log.warning("%s", warning)
    conf_dir = os.path.join(ctx.scratch(), "spark-conf")
    os.makedirs(conf_dir, exist_ok=True)
    extra = {"spark.sql.warehouse.dir": os.path.join(ctx.scratch(), "warehouse")}
    if spark.connector:  # on the driver's own classpath: Hadoop looks S3A up by class name
        extra["spark.driver.extraClassPath"] = os.pathsep.join(map(str, spark.connector))
    driver = None
    if ctx.spec.cluster.get("mode") == MODE_KUBERNETES:
        driver = driver_pod(what)
        if spark.connector:
            raise TaskError("Spark.NoS3Connector", f"{what}: mode kubernetes needs the S3A connector in "
                            f"{spark.home / 'jars'}, where the executors find it too: use the Spark image "
                            "(spark-image/Dockerfile)")
        template = os.path.join(conf_dir, "executor-pod.json")
        with open(template, "w", encoding="utf-8") as f:
            json.dump(executor_pod_template(os.getuid(), {LABEL_SPARK_DRIVER: driver.name}), f, indent=1)
        extra.update(kubernetes_driver_conf(driver, template, settings.hadoop,
                                            os.environ.get(CREDENTIALS_SECRET_ENV) or None))
        settings = dataclasses.replace(settings, master=kubernetes_master(os.environ.get("KUBERNETES_SERVICE_HOST"),
                                                                          os.environ.get("KUBERNETES_SERVICE_PORT")))
    write_conf_dir(conf_dir, settings, extra)
    env = base_env(ctx)
    env.update(settings.env)
    env.update({"SPARK_CONF_DIR": conf_dir, "HADOOP_CONF_DIR": conf_dir, "SPARK_HOME": str(spark.home),
                "PYSPARK_PYTHON": env.get("PYSPARK_PYTHON") or sys.executable,
                "PYSPARK_DRIVER_PYTHON": env.get("PYSPARK_DRIVER_PYTHON") or sys.executable})
    env.pop("PYSPARK_SUBMIT_ARGS", None)  # would replace the arguments we pass
    # Shuffle and spill files in the attempt's scratch space, removed with it. SPARK_LOCAL_IP is where the web UI
    # binds: loopback, in mode kubernetes too (the driver's own endpoints, which executors reach, are
    # spark.driver.bindAddress and spark.driver.host).
    env["SPARK_LOCAL_DIRS"] = os.path.join(ctx.scratch(), "spark-local")
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        if env.get(name) and not os.path.isfile(env[name]):
            env.pop(name)  # the Java SDK warns, with a stack, about a file that is not one (/dev/null)
    return Launcher(spark, settings, conf_dir, env, driver)


def driver_pod(what: str) -> DriverPod:
    """The activity's pod, as its Job describes it (mode kubernetes runs only in the operator's Jobs)."""
    values = [os.environ.get(name, "") for name in (POD_NAME_ENV, POD_NAMESPACE_ENV, POD_IP_ENV)]
    if not all(values):
        raise InvalidTask(f"{what}: mode kubernetes runs the Spark driver in the activity's own pod, which sets "
                          f"{POD_NAME_ENV}, {POD_NAMESPACE_ENV} and {POD_IP_ENV}; this runner has none (a poll "
                          "worker group runs mode local only)", "Spark.BadProfile")
    return DriverPod(*values)


def write_conf_dir(conf_dir: str, settings: SparkSettings, extra: Mapping[str, str]) -> None:
    defaults = {**LAUNCH_DEFAULTS, **extra, **settings.conf, "spark.master": settings.master}
    with open(os.path.join(conf_dir, "spark-defaults.conf"), "w", encoding="utf-8") as f:
        for key, value in sorted(defaults.items()):
            f.write(f"{key} {value}\n")
    with open(os.path.join(conf_dir, "core-site.xml"), "w", encoding="utf-8") as f:
        f.write(site_xml(settings.hadoop))
    with open(os.path.join(conf_dir, "log4j2.properties"), "w", encoding="utf-8") as f:
        f.write(LOG4J2)


def site_xml(properties: Mapping[str, str]) -> str:
    """A Hadoop ``*-site.xml`` holding ``properties`` (escaped: values are data)."""
    lines = ['<?xml version="1.0"?>', "<configuration>"]
    for key, value in sorted(properties.items()):
        lines.append(f"  <property><name>{escape(key)}</name><value>{escape(value)}</value></property>")
    lines.append("</configuration>")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- launches


def submit_argv(launcher: Launcher, plan: SparkSubmit, application: str) -> list[str]:
    """spark-submit with the step's own options; the master and profile come from spark-defaults.conf."""
    argv = [launcher.spark.submit]
    connector = os.pathsep.join(map(str, launcher.spark.connector))
    for option, value in plan.options:
        if option == "--driver-class-path" and connector and value is not None:
            value = f"{value}{os.pathsep}{connector}"  # the step's own, and still S3A
        argv += [option] if value is None else [option, value]
    return [*argv, application, *plan.arguments]


def jar_argv(launcher: Launcher, plan: JarMain, jar: str, what: str) -> list[str]:
    """The jar's main class in a JVM with Hadoop's client, S3A and the configuration folder on the classpath.

    The main class is found as ``hadoop jar`` finds it: the one given (HadoopActivity mainClass), else the
    manifest's Main-Class, else the first argument (EMR steps such as ``emr-ddb.jar,org.x.Export,...``).
    """
    main, arguments = main_class(plan, manifest_main_class(jar, what) if not plan.main_class else None, what)
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME") \
        else shutil.which("java")
    if java is None:
        raise TaskError("Spark.NoJava", f"{what}: java is not installed (set JAVA_HOME or put java on the PATH)")
    heap = [f"-Xmx{launcher.settings.driver_heap_mib}m"] if launcher.settings.driver_heap_mib else []
    # Java 17 closes the JDK's internals that Hadoop's client reflects on; Spark opens them the same way.
    opens = ["--add-opens=java.base/java.lang=ALL-UNNAMED", "--add-opens=java.base/java.nio=ALL-UNNAMED",
             "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens=java.base/java.util=ALL-UNNAMED"]
    return [java, *heap, *opens, "-cp", launcher.spark.classpath(launcher.conf_dir, jar), main, *arguments]


def main_class(plan: JarMain, from_manifest: str | None, what: str) -> tuple[str, tuple[str, ...]]:
    if plan.main_class:
        return plan.main_class, plan.arguments
    if from_manifest:
        log.info("%s: main class %s, from the jar's manifest", what, from_manifest)
        return from_manifest, plan.arguments
    if plan.arguments and plan.arguments[0].strip():
        log.info("%s: main class %s, the first argument (the jar's manifest names none)", what, plan.arguments[0])
        return plan.arguments[0].strip(), plan.arguments[1:]
    raise InvalidTask(f"{what}: the jar's manifest names no Main-Class and no main class is given (HadoopActivity "
                      "mainClass, or the step's first argument after the jar)", "Emr.NoMainClass")


def manifest_main_class(jar: str, what: str) -> str | None:
    try:
        with zipfile.ZipFile(jar) as archive:
            names = set(archive.namelist())
            if "META-INF/MANIFEST.MF" not in names:
                return None
            manifest = archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile) as e:
        raise TaskError("Emr.BadJar", f"{what}: {os.path.basename(jar)} is not a jar ({e})") from None
    # Manifest lines longer than 72 bytes continue on lines that start with a space.
    match = re.search(r"^Main-Class:\s*(\S+)", manifest.replace("\r\n ", "").replace("\n ", ""), re.M)
    return match.group(1) if match else None


def local_file(ctx: Context, location: str, what: str, name: str) -> str:
    """A program the launch needs as a local file: an s3:// one is downloaded, a path must exist."""
    if location.startswith(("s3://", "s3a://", "s3n://")):
        url = S3Url.parse("s3://" + location.split("://", 1)[1], what)
        os.makedirs(os.path.join(ctx.scratch(), "programs"), exist_ok=True)
        folder = tempfile.mkdtemp(dir=os.path.join(ctx.scratch(), "programs"))  # two steps may share a name
        path = os.path.join(folder, os.path.basename(url.key) or name)
        ctx.s3.download_file(url, path, f"{what} ({url})")
        return path
    path = location.removeprefix("file://")
    if location.startswith("local://"):
        path = location.removeprefix("local://")
    if not os.path.isfile(path):
        raise InvalidTask(f"{what}: {location} does not exist in this image (give an s3:// URI or a path that "
                          "exists in the cluster profile's image)", "Emr.NoSuchFile")
    return path


def run(launcher: Launcher, ctx: Context, argv: Sequence[str], what: str) -> Outcome:
    workdir = os.path.join(ctx.scratch(), "work")
    os.makedirs(workdir, exist_ok=True)
    from datapipeline.runner import spark_pods

    try:
        outcome = run_command(ctx, argv, launcher.env, workdir, what)
    except Cancelled:
        # Cancelled or timed out (SIGTERM, the pod's grace period running): the driver was stopped, and the
        # executors' logs go into the attempt's at once, without waiting for them to exit.
        if launcher.driver is not None:
            spark_pods.collect(launcher.driver, what, settle_seconds=0)
        raise
    if launcher.driver is not None:
        spark_pods.collect(launcher.driver, what)
    return outcome


def failure_detail(outcome: Outcome) -> str:
    """The most telling line of a failed launch's stderr: an exception's line, else the last line that is not
    one of Spark's own warnings (log4j's "WARN Class: ..." says nothing of why the program failed)."""
    for line in reversed(outcome.tail):
        stripped = line.strip()
        if _ERROR_LINE.fullmatch(stripped) and not stripped.startswith(("at ", "Traceback")):
            return stripped
    for line in reversed(outcome.tail):
        stripped = line.strip()
        if stripped and not _LOG4J_NOTE.match(stripped):
            return stripped
    return outcome.last_stderr


