"""RedshiftCopyActivity on any PostgreSQL-protocol database, with Redshift's insertMode semantics.

As on AWS, the rows are first loaded into a table named ``staging`` (a temporary
table shaped like the target), ``transformSql`` may reshape them, and then one
statement merges them into the target according to ``insertMode``. Everything
happens in one transaction. OVERWRITE_EXISTING and KEEP_EXISTING match rows on the
node's ``primaryKeys``, else on the table's own primary key, read from the database.
From a RedshiftDataNode to S3 or a SQL table (AWS's unload), rows stream as in
CopyActivity.
"""

from __future__ import annotations

from datapipeline.core.task import TaskResult
from datapipeline.runner.activities import copy
from datapipeline.runner.context import Context, strings
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import get
from datapipeline.runner.nodes import S3_TYPES, S3Source, SqlSource
from datapipeline.runner.sql import Database

log = get("redshift")
MODES = ("KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND")


def _options(values: list[str], what: str) -> tuple[int, bool]:
    """IGNOREHEADER n and IGNOREBLANKLINES are honoured; other COPY options are Redshift-only."""
    skip, blank = 0, False
    for raw in values:
        words = raw.upper().split()
        if not words:
            continue
        if words[0] == "IGNOREHEADER":
            try:
                skip = int(words[-1])
            except ValueError:
                raise InvalidTask(f"{what}: commandOptions {raw!r}: IGNOREHEADER needs a number") from None
        elif words[0] == "IGNOREBLANKLINES":
            blank = True
        elif words[0] not in ("CSV", "EMPTYASNULL", "GZIP", "TRUNCATECOLUMNS", "BLANKSASNULL"):
            log.warning("commandOptions %r is not supported here and is ignored", raw)
    return skip, blank


def run(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"RedshiftCopyActivity {spec.name}"
    mode = str(ctx.require("insertMode")).upper()
    if mode not in MODES:
        raise InvalidTask(f"{what}: insertMode must be one of {', '.join(MODES)}, not {mode!r}")
    if len(spec.inputs) != 1 or len(spec.outputs) != 1:
        raise InvalidTask(f"{what}: needs exactly one input and one output")
    src, dst = spec.inputs[0], spec.outputs[0]
    if src.type == "RedshiftDataNode" and dst.type != "RedshiftDataNode":
        # Out of the warehouse (AWS's unload to S3, or into a SQL table): rows stream as CopyActivity's do.
        log.info("%s: unloading %r to %s %r", what, src.name, dst.type, dst.name)
        return copy.run(ctx)
    if dst.database is None:
        raise InvalidTask(f"{what}: output {dst.name!r} needs a database")
    table = dst.fields.get("tableName") or dst.fields.get("table")
    if not table:
        raise InvalidTask(f"{what}: output {dst.name!r} needs tableName")
    skip, blank = _options(strings(ctx.field("commandOptions")), what)
    where = f"output {dst.name!r} (tableName {table})"
    ctx.progress.phase = "connecting"
    db = Database.connect(dst.database, f"output {dst.name!r}")
    if db.dialect != "postgresql":
        db.close()
        raise InvalidTask(f"{what}: output {dst.name!r} must be a PostgreSQL-protocol database "
                          "(jdbc:redshift:// or jdbc:postgresql://)")
    try:
        with db.errors(where):
            target = db.table_ref(str(table), dst.fields.get("schemaName"))
            if not db.table_exists(str(table), dst.fields.get("schemaName")):
                create = dst.fields.get("createTableSql")
                if not create:
                    raise TaskError("SQL.NoSuchTable", f"{where}: the table does not exist and the node has no "
                                    "createTableSql")
                with db.errors(f"output {dst.name!r} (createTableSql)"):
                    db.execute(str(create))
            columns = db.columns_of(target)
            keys = strings(dst.fields.get("primaryKeys")) or _primary_key(db, target)
            if mode in ("KEEP_EXISTING", "OVERWRITE_EXISTING") and not keys:
                raise InvalidTask(f"{what}: insertMode {mode} needs primary keys: set primaryKeys on output "
                                  f"{dst.name!r} or give table {table} a primary key")
            db.execute(f"CREATE TEMPORARY TABLE staging (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP")
        source = S3Source(ctx, src, skip_blank=blank, skip_header=skip) if src.type in S3_TYPES \
            else SqlSource(ctx, src)
        try:
            ctx.progress.phase = "loading staging"
            with db.errors(f"{where} staging"):
                n = db.copy_in("staging", columns, source.rows(len(columns)), source.origin)
        finally:
            source.close()
        merged = "staging"
        transform = ctx.field("transformSql")
        if transform:
            with db.errors(f"{what} transformSql"):
                db.execute(f"CREATE TEMPORARY TABLE staging2 ON COMMIT DROP AS {transform}")
            merged = "staging2"
        ctx.progress.phase = f"merging ({mode})"
        cols = ", ".join(db.quote(c) for c in columns)
        match = " AND ".join(f"t.{db.quote(k)} = s.{db.quote(k)}" for k in keys)
        with db.errors(f"{where} insertMode {mode}"):
            if mode == "TRUNCATE":
                db.execute(f"DELETE FROM {target}")  # DELETE, not TRUNCATE: readers are not locked out
            elif mode == "OVERWRITE_EXISTING":
                db.execute(f"DELETE FROM {target} t USING {merged} s WHERE {match}")
            if mode == "KEEP_EXISTING":
                written = db.execute(f"INSERT INTO {target} ({cols}) SELECT * FROM {merged} s "
                                     f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {match})")
            else:
                written = db.execute(f"INSERT INTO {target} ({cols}) SELECT * FROM {merged}")
        ctx.progress.phase = "committing"
        db.commit()
    finally:
        db.close()
    ctx.progress.rows_written = written
    log.info("loaded %d row(s) into staging, %d written to %s with insertMode %s", n, written, table, mode)
    return TaskResult("FINISHED", rows_read=n, rows_written=written)


def _primary_key(db: Database, target: str) -> list[str]:
    cur = db.conn.cursor()
    try:
        cur.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
                    "ORDER BY array_position(i.indkey, a.attnum)", (target,))
        return [r[0] for r in cur.fetchall()]
    finally:
        cur.close()
