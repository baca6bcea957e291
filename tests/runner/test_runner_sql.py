"""SqlActivity, SQL copies and SQL preconditions against real PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fixtures.servers import SqlServer, free_port
from runner_helpers import Runner, assert_failed, sql_node, task

pytestmark = pytest.mark.servers
PW_ENV = "DB_PASSWORD"


def db(server: SqlServer, name: str = "MyDb", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "JdbcDatabase", "connection_string": server.jdbc, "username": server.user,
            "password_env": PW_ENV, **extra}


def env(server: SqlServer) -> dict[str, str]:
    return {PW_ENV: server.password}


@pytest.fixture(params=["postgres", "mariadb"])
def server(request: pytest.FixtureRequest) -> SqlServer:
    s: SqlServer = request.getfixturevalue(request.param)
    return s


def fresh(server: SqlServer, table: str, ddl: str = "(id INT PRIMARY KEY, name VARCHAR(40))") -> str:
    server.sql(f"DROP TABLE IF EXISTS {table}")
    server.sql(f"CREATE TABLE {table} {ddl}")
    return table


# --------------------------------------------------------------------------------- SqlActivity
def test_sql_activity_binds_arguments_in_one_transaction(runner: Runner, server: SqlServer) -> None:
    t = fresh(server, "act1")
    spec = task("activity", "SqlActivity", {
        "script": f"INSERT INTO {t} VALUES (?, ?); INSERT INTO {t} VALUES (2, 'it''s; fine'); "
                  f"UPDATE {t} SET name = ? WHERE id = ?",
        "scriptArgument": ["1", "one", "uno", "1"]}, database=db(server))
    run = runner(spec, env(server))
    assert run.code == 0, run.output
    assert run.result.status == "FINISHED"
    assert run.result.rows_written == 3
    assert sorted(server.sql(f"SELECT id, name FROM {t}")) == [(1, "uno"), (2, "it's; fine")]


def test_sql_activity_rolls_back_when_a_statement_fails(runner: Runner, server: SqlServer) -> None:
    t = fresh(server, "act2")
    spec = task("activity", "SqlActivity", {"script": f"INSERT INTO {t} VALUES (1, 'a'); INSERT INTO {t} "
                                                      f"VALUES (1, 'duplicate key')"}, database=db(server))
    run = runner(spec, env(server))
    assert_failed(run, "SQL.BadRow")
    assert run.result.error_message.startswith("SqlActivity MySqlActivity statement 2: ")
    assert server.sql(f"SELECT COUNT(*) FROM {t}") == [(0,)]


def test_sql_activity_missing_table(runner: Runner, server: SqlServer) -> None:
    run = runner(task("activity", "SqlActivity", {"script": "DELETE FROM no_such_table"}, database=db(server)),
                 env(server))
    assert_failed(run, "SQL.NoSuchTable")
    assert "no_such_table" in run.result.error_message
    assert run.result.error_message.startswith("SqlActivity MySqlActivity statement 1: database MyDb: ")


def test_sql_activity_argument_count_mismatch_is_invalid(runner: Runner, postgres: SqlServer) -> None:
    run = runner(task("activity", "SqlActivity", {"script": "SELECT ?", "scriptArgument": ["a", "b"]},
                      database=db(postgres)), env(postgres))
    assert_failed(run, "Task.Invalid", "SqlActivity MySqlActivity: the script has 1 ? placeholder(s) but "
                  "scriptArgument has 2 value(s)", code=2)


def test_bad_password_names_the_database_and_hides_the_secret(runner: Runner, server: SqlServer) -> None:
    wrong = "not-the-password-" + "x" * 8
    run = runner(task("activity", "SqlActivity", {"script": "SELECT 1"}, database=db(server)), {PW_ENV: wrong})
    assert_failed(run, "SQL.AuthenticationFailed")
    assert run.result.error_message.startswith("SqlActivity MySqlActivity: database MyDb rejected the user name "
                                               "or password")
    assert wrong not in run.output


def test_unreachable_database(runner: Runner) -> None:
    port = free_port()
    for scheme in ("postgresql", "mysql"):
        spec = task("activity", "SqlActivity", {"script": "SELECT 1"}, database={
            "name": "Gone", "type": "JdbcDatabase", "connection_string": f"jdbc:{scheme}://127.0.0.1:{port}/x",
            "username": "u", "password_env": PW_ENV})
        run = runner(spec, {PW_ENV: "whatever-secret"})
        assert_failed(run, "SQL.ConnectionFailed")
        assert run.result.error_message.startswith(
            f"SqlActivity MySqlActivity: cannot connect to database Gone at 127.0.0.1:{port} ("), run.output


def test_password_env_not_set(runner: Runner, postgres: SqlServer) -> None:
    run = runner(task("activity", "SqlActivity", {"script": "SELECT 1"}, database=db(postgres)))
    assert_failed(run, "SQL.NoCredentials", "SqlActivity MySqlActivity: database MyDb password should come from "
                  "environment variable DB_PASSWORD (a Secret), which is not set")


def test_sqlite_activity(runner: Runner, tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (id INTEGER, name TEXT)").connection.commit()
    spec = task("activity", "SqlActivity", {"script": "INSERT INTO t VALUES (?, ?)", "scriptArgument": ["7", "x"]},
                database={"name": "Lite", "type": "JdbcDatabase", "connection_string": f"jdbc:sqlite:{path}"})
    run = runner(spec)
    assert run.code == 0, run.output
    assert sqlite3.connect(path).execute("SELECT * FROM t").fetchall() == [(7, "x")]


# --------------------------------------------------------------------------------- SQL -> SQL copy
def test_copy_postgres_to_mariadb_and_back(runner: Runner, postgres: SqlServer, mariadb: SqlServer) -> None:
    fresh(postgres, "src", "(id INT PRIMARY KEY, name TEXT, amount NUMERIC(10,2))")
    postgres.sql("INSERT INTO src SELECT g, 'name ' || g, g * 1.5 FROM generate_series(1, 2500) g")
    postgres.sql("UPDATE src SET name = NULL WHERE id = 3")
    fresh(mariadb, "dst", "(id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2))")
    spec = task("activity", "CopyActivity", inputs=[sql_node("Pg", db(postgres, "PgDb"), table="src",
                                                             selectQuery="SELECT * FROM src ORDER BY id")],
                outputs=[sql_node("Maria", db(mariadb, "MariaDb"), "MySqlDataNode", table="dst")])
    spec["outputs"][0]["database"]["password_env"] = "MARIA_PW"  # each database has its own Secret
    run = runner(spec, {"DB_PASSWORD": postgres.password, "MARIA_PW": mariadb.password})
    assert run.code == 0, run.output
    assert run.result.rows_written == 2500
    count, total = mariadb.sql("SELECT COUNT(*), SUM(amount) FROM dst")[0]
    assert (count, float(total)) == (2500, 1.5 * 2500 * 2501 / 2)
    assert mariadb.sql("SELECT name FROM dst WHERE id = 3") == [(None,)]


def test_copy_into_missing_table_without_create_sql(runner: Runner, postgres: SqlServer) -> None:
    fresh(postgres, "src2")
    postgres.sql("DROP TABLE IF EXISTS nowhere")
    spec = task("activity", "CopyActivity", inputs=[sql_node("In", db(postgres), table="src2")],
                outputs=[sql_node("Out", db(postgres), table="nowhere")])
    run = runner(spec, env(postgres))
    assert_failed(run, "SQL.NoSuchTable", "output 'Out' (table nowhere): the table does not exist in database "
                  "MyDb and the node has no createTableSql")


def test_copy_creates_table_with_create_table_sql(runner: Runner, postgres: SqlServer) -> None:
    fresh(postgres, "src3")
    postgres.sql("INSERT INTO src3 VALUES (1, 'a'), (2, 'b')")
    postgres.sql("DROP TABLE IF EXISTS made")
    spec = task("activity", "CopyActivity", inputs=[sql_node("In", db(postgres), table="src3")],
                outputs=[sql_node("Out", db(postgres), table="made",
                                  createTableSql="CREATE TABLE made (id INT, name TEXT)")])
    run = runner(spec, env(postgres))
    assert run.code == 0, run.output
    assert postgres.sql("SELECT * FROM made ORDER BY id") == [(1, "a"), (2, "b")]


def test_copy_with_insert_query_names_the_bad_row_and_rolls_back(runner: Runner, server: SqlServer) -> None:
    fresh(server, "src4", "(id INT, name VARCHAR(100))")
    server.sql("INSERT INTO src4 VALUES " + ", ".join(f"({i}, 'n{i}')" for i in range(1, 1501)))
    server.sql("UPDATE src4 SET name = 'far too long a name for the target column, which takes ten' "
               "WHERE id = 1234")
    fresh(server, "dst4", "(id INT, name VARCHAR(10))")
    spec = task("activity", "CopyActivity",
                inputs=[sql_node("In", db(server), table="src4", selectQuery="SELECT id, name FROM src4 ORDER BY id")],
                outputs=[sql_node("Out", db(server), table="dst4", insertQuery="INSERT INTO dst4 VALUES (?, ?)")])
    run = runner(spec, env(server))
    assert_failed(run, "SQL.BadRow")
    assert run.result.error_message.startswith("output 'Out' (insertQuery): row 1234 of the query on input 'In' was rejected: "), \
        run.output
    assert server.sql("SELECT COUNT(*) FROM dst4") == [(0,)]


# --------------------------------------------------------------------------------- preconditions
@pytest.mark.parametrize(("query", "code"), [("SELECT COUNT(*) > 0 FROM pre", 0), ("SELECT 0", 75),
                                            ("SELECT 1 WHERE 1 = 0", 75)])
def test_sql_query_precondition(runner: Runner, postgres: SqlServer, query: str, code: int) -> None:
    fresh(postgres, "pre")
    postgres.sql("INSERT INTO pre VALUES (1, 'x')")
    run = runner(task("precondition", "SqlQueryPrecondition", {"query": query}, database=db(postgres)),
                 env(postgres))
    assert run.code == code, run.output
    assert run.result.status == ("FINISHED" if code == 0 else "FALSE")


def test_exists_on_a_table(runner: Runner, server: SqlServer) -> None:
    fresh(server, "here")
    server.sql("DROP TABLE IF EXISTS not_here")
    node = sql_node("Here", db(server), table="here")
    assert runner(task("precondition", "Exists", guarded_node=node), env(server)).code == 0
    node = sql_node("NotHere", db(server), table="not_here")
    run = runner(task("precondition", "Exists", guarded_node=node), env(server))
    assert run.code == 75
    assert run.result.error_message == "Exists MyExists: table not_here of data node 'NotHere' does not exist"
