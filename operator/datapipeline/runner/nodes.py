"""Reading from and writing to data nodes (S3DataNode, SqlDataNode, MySqlDataNode, RedshiftDataNode).

A :class:`Source` yields rows lazily; a sink consumes them. Nothing materialises a
whole file or table, which is what keeps the runner's memory flat.
"""

from __future__ import annotations

import bisect
import gzip
import json
import posixpath
from collections.abc import Iterator, Sequence
from typing import IO, Any

from datapipeline.core.task import DataNodeSpec
from datapipeline.runner.context import Context
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.formats import ChunkStream, Format, Row, column_names, gzip_chunks
from datapipeline.runner.log import get
from datapipeline.runner.s3 import S3Url

log = get("copy")

S3_TYPES = ("S3DataNode",)
SQL_TYPES = ("SqlDataNode", "MySqlDataNode", "RedshiftDataNode")


def is_gzip(node: DataNodeSpec) -> bool:
    return str(node.fields.get("compression") or "none").lower() == "gzip"


def s3_location(node: DataNodeSpec, role: str) -> tuple[str, S3Url]:
    """Which of filePath / directoryPath / manifestFilePath the node uses, and its URL."""
    where = f"{role} {node.name!r}"
    for name in ("filePath", "directoryPath", "manifestFilePath"):
        value = node.fields.get(name)
        if value:
            return name, S3Url.parse(value, f"{where} {name}")
    raise InvalidTask(f"{where}: S3DataNode needs filePath, directoryPath or manifestFilePath")


def s3_files(ctx: Context, node: DataNodeSpec, role: str) -> list[S3Url]:
    """The objects an input S3DataNode stands for (a file, a directory's objects, a manifest's entries)."""
    kind, url = s3_location(node, role)
    where = f"{role} {node.name!r} ({kind} {url})"
    if kind == "filePath":
        return [url]
    if kind == "directoryPath":
        files = [u for u, _ in ctx.s3.list(url, where)]
        if not files and not ctx.s3.bucket_exists(url, where):
            raise TaskError("S3.NoSuchBucket", f"{where}: bucket '{url.bucket}' does not exist")
        return files
    return _manifest(ctx, url, where)


def _manifest(ctx: Context, url: S3Url, where: str) -> list[S3Url]:
    """A Redshift-style manifest: {"entries": [{"url": "s3://...", "mandatory": true}, ...]}."""
    try:
        entries = json.loads(ctx.s3.read_text(url, where)).get("entries")
        if not isinstance(entries, list):
            raise ValueError("no entries list")
    except (ValueError, AttributeError) as e:
        raise TaskError("S3.BadManifest", f"{where}: the manifest is not valid JSON with an \"entries\" list "
                        f"({e})") from None
    files: list[S3Url] = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or "url" not in entry:
            raise TaskError("S3.BadManifest", f"{where}: manifest entry {i} has no url")
        file = S3Url.parse(entry["url"], f"{where} entry {i}")
        if entry.get("mandatory") is False and ctx.s3.head(file, where) is None:
            log.info("skipping optional manifest entry %s: it does not exist", file)
            continue
        files.append(file)
    return files


class Source:
    columns: list[str] | None = None

    def rows(self, expected: int | None) -> Iterator[Row]:
        raise NotImplementedError

    def origin(self, n: int) -> str:
        return f"row {n}"

    def close(self) -> None:
        pass


class S3Source(Source):
    def __init__(self, ctx: Context, node: DataNodeSpec, role: str = "input", skip_blank: bool = False,
                 skip_header: int = 0) -> None:
        self.ctx, self.node, self.role = ctx, node, role
        self.format = Format.of(node.data_format, f"{role} {node.name!r}")
        self.columns = list(self.format.columns) or None
        self.files = s3_files(ctx, node, role)
        self.skip_blank = skip_blank
        self.skip_header = skip_header
        self._starts: list[int] = []  # row index (0-based) where each file begins
        self._file_urls: list[S3Url] = []

    def open(self, url: S3Url) -> IO[bytes]:
        where = f"{self.role} {self.node.name!r} ({url})"
        stream: IO[bytes] = self.ctx.s3.open(url, where)
        if is_gzip(self.node):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        return stream

    def rows(self, expected: int | None) -> Iterator[Row]:
        n = 0
        progress = self.ctx.progress
        for url in self.files:
            self._starts.append(n)
            self._file_urls.append(url)
            where = f"{self.role} {self.node.name!r} ({url})"
            with self.open(url) as stream:
                try:
                    for row in self.format.read(stream, where, expected, self.skip_blank, self.skip_header):
                        n += 1
                        progress.rows_read = n
                        yield row
                except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
                    raise TaskError("Format.Compression", f"{where}: cannot decompress the data as gzip "
                                    f"({e}); check the node's compression field") from None

    def origin(self, n: int) -> str:
        i = bisect.bisect_right(self._starts, n - 1) - 1
        if i < 0:
            return f"row {n}"
        return f"record {n - self._starts[i]} of {self._file_urls[i]}"


class SqlSource(Source):
    def __init__(self, ctx: Context, node: DataNodeSpec, role: str = "input") -> None:
        self.ctx, self.node, self.role = ctx, node, role
        self.where = f"{role} {node.name!r}"
        if node.database is None:
            raise InvalidTask(f"{self.where}: {node.type} needs a database")
        from datapipeline.runner.sql import Database  # lazily: shell tasks need no SQL driver

        self.db = Database.connect(node.database, self.where)
        table = node.fields.get("table") or node.fields.get("tableName")
        query = node.fields.get("selectQuery")
        if not query:
            if not table:
                raise InvalidTask(f"{self.where}: {node.type} needs table or selectQuery")
            query = f"SELECT * FROM {self.db.table_ref(str(table), node.fields.get('schemaName'))}"
        self.query = str(query)
        with self.db.errors(f"{self.where} (selectQuery)" if node.fields.get("selectQuery") else
                            f"{self.where} (table {table})"):
            self.columns, self._cursor = self.db.select(self.query)

    def rows(self, expected: int | None) -> Iterator[Row]:
        if expected is not None and self.columns is not None and len(self.columns) != expected:
            raise TaskError("Format.ColumnCount", f"{self.where}: the query returns {len(self.columns)} columns "
                            f"({', '.join(self.columns)}), the output expects {expected}")
        n = 0
        with self.db.errors(self.where):
            for row in self._cursor:
                n += 1
                self.ctx.progress.rows_read = n
                yield row

    def origin(self, n: int) -> str:
        return f"row {n} of the query on {self.where}"

    def close(self) -> None:
        self.db.close()


def open_source(ctx: Context, node: DataNodeSpec, role: str = "input") -> Source:
    if node.type in S3_TYPES:
        return S3Source(ctx, node, role)
    if node.type in SQL_TYPES:
        return SqlSource(ctx, node, role)
    raise InvalidTask(f"{role} {node.name!r}: CopyActivity cannot read a {node.type}", "Task.UnsupportedNode")


# ---------------------------------------------------------------------------------------- sinks
def write_s3(ctx: Context, node: DataNodeSpec, rows: Iterator[Row], name: str, header: Sequence[str] | None,
             role: str = "output") -> S3Url:
    """Streams rows into one object: the node's filePath, or ``name`` under its directoryPath."""
    kind, url = s3_location(node, role)
    if kind == "manifestFilePath":
        raise InvalidTask(f"{role} {node.name!r}: an output S3DataNode needs filePath or directoryPath")
    target = url if kind == "filePath" else url.child(name)
    fmt = Format.of(node.data_format, f"{role} {node.name!r}")

    def counted() -> Iterator[Row]:
        for row in rows:
            ctx.progress.rows_written += 1
            yield row

    chunks = fmt.encode(counted(), header)
    if is_gzip(node):
        chunks = gzip_chunks(chunks)
    def counted_bytes(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            ctx.progress.bytes += len(chunk)
            yield chunk

    ctx.s3.upload(ChunkStream(counted_bytes(chunks)), target, f"{role} {node.name!r} ({target})")  # type: ignore[arg-type]
    return target


def output_name(node: DataNodeSpec, source_name: str | None) -> str:
    fmt = Format.of(node.data_format, node.name)
    name = source_name or f"part-00000{fmt.extension}"
    if name.endswith(".gz") and not is_gzip(node):
        name = name[:-3]
    elif is_gzip(node) and not name.endswith(".gz"):
        name += ".gz"
    return name


def basename(url: S3Url) -> str:
    return posixpath.basename(url.key) or "part-00000"


class SqlSink:
    """Loads rows into a table in one transaction; ``commit`` makes them visible, ``close`` rolls back."""

    def __init__(self, ctx: Context, node: DataNodeSpec, role: str = "output") -> None:
        self.ctx, self.node = ctx, node
        self.where = f"{role} {node.name!r}"
        if node.database is None:
            raise InvalidTask(f"{self.where}: {node.type} needs a database")
        table = node.fields.get("table") or node.fields.get("tableName")
        self.insert_query = node.fields.get("insertQuery")
        if not table and not self.insert_query:
            raise InvalidTask(f"{self.where}: {node.type} needs table")
        self.table = str(table or "")
        from datapipeline.runner.sql import Database

        self.db = Database.connect(node.database, self.where)
        self.table_ref = self.db.table_ref(self.table, node.fields.get("schemaName")) if table else ""
        self.columns: list[str] = []

    def prepare(self, wanted: list[str] | None) -> int | None:
        """Creates the table if needed and returns how many columns each row must have."""
        where = f"{self.where} (table {self.table})"
        with self.db.errors(where):
            if self.table and not self.db.table_exists(self.table, self.node.fields.get("schemaName")):
                create = self.node.fields.get("createTableSql")
                if not create:
                    raise TaskError("SQL.NoSuchTable", f"{where}: the table does not exist in database "
                                    f"{self.db.name} and the node has no createTableSql")
                log.info("creating table %s with createTableSql", self.table)
                with self.db.errors(f"{self.where} (createTableSql)"):
                    self.db.execute(str(create))
            if self.insert_query:
                return None
            table_cols = self.db.columns_of(self.table_ref)
        if wanted:
            missing = [c for c in wanted if c.lower() not in {t.lower() for t in table_cols}]
            if missing:
                raise TaskError("SQL.NoSuchColumn", f"{where}: the data format's columns {', '.join(missing)} "
                                f"are not columns of the table ({', '.join(table_cols)})")
            self.columns = wanted
        else:
            self.columns = table_cols
        return len(self.columns)

    def load(self, rows: Iterator[Row], source: Source) -> int:
        def counted() -> Iterator[Row]:
            for row in rows:
                self.ctx.progress.rows_written += 1
                yield row

        if self.insert_query:
            self.db.where = f"{self.where} (insertQuery)"  # bad-row messages name the field
            with self.db.errors(self.db.where):
                return self.db.insert_rows(str(self.insert_query), counted(), source.origin)
        self.db.where = f"{self.where} (table {self.table})"
        with self.db.errors(self.db.where):
            return self.db.copy_in(self.table_ref, self.columns, counted(), source.origin)

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def format_columns(node: DataNodeSpec) -> list[str]:
    return column_names(node.data_format.fields.get("column")) if node.data_format else []


def same_format(a: DataNodeSpec, b: DataNodeSpec, compression: bool = True) -> bool:
    """Same data format (and, unless told otherwise, same compression): bytes can be copied as they are."""
    def key(n: DataNodeSpec) -> Any:
        return (n.data_format.type, json.dumps(dict(n.data_format.fields), sort_keys=True)) \
            if n.data_format else None
    return key(a) == key(b) and (not compression or is_gzip(a) == is_gzip(b))
