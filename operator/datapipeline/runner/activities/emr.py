"""EmrActivity and HadoopActivity on Spark's distribution (docs/spark.md).

EmrActivity: the ``preStepCommand``s (shell), each ``step`` parsed into a launch plan
(:mod:`datapipeline.core.emrsteps`) and run in order, then the ``postStepCommand``s. HadoopActivity:
``jarUri``'s main class with its ``argument``s. The first launch that fails ends the attempt, naming it.
"""

from __future__ import annotations

import os

from datapipeline.core.emrsteps import (
    Command,
    JarMain,
    Plan,
    Script,
    SparkSubmit,
    StepError,
    describe,
    hadoop_jar,
    parse_step,
)
from datapipeline.core.task import TaskResult
from datapipeline.runner import spark
from datapipeline.runner.activities.shell import Outcome
from datapipeline.runner.context import Context, strings
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import get

log = get("emr")


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"{spec.type} {spec.name}"
    plans = _plans(ctx, what)
    launcher = spark.prepare(ctx, what)
    for command in strings(ctx.field("preStepCommand")):
        _shell(launcher, ctx, command, f"{what} preStepCommand")
    for label, plan in plans:
        log.info("%s: %s", label, describe(plan))
        if isinstance(plan, SparkSubmit) and plan.dropped:
            log.warning("%s: %s ignored: the cluster profile decides where Spark runs", label, ", ".join(plan.dropped))
        _launch(launcher, ctx, plan, f"{what} {label}")
    for command in strings(ctx.field("postStepCommand")):
        _shell(launcher, ctx, command, f"{what} postStepCommand")
    return TaskResult("FINISHED")


def _plans(ctx: Context, what: str) -> list[tuple[str, Plan]]:
    """Every launch, parsed before anything runs: a bad last step fails the attempt before the first one."""
    if ctx.spec.type == "HadoopActivity":
        if ctx.field("hadoopQueue"):
            log.warning("%s: hadoopQueue %s ignored: there is no YARN; MapReduce runs in its local runner", what,
                        ctx.field("hadoopQueue"))
        try:
            return [("jarUri", hadoop_jar(str(ctx.require("jarUri")), ctx.field("mainClass"),
                                          strings(ctx.field("argument"))))]
        except StepError as e:
            raise InvalidTask(f"{what}: {e}", "Emr.BadStep") from None
    steps = strings(ctx.field("step"))
    if not steps:
        raise InvalidTask(f"{what}: field step is required")
    plans: list[tuple[str, Plan]] = []
    for index, step in enumerate(steps, 1):
        try:
            plans.append((f"step {index}", parse_step(step)))
        except StepError as e:
            raise InvalidTask(f"{what}: step {index}: {e}", "Emr.BadStep") from None
    return plans


def _launch(launcher: spark.Launcher, ctx: Context, plan: Plan, what: str) -> None:
    if isinstance(plan, SparkSubmit):
        application = spark.local_file(ctx, plan.application, f"{what} application", "application")
        argv = spark.submit_argv(launcher, plan, application)
    elif isinstance(plan, JarMain):
        argv = spark.jar_argv(launcher, plan, spark.local_file(ctx, plan.jar, f"{what} jar", "step.jar"), what)
    elif isinstance(plan, Script):
        script = spark.local_file(ctx, plan.script, f"{what} script", "script")
        os.chmod(script, 0o700)
        argv = _script_argv(script, plan.arguments)
    else:
        argv = list(plan.argv)
    _check(spark.run(launcher, ctx, argv, what), what, _name(plan))


def _script_argv(script: str, arguments: tuple[str, ...]) -> list[str]:
    with open(script, "rb") as f:
        shebang = f.read(2) == b"#!"
    return [script, *arguments] if shebang else ["/bin/sh", script, *arguments]


def _shell(launcher: spark.Launcher, ctx: Context, command: str, what: str) -> None:
    log.info("running %s", what.rsplit(" ", 1)[-1])
    _check(spark.run(launcher, ctx, ["/bin/sh", "-c", command], what), what, "the command")


def _name(plan: Plan) -> str:
    if isinstance(plan, SparkSubmit):
        return "spark-submit"
    if isinstance(plan, JarMain):
        return "the jar"
    if isinstance(plan, Script):
        return "the script"
    assert isinstance(plan, Command)
    return plan.argv[0]


def _check(outcome: Outcome, what: str, name: str) -> None:
    if outcome.returncode == 0:
        return
    detail = spark.failure_detail(outcome)
    detail = f": {detail}" if detail else ""
    if outcome.returncode < 0:
        raise TaskError("Emr.StepKilled", f"{what}: {name} was killed by signal {-outcome.returncode}{detail}")
    raise TaskError("Emr.StepFailed", f"{what}: {name} exited with status {outcome.returncode}{detail}")
