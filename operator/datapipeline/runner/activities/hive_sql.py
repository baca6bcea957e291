"""SQL tables as HiveActivity's ``${inputN}`` and ``${outputN}``, through Spark's JDBC source (docs/spark.md).

An input is the node's selectQuery (or its whole table) read by Spark. An output is written atomically: the
runner creates a staging table shaped like the node's table, Spark's ``${outputN}`` is a view over the staging
table (INSERT INTO and INSERT OVERWRITE both fill it), and once every statement succeeded the runner moves the
rows into the table in one transaction, deleting its rows first when the script overwrote ``${outputN}``. A
failure anywhere leaves the table as it was; the staging table is dropped in every case.

The runner connects first, so a wrong host, user or password fails before Spark starts, naming the database.
Passwords reach Spark only as environment variables of its process, never in the plan file or a log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from datapipeline.core.task import DataNodeSpec
from datapipeline.runner.errors import InvalidTask
from datapipeline.runner.log import get
from datapipeline.runner.sql import ConnInfo, Database

log = get("hive")
SQL_NODES = ("SqlDataNode", "MySqlDataNode")
# Spark's JDBC URL and driver per dialect (jars in spark-image/jars.lock). MariaDB's driver serves MySQL and
# MariaDB under the jdbc:mysql scheme (permitMysqlScheme), which is what makes Spark quote names as MySQL does.
JDBC_URLS = {"postgresql": "jdbc:postgresql://{host}:{port}/{database}",
             "mysql": "jdbc:mysql://{host}:{port}/{database}?permitMysqlScheme"}
JDBC_DRIVERS = {"postgresql": "org.postgresql.Driver", "mysql": "org.mariadb.jdbc.Driver"}
# A staging table shaped like the target: its columns, types, defaults and NOT NULLs (MySQL: its keys too).
STAGE_DDL = {"postgresql": "CREATE TABLE {stage} (LIKE {target} INCLUDING DEFAULTS)",
             "mysql": "CREATE TABLE {stage} LIKE {target}"}


@dataclass(frozen=True)
class SqlOutput:
    """A SQL output of one attempt: where its rows wait (``stage``) and where they go (``target``)."""

    node: DataNodeSpec
    where: str
    table: str  # output1, ...: the name in the script
    target: str  # quoted, as the database writes it
    stage: str


def _open(node: DataNodeSpec, where: str) -> Database:
    if node.database is None:
        raise InvalidTask(f"{where}: {node.type} needs a database")
    db = Database.connect(node.database, where)
    if db.info.dialect not in JDBC_URLS:
        db.close()
        raise InvalidTask(f"{where}: database {node.database.name} is {db.info.dialect}: Spark reads and writes "
                          "PostgreSQL, MySQL and MariaDB tables here", "Task.UnsupportedNode")
    return db


def _jdbc(info: ConnInfo, password_env: str, secrets: dict[str, str], **extra: str) -> dict[str, Any]:
    if info.password:
        secrets[password_env] = info.password
    return {"url": JDBC_URLS[info.dialect].format(host=info.host, port=info.port, database=info.database),
            "driver": JDBC_DRIVERS[info.dialect], "user": info.user or "", "password_env": password_env,
            "properties": dict(info.params), **extra}


def sql_input(node: DataNodeSpec, where: str, index: int, secrets: dict[str, str]) -> dict[str, Any]:
    """The node's selectQuery, or its whole table (quoted in the database's dialect), as ``${inputN}``."""
    db = _open(node, where)
    try:
        table, query = node.fields.get("table") or node.fields.get("tableName"), node.fields.get("selectQuery")
        if not query and not table:
            raise InvalidTask(f"{where}: {node.type} needs table or selectQuery")
        query = str(query or f"SELECT * FROM {db.table_ref(str(table), node.fields.get('schemaName'))}")
        jdbc = _jdbc(db.info, f"DATAPIPELINE_HIVE_INPUT{index}_PASSWORD", secrets,
                     query=query.strip().rstrip(";"))
    finally:
        db.close()
    return {"table": f"input{index}", "what": where, "source": "jdbc", "paths": [], "options": {}, "schema": None,
            "jdbc": jdbc}


def sql_output(node: DataNodeSpec, where: str, index: int,
               secrets: dict[str, str]) -> tuple[dict[str, Any], SqlOutput]:
    """The staging table for the node's table (which must exist), and the plan's entry for ``${outputN}``."""
    table = node.fields.get("table") or node.fields.get("tableName")
    if not table:
        raise InvalidTask(f"{where}: the rows go to the node's table: give {node.type} a table")
    schema = node.fields.get("schemaName")
    db = _open(node, where)
    try:
        with db.errors(where):
            if not db.table_exists(str(table), schema):
                raise InvalidTask(f"{where}: table {table} does not exist in database {db.name} (create it first: "
                                  "its columns are the output's)", "SQL.NoSuchTable")
            target = db.table_ref(str(table), schema)
            stage = db.table_ref(f"dp_stage_{uuid.uuid4().hex[:16]}", _schema_of(str(table), schema))
            db.execute(STAGE_DDL[db.info.dialect].format(stage=stage, target=target))
            db.commit()
        jdbc = _jdbc(db.info, f"DATAPIPELINE_HIVE_OUTPUT{index}_PASSWORD", secrets, dbtable=stage)
    finally:
        db.close()
    entry = {"table": f"output{index}", "what": where, "sink": "jdbc", "jdbc": jdbc}
    return entry, SqlOutput(node, where, f"output{index}", target, stage)


def _schema_of(table: str, schema: str | None) -> str | None:
    """The target's schema, where its staging table goes (a name written "s"."t": the connection's default)."""
    if schema:
        return schema
    plain = not table.startswith(('"', "`"))
    return table.split(".", 1)[0] if plain and "." in table else None


def publish(outputs: list[SqlOutput], overwritten: set[str]) -> None:
    """Move each output's staged rows into its table, in one transaction per table."""
    for out in outputs:
        assert out.node.database is not None
        db = Database.connect(out.node.database, out.where)
        try:
            with db.errors(out.where):
                replaced = db.execute(f"DELETE FROM {out.target}") if out.table in overwritten else None
                moved = db.execute(f"INSERT INTO {out.target} SELECT * FROM {out.stage}")
                db.commit()
        finally:
            db.close()
        log.info("%s: %d row(s) into %s%s", out.where, moved, out.target,
                 f" (in place of its {replaced} row(s): the script overwrote it)" if replaced is not None else "")


def drop_stages(outputs: list[SqlOutput]) -> None:
    """Drop the staging tables; a failure to is logged (the table is named), never the task's error."""
    for out in outputs:
        assert out.node.database is not None
        try:
            db = Database.connect(out.node.database, out.where)
            try:
                db.execute(f"DROP TABLE IF EXISTS {out.stage}")
                db.commit()
            finally:
                db.close()
        except Exception as e:  # cleanup reports and goes on
            log.warning("%s: could not drop the staging table %s: %s", out.where, out.stage, str(e)[:300])
