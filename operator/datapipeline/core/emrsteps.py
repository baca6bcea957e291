"""EMR steps (EmrActivity ``step``, HadoopActivity's jar) parsed into launch plans. Pure: no I/O.

A step is AWS Data Pipeline's form of an EMR step: the jar, then its arguments, comma separated
(``s3://bucket/MyWork.jar,arg1,arg2``). What the jar is decides the plan:

* ``command-runner.jar,spark-submit,...`` -> :class:`SparkSubmit` (the profile's master replaces the step's);
* ``command-runner.jar,COMMAND,...`` -> :class:`Command`, unless COMMAND is one of EMR's cluster tools
  (``hadoop-streaming``, ``hdfs``...), which have nothing to run on here: :class:`StepError`;
* ``.../script-runner.jar,SCRIPT,...`` -> :class:`Script`;
* any other jar -> :class:`JarMain`: its main class (the manifest's when none is given) on the classpath.

Escapes follow the Developer Guide's script-runner note: the first backslash of a pair is dropped before
the step is split (``\\\\`` -> ``\\``), then ``\\,`` keeps a comma inside an argument and ``\\x`` is ``x``.
So the guide's ``a\\\\,b\\\\,c`` (as JSON) is the one argument ``a,b,c``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from datapipeline.core.sparkconf import PROFILE_KEYS

COMMAND_RUNNER = "command-runner.jar"
SCRIPT_RUNNER = "script-runner.jar"

# EMR's own tools that command-runner.jar starts on a cluster node; none has a runtime here.
_EMR_TOOLS = {
    "hadoop-streaming": "Hadoop streaming needs YARN or a Hadoop installation; write the job as a Spark application",
    "hdfs": "there is no HDFS: read and write s3:// paths",
    "hadoop": "there is no Hadoop installation: give the jar as the step's first element instead",
    "yarn": "there is no YARN",
    "s3-dist-cp": "use a CopyActivity, or a Spark application, to copy between S3 locations",
    "hive-script": "use a HiveActivity, which runs the script with Spark SQL",
    "hive": "use a HiveActivity, which runs the script with Spark SQL",
    "pig-script": "Pig is not supported; use a HiveActivity",
    "pig": "Pig is not supported; use a HiveActivity",
    "hbase": "HBase is not available",
    "spark-sql": "use a HiveActivity, which runs SQL with Spark",
}

# spark-submit options that take a value; the others it knows are flags.
_VALUE_OPTIONS = frozenset({
    "--master", "--deploy-mode", "--class", "--name", "--jars", "--packages", "--exclude-packages",
    "--repositories", "--py-files", "--files", "--archives", "--conf", "-c", "--properties-file",
    "--driver-memory", "--driver-java-options", "--driver-library-path", "--driver-class-path",
    "--executor-memory", "--proxy-user", "--driver-cores", "--executor-cores", "--num-executors",
    "--total-executor-cores", "--queue", "--principal", "--keytab",
})
_FLAG_OPTIONS = frozenset({"--verbose", "-v", "--supervise"})
# Where the application runs is the cluster profile's choice, not the step's.
_PROFILE_OPTIONS = frozenset({"--master", "--deploy-mode", "--queue", "--num-executors", "--total-executor-cores"})


class StepError(ValueError):
    """The step cannot be run here; the message says why and what to write instead."""


@dataclass(frozen=True)
class SparkSubmit:
    """spark-submit of ``application`` (a .py file or a jar) with the step's own options."""

    application: str
    arguments: tuple[str, ...] = ()
    options: tuple[tuple[str, str | None], ...] = ()  # (option, value or None for a flag), in step order
    dropped: tuple[str, ...] = ()  # options the profile decides instead, as written

    @property
    def main_class(self) -> str | None:
        return next((v for o, v in self.options if o == "--class"), None)


@dataclass(frozen=True)
class JarMain:
    """A jar's main class with Hadoop's client libraries on the classpath (EMR's custom JAR step)."""

    jar: str
    main_class: str | None = None  # None: the manifest's Main-Class
    arguments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Script:
    """script-runner.jar: a script (often in S3) run with its arguments."""

    script: str
    arguments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    """command-runner.jar: a program on the PATH, run without a shell."""

    argv: tuple[str, ...]


Plan = SparkSubmit | JarMain | Script | Command


def split_step(text: str) -> list[str]:
    """The step's elements: split on commas, with the two rounds of backslash escapes (module doc)."""
    once = _unescape(text)
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(once):
        char = once[i]
        if char == "\\" and i + 1 < len(once):
            current.append(once[i + 1])
            i += 2
            continue
        if char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    """Round one: drops the first backslash of each pair (``\\\\`` -> ``\\``, ``\\,`` -> ``,``)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def parse_step(text: str) -> Plan:
    """The launch plan of one EmrActivity step; :class:`StepError` says what is wrong with it."""
    if not text.strip():
        raise StepError("the step is empty; write the jar followed by its arguments, comma separated")
    jar, *arguments = split_step(text)
    jar = jar.strip()
    name = posixpath.basename(jar)
    if name == COMMAND_RUNNER:
        return _command_runner(arguments)
    if name == SCRIPT_RUNNER:
        if not arguments or not arguments[0].strip():
            raise StepError("script-runner.jar needs the script to run as its first argument")
        return Script(arguments[0].strip(), tuple(arguments[1:]))
    if not name.endswith(".jar"):
        raise StepError(f"the step starts with {jar!r}, which is not a jar; write "
                        f"'command-runner.jar,{name or jar},...' to run a command")
    return JarMain(jar, None, tuple(arguments))


def _command_runner(arguments: Sequence[str]) -> Plan:
    if not arguments or not arguments[0].strip():
        raise StepError("command-runner.jar needs a command as its first argument, e.g. "
                        "'command-runner.jar,spark-submit,app.py'")
    command = arguments[0].strip()
    tool = posixpath.basename(command)
    if tool == "spark-submit":
        return parse_spark_submit(arguments[1:])
    if tool in _EMR_TOOLS:
        raise StepError(f"command-runner.jar,{tool} is one of EMR's cluster tools, not available here: "
                        f"{_EMR_TOOLS[tool]}")
    return Command((command, *arguments[1:]))


def parse_spark_submit(arguments: Sequence[str]) -> SparkSubmit:
    """spark-submit's own options, then the application, then the application's arguments."""
    options: list[tuple[str, str | None]] = []
    dropped: list[str] = []
    i = 0
    while i < len(arguments):
        arg = arguments[i]
        option, has_inline, inline = arg.partition("=")
        if not arg.startswith("-"):
            break
        if arg in _FLAG_OPTIONS:
            options.append((arg, None))
            i += 1
            continue
        if option not in _VALUE_OPTIONS:
            raise StepError(f"spark-submit option {option!r} is not one spark-submit knows")
        if has_inline:
            value, i = inline, i + 1
        elif i + 1 < len(arguments):
            value, i = arguments[i + 1], i + 2
        else:
            raise StepError(f"spark-submit option {option} needs a value")
        option = "--conf" if option == "-c" else option
        if option in _PROFILE_OPTIONS:
            dropped.append(f"{option} {value}")
        elif option == "--conf" and _conf_key(value) in PROFILE_KEYS:
            dropped.append(f"--conf {value}")
        else:
            options.append((option, value))
    if i >= len(arguments) or not arguments[i].strip():
        raise StepError("spark-submit needs an application (a .py file, or a jar with --class) after its options")
    return SparkSubmit(arguments[i].strip(), tuple(arguments[i + 1:]), tuple(options), tuple(dropped))


def _conf_key(value: str) -> str:
    return value.partition("=")[0].strip()


def hadoop_jar(jar: str, main_class: str | None, arguments: Sequence[str]) -> JarMain:
    """HadoopActivity's ``jarUri``, ``mainClass`` and ``argument``s as a plan (no splitting: each is one)."""
    if not jar.strip():
        raise StepError("jarUri is empty")
    return JarMain(jar.strip(), (main_class or "").strip() or None, tuple(arguments))


def describe(plan: Plan) -> str:
    """A one-line account of a plan for the attempt's log (no argument values: they may be long)."""
    if isinstance(plan, SparkSubmit):
        what = f"spark-submit {plan.application}"
        return what + (f" --class {plan.main_class}" if plan.main_class else "")
    if isinstance(plan, JarMain):
        return f"jar {plan.jar} " + (f"main class {plan.main_class}" if plan.main_class else "(manifest main class)")
    if isinstance(plan, Script):
        return f"script {plan.script}"
    return f"command {plan.argv[0]}"
