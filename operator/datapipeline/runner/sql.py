"""One connection layer for PostgreSQL (psycopg 3), MySQL/MariaDB (pymysql) and SQLite.

The dialect comes from the database object's connection string (``jdbc:postgresql://``,
``jdbc:redshift://``, ``jdbc:mysql://``, ``jdbc:mariadb://``, ``jdbc:sqlite:``).
Bulk loads use each server's fast path: ``COPY FROM STDIN`` on PostgreSQL,
multi-row batched inserts elsewhere. Every load runs in one transaction that
the caller commits, so a bad row leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg

from datapipeline.core.task import DatabaseSpec
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import REDACT
from datapipeline.runner.sqltext import convert_placeholders

if TYPE_CHECKING:  # imported when a MySQL database is used: a PostgreSQL load should not pay for it
    import pymysql

BATCH = 1000
Origin = Callable[[int], str]  # row number within a load -> where it came from, for messages

_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "redshift": "postgresql",
            "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
_DEFAULT_PORTS = {"postgresql": 5432, "redshift": 5439, "mysql": 3306, "mariadb": 3306}


# A table name the user quoted: one or two quoted identifiers (schema.table), nothing after them.
_IDENTIFIER = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`)'
_QUOTED_NAME = re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})?")


@dataclass(frozen=True)
class ConnInfo:
    dialect: str  # postgresql | mysql | sqlite
    host: str = ""
    port: int = 0
    database: str = ""
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: dict[str, str] = field(default_factory=dict)
    path: str = ""  # sqlite
    scheme: str = ""  # as written: redshift speaks PostgreSQL's protocol but not all of its SQL

    def display(self) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:{self.path}"
        return f"{self.dialect}://{self.host}:{self.port}/{self.database}"


def conninfo(db: DatabaseSpec, where: str) -> ConnInfo:
    text = (db.connection_string or "").strip()
    if text.startswith("jdbc:"):
        text = text[5:]
    scheme, _, rest = text.partition(":")
    dialect = _SCHEMES.get(scheme.lower())
    if not dialect:
        raise InvalidTask(f"{where}: database {db.name} connectionString must start with jdbc:postgresql://, "
                          "jdbc:redshift://, jdbc:mysql://, jdbc:mariadb:// or jdbc:sqlite:", "SQL.BadConnectionString")
    if dialect == "sqlite":
        path = rest[2:] if rest.startswith("//") else rest
        return ConnInfo("sqlite", path=path or ":memory:")
    url = urlsplit(f"{scheme}:{rest}")
    params = {k: v for k, v in parse_qsl(url.query, keep_blank_values=True)}
    params.update({str(k): str(v) for k, v in (db.properties or {}).items()})
    user = db.username or _env(db.username_env, db, where, "username") or params.pop("user", None) \
        or (unquote(url.username) if url.username else None)
    password = _env(db.password_env, db, where, "password") or params.pop("password", None) \
        or (unquote(url.password) if url.password else None)
    params.pop("user", None)
    params.pop("password", None)
    REDACT.add(password)
    try:
        port = url.port or _DEFAULT_PORTS[scheme.lower()]
    except ValueError:
        raise InvalidTask(f"{where}: database {db.name} connectionString has an invalid port",
                          "SQL.BadConnectionString") from None
    database = db.database_name or url.path.lstrip("/")
    if not url.hostname:
        raise InvalidTask(f"{where}: database {db.name} connectionString has no host", "SQL.BadConnectionString")
    return ConnInfo(dialect, url.hostname, port, database, user, password, params, scheme=scheme.lower())


def _env(name: str | None, db: DatabaseSpec, where: str, what: str) -> str | None:
    if not name:
        return None
    value = os.environ.get(name)
    if value is None:
        raise TaskError("SQL.NoCredentials", f"{where}: database {db.name} {what} should come from environment "
                        f"variable {name} (a Secret), which is not set")
    return value


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return REDACT(text[0]) if text else type(e).__name__


_COPY_LINE = re.compile(r"line (\d+)")
_MYSQL_ROW = re.compile(r" at row \d+$")


class Database:
    """A connection in one open transaction; subclasses adapt one driver."""

    dialect = ""
    paramstyle = "format"

    def __init__(self, info: ConnInfo, name: str, where: str) -> None:
        self.info, self.name, self.where = info, name, where

    @staticmethod
    def connect(spec: DatabaseSpec, where: str) -> Database:
        info = conninfo(spec, where)
        cls: type[Database] = {"postgresql": Postgres, "mysql": MySql, "sqlite": Sqlite}[info.dialect]
        db = cls(info, spec.name, where)
        with db.errors(where):
            db._open()
        return db

    # -- driver specifics
    def _open(self) -> None:
        raise NotImplementedError

    @property
    def conn(self) -> Any:
        raise NotImplementedError

    def classify(self, e: BaseException) -> tuple[str, str] | None:
        """(error_id, human text) for a driver error, or None when it is not this driver's."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def table_exists(self, table: str, schema: str | None) -> bool:
        raise NotImplementedError

    def select(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], Iterator[Sequence[Any]]]:
        cur = self.conn.cursor()
        self.execute_on(cur, query, params)
        return [d[0] for d in cur.description or ()], iter(cur)

    def copy_in(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], origin: Origin) -> int:
        placeholders = ", ".join(["?"] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(self.quote(c) for c in columns)}) VALUES ({placeholders})"
        return self.insert_rows(sql, rows, origin)

    def accepts_csv(self) -> bool:
        """Whether :meth:`copy_csv` can load CSV bytes as they are."""
        return False

    def copy_csv(self, table: str, columns: Sequence[str], blocks: Iterable[bytes]) -> int:
        raise NotImplementedError

    # -- shared
    @contextmanager
    def errors(self, where: str, origin: Origin | None = None) -> Iterator[None]:
        try:
            yield
        except TaskError:
            raise
        except Exception as e:
            found = self.classify(e)
            if found is None:
                raise
            error_id, text = found
            raise TaskError(error_id, f"{where}: {text}") from None

    def table_ref(self, table: str, schema: str | None = None) -> str:
        """The quoted name; a table already written 'schema.table' is split on its dot. A name the user quoted
        passes as written only when it is exactly quoted identifiers ("s"."t"): anything else is one name."""
        if _QUOTED_NAME.fullmatch(table):
            return table if not schema else f"{self.quote(schema)}.{table}"
        if not schema and "." in table:
            schema, table = table.split(".", 1)
        return f"{self.quote(schema)}.{self.quote(table)}" if schema else self.quote(table)

    def execute_on(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        if params:
            sql, _ = convert_placeholders(sql, self.paramstyle)
            return cur.execute(sql, tuple(params))
        return cur.execute(sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.conn.cursor()
        try:
            self.execute_on(cur, sql, params)
            return int(cur.rowcount if cur.rowcount is not None else -1)
        finally:
            cur.close()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        cur = self.conn.cursor()
        try:
            self.execute_on(cur, sql, params)
            if cur.description is None:
                return None
            row: Sequence[Any] | None = cur.fetchone()
            return row
        finally:
            cur.close()

    def columns_of(self, table_ref: str) -> list[str]:
        cur = self.conn.cursor()
        try:
            cur.execute(f"SELECT * FROM {table_ref} WHERE 1 = 0")
            return [d[0] for d in cur.description or ()]
        finally:
            cur.close()

    def insert_rows(self, sql: str, rows: Iterable[Sequence[Any]], origin: Origin) -> int:
        """Batched inserts with ``?`` placeholders; a failing batch is replayed row by row
        (under a savepoint) only to name the bad row in the message."""
        converted, _ = convert_placeholders(sql, self.paramstyle)
        cur = self.conn.cursor()
        done = 0
        batch: list[Sequence[Any]] = []
        try:
            for row in rows:
                batch.append(tuple(row))
                if len(batch) >= BATCH:
                    self._insert_batch(cur, converted, batch, done, origin)
                    done += len(batch)
                    batch = []
            if batch:
                self._insert_batch(cur, converted, batch, done, origin)
                done += len(batch)
        finally:
            cur.close()
        return done

    def _insert_batch(self, cur: Any, sql: str, batch: list[Sequence[Any]], done: int, origin: Origin) -> None:
        cur.execute("SAVEPOINT dp_batch")
        try:
            cur.executemany(sql, batch)
            cur.execute("RELEASE SAVEPOINT dp_batch")
            return
        except Exception as e:
            if self.classify(e) is None:
                raise
            cur.execute("ROLLBACK TO SAVEPOINT dp_batch")
            first = e
        for i, row in enumerate(batch):
            try:
                cur.execute(sql, row)
            except Exception as e:
                found = self.classify(e)
                if found is None:
                    raise
                raise TaskError("SQL.BadRow" if found[0] in ("SQL.BadRow", "SQL.Error") else found[0],
                                f"{self.where}: {origin(done + i + 1)} was rejected: {found[1]}") from None
        found = self.classify(first)
        raise TaskError(found[0] if found else "SQL.Error", f"{self.where}: rows {done + 1}-{done + len(batch)} "
                        f"were rejected: {found[1] if found else first}")

    def commit(self) -> None:
        with self.errors(self.where):
            self.conn.commit()

    def close(self, rollback: bool = True) -> None:
        try:
            if rollback:
                self.conn.rollback()
        except Exception:  # the connection may already be broken; closing is all that is left
            pass
        with suppress(Exception):
            self.conn.close()


class Postgres(Database):
    dialect = "postgresql"
    paramstyle = "format"
    _conn: psycopg.Connection[Any]

    def _open(self) -> None:
        i = self.info
        kwargs: dict[str, Any] = {"host": i.host, "port": i.port, "dbname": i.database, "connect_timeout": 10,
                                  "application_name": "datapipeline-runner"}
        if i.user:
            kwargs["user"] = i.user
        if i.password:
            kwargs["password"] = i.password
        kwargs.update({k: v for k, v in i.params.items() if k in ("sslmode", "sslrootcert", "options",
                                                                 "target_session_attrs", "connect_timeout")})
        self._conn = psycopg.connect(**kwargs)

    @property
    def conn(self) -> Any:
        return self._conn

    def classify(self, e: BaseException) -> tuple[str, str] | None:
        if not isinstance(e, psycopg.Error):
            return None
        state = getattr(e, "sqlstate", None) or ""
        text = _first_line(e)
        low = text.lower()
        if "password authentication failed" in low or state == "28P01" or state == "28000":
            return "SQL.AuthenticationFailed", f"database {self.name} rejected the user name or password ({text})"
        if isinstance(e, psycopg.OperationalError) and not state and (
                "connect" in low or "connection" in low or "timeout" in low or "resolve" in low):
            return "SQL.ConnectionFailed", f"cannot connect to database {self.name} at " \
                                           f"{self.info.host}:{self.info.port} ({text})"
        if state == "3D000":
            return "SQL.NoSuchDatabase", f"database {self.name}: {text}"
        if state == "42P01":
            return "SQL.NoSuchTable", f"database {self.name}: {text}"
        if state == "42601":
            return "SQL.SyntaxError", f"database {self.name}: {text}"
        if state[:2] in ("22", "23") or state == "42703":
            return "SQL.BadRow", text
        return "SQL.Error", f"database {self.name}: {text}" + (f" (SQLSTATE {state})" if state else "")

    def table_exists(self, table: str, schema: str | None) -> bool:
        cur = self._conn.cursor()
        try:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table_ref(table, schema),))
            row = cur.fetchone()
        finally:
            cur.close()
        return bool(row and row[0])

    def select(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], Iterator[Sequence[Any]]]:
        # A named (server-side) cursor streams the result instead of loading it all.
        cur = self._conn.cursor(name="dp_select")
        cur.itersize = 5000
        self.execute_on(cur, query, params)
        return [d[0] for d in cur.description or ()], iter(cur)

    def copy_in(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], origin: Origin) -> int:
        n = 0
        cols = ", ".join(self.quote(c) for c in columns)
        cur = self._conn.cursor()
        try:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        except psycopg.Error as e:
            found = self.classify(e)
            assert found is not None
            context = (getattr(e.diag, "context", None) or "") if hasattr(e, "diag") else ""
            m = _COPY_LINE.search(context)
            if found[0] == "SQL.BadRow" and m:
                raise TaskError("SQL.BadRow", f"{self.where}: {origin(int(m.group(1)))} was rejected: "
                                f"{found[1]}") from None
            raise
        finally:
            cur.close()
        return n

    def accepts_csv(self) -> bool:
        # The bytes go unconverted: the server must read them as UTF-8, as Format.read decodes them.
        # Redshift has no savepoints to fall back with.
        status = self._conn.pgconn.parameter_status
        return self.info.scheme != "redshift" and status(b"client_encoding") == b"UTF8" \
            and status(b"server_encoding") == b"UTF8"

    def copy_csv(self, table: str, columns: Sequence[str], blocks: Iterable[bytes]) -> int:
        """CSV bytes into ``table``; an empty field, quoted or not, is NULL (FORCE_NULL) as in Format.read."""
        cols = ", ".join(self.quote(c) for c in columns)
        cur = self._conn.cursor()
        try:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv, FORCE_NULL ({cols}))") as copy:
                for block in blocks:
                    copy.write(block)
            return int(cur.rowcount)
        finally:
            cur.close()


class MySql(Database):
    dialect = "mysql"
    paramstyle = "format"
    _conn: pymysql.connections.Connection[Any]

    def _open(self) -> None:
        import pymysql

        i = self.info
        self._conn = pymysql.connect(host=i.host, port=i.port, user=i.user or "", password=i.password or "",
                                     database=i.database or None, connect_timeout=10, autocommit=False,
                                     charset=i.params.get("characterEncoding", "utf8mb4").lower()
                                     .replace("utf-8", "utf8mb4"), local_infile=False)
        cur = self._conn.cursor()
        # Strict mode: a bad value is an error, never a silent truncation to 0 or ''.
        cur.execute("SET SESSION sql_mode = CONCAT_WS(',', @@sql_mode, 'STRICT_ALL_TABLES')")
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cur.close()

    @property
    def conn(self) -> Any:
        return self._conn

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def classify(self, e: BaseException) -> tuple[str, str] | None:
        import pymysql

        if not isinstance(e, pymysql.err.Error):
            return None
        code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
        text = REDACT(str(e.args[1]) if len(e.args) > 1 else str(e))
        text = _MYSQL_ROW.sub("", text)  # "at row 1" counts within one statement, not the input: misleading
        if code in (1045, 1044, 1698):
            return "SQL.AuthenticationFailed", f"database {self.name} rejected the user name or password ({text})"
        if code in (2002, 2003, 2005, 2006, 2013):
            return "SQL.ConnectionFailed", f"cannot connect to database {self.name} at " \
                                           f"{self.info.host}:{self.info.port} ({text})"
        if code == 1049:
            return "SQL.NoSuchDatabase", f"database {self.name}: {text}"
        if code == 1146:
            return "SQL.NoSuchTable", f"database {self.name}: {text}"
        if code == 1064:
            return "SQL.SyntaxError", f"database {self.name}: {text}"
        if isinstance(e, pymysql.err.DataError | pymysql.err.IntegrityError) or code in (
                1136, 1264, 1265, 1292, 1366, 1048, 1406, 1054):
            return "SQL.BadRow", text
        return "SQL.Error", f"database {self.name}: {text}" + (f" (error {code})" if code else "")

    def table_exists(self, table: str, schema: str | None) -> bool:
        if not schema and "." in table:
            schema, table = table.split(".", 1)
        cur = self._conn.cursor()
        try:
            cur.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) "
                        "AND table_name = %s", (schema, table.strip("`")))
            return cur.fetchone() is not None
        finally:
            cur.close()

    def select(self, query: str, params: Sequence[Any] = ()) -> tuple[list[str], Iterator[Sequence[Any]]]:
        import pymysql.cursors

        cur = self._conn.cursor(pymysql.cursors.SSCursor)  # unbuffered: rows stream from the server
        self.execute_on(cur, query, params)
        return [d[0] for d in cur.description or ()], iter(cur.fetchone, None)


class Sqlite(Database):
    dialect = "sqlite"
    paramstyle = "qmark"
    _conn: sqlite3.Connection

    def _open(self) -> None:
        path = self.info.path
        if path != ":memory:" and not os.path.exists(path):
            raise TaskError("SQL.NoSuchDatabase", f"{self.where}: database {self.name}: file {path} does not exist")
        # isolation_level None: we issue BEGIN ourselves so savepoints and DDL share one transaction.
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._conn.execute("BEGIN")

    @property
    def conn(self) -> Any:
        return self._conn

    def classify(self, e: BaseException) -> tuple[str, str] | None:
        if not isinstance(e, sqlite3.Error):
            return None
        text = _first_line(e)
        if "no such table" in text:
            return "SQL.NoSuchTable", f"database {self.name}: {text}"
        if "syntax error" in text:
            return "SQL.SyntaxError", f"database {self.name}: {text}"
        if "unable to open" in text:
            return "SQL.ConnectionFailed", f"cannot open database {self.name} ({text})"
        if isinstance(e, sqlite3.IntegrityError | sqlite3.DataError) or "values for" in text:
            return "SQL.BadRow", text
        return "SQL.Error", f"database {self.name}: {text}"

    def table_exists(self, table: str, schema: str | None) -> bool:
        if not schema and "." in table:
            schema, table = table.split(".", 1)
        master = f"{self.quote(schema)}.sqlite_master" if schema else "sqlite_master"
        row = self._conn.execute(f"SELECT 1 FROM {master} WHERE type IN ('table', 'view') AND name = ?",
                                 (table.strip('"'),)).fetchone()
        return row is not None

    def commit(self) -> None:
        with self.errors(self.where):
            self._conn.execute("COMMIT")

    def close(self, rollback: bool = True) -> None:
        try:
            if rollback and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._conn.close()
