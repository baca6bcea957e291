"""EmrActivity and HadoopActivity, minimally: their steps run as commands inside the task's image.

The cluster profile's image is expected to hold the tools (``hadoop``, ``spark-submit``...).
A step is the AWS form ``jar,arg1,arg2``; ``command-runner.jar`` runs its arguments as a command.
"""

from __future__ import annotations

import os

from datapipeline.core.task import TaskResult
from datapipeline.runner.activities.shell import base_env, run_command
from datapipeline.runner.context import Context, strings
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import get

log = get("emr")


def _step_argv(step: str) -> list[str]:
    parts = [p.strip() for p in step.split(",")]
    jar, args = parts[0], parts[1:]
    if os.path.basename(jar) == "command-runner.jar":
        return args
    return ["hadoop", "jar", jar, *args]


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"{spec.type} {spec.name}"
    commands: list[tuple[str, list[str]]] = []
    for c in strings(ctx.field("preStepCommand")):
        commands.append(("preStepCommand", ["/bin/sh", "-c", c]))
    if spec.type == "HadoopActivity":
        jar = str(ctx.require("jarUri"))
        main = [str(ctx.field("mainClass"))] if ctx.field("mainClass") else []
        commands.append(("jarUri", ["hadoop", "jar", jar, *main, *strings(ctx.field("argument"))]))
    else:
        steps = strings(ctx.field("step"))
        if not steps:
            raise InvalidTask(f"{what}: field step is required")
        commands += [(f"step {i}", _step_argv(s)) for i, s in enumerate(steps, 1)]
    for c in strings(ctx.field("postStepCommand")):
        commands.append(("postStepCommand", ["/bin/sh", "-c", c]))
    workdir = os.path.join(ctx.scratch(), "work")
    os.makedirs(workdir, exist_ok=True)
    env = base_env(ctx)
    for label, argv in commands:
        if not argv:
            raise InvalidTask(f"{what}: {label} is empty")
        log.info("running %s: %s", label, argv[0])
        outcome = run_command(ctx, argv, env, workdir, f"{what} {label}")
        if outcome.returncode != 0:
            raise TaskError("Emr.StepFailed", f"{what}: {label} exited with status {outcome.returncode}"
                            + (f"; last stderr line: {outcome.last_stderr}" if outcome.last_stderr else ""))
    return TaskResult("FINISHED")
