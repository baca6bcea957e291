"""SqlActivity: a script (inline or from S3) run in one transaction, scriptArgument bound to ``?``."""

from __future__ import annotations

from datapipeline.core.task import TaskResult
from datapipeline.runner.context import Context, strings
from datapipeline.runner.errors import InvalidTask
from datapipeline.runner.log import get
from datapipeline.runner.s3 import S3Url
from datapipeline.runner.sql import Database
from datapipeline.runner.sqltext import convert_placeholders, split_statements

log = get("sql")


def load_script(ctx: Context, what: str) -> str:
    script, uri = ctx.field("script"), ctx.field("scriptUri")
    if bool(script) == bool(uri):
        raise InvalidTask(f"{what}: set exactly one of script and scriptUri")
    if script:
        return str(script)
    url = S3Url.parse(uri, f"{what} scriptUri")
    return ctx.s3.read_text(url, f"{what} scriptUri ({url})")


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"SqlActivity {spec.name}"
    if spec.database is None:
        raise InvalidTask(f"{what}: field database is required")
    script = load_script(ctx, what)
    statements = split_statements(script)
    if not statements:
        raise InvalidTask(f"{what}: the script holds no SQL statement")
    args = strings(ctx.field("scriptArgument"))
    # Bind the arguments in order across statements: each takes as many as it has placeholders.
    counts = [convert_placeholders(s, "qmark")[1] for s in statements]
    if sum(counts) != len(args):
        raise InvalidTask(f"{what}: the script has {sum(counts)} ? placeholder(s) but scriptArgument has "
                          f"{len(args)} value(s)")
    ctx.progress.phase = "connecting"
    db = Database.connect(spec.database, what)
    affected = 0
    try:
        used = 0
        for i, (statement, n) in enumerate(zip(statements, counts, strict=True), 1):
            ctx.progress.phase = f"statement {i}/{len(statements)}"
            with db.errors(f"{what} statement {i}"):
                rc = db.execute(statement, args[used:used + n])
            used += n
            affected += max(rc, 0)
        ctx.progress.phase = "committing"
        db.commit()
    finally:
        db.close()
    log.info("ran %d statement(s), %d row(s) affected, committed", len(statements), affected)
    return TaskResult("FINISHED", rows_written=affected)
