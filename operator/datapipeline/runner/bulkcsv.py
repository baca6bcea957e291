"""The fast path of a CSV load into PostgreSQL: the input's bytes go to ``COPY ... (FORMAT csv)`` as they are.

The per-row path (``Format.read`` feeding ``COPY`` row by row) costs Python work for every row. When
the input is CSV without an escape character and the table is on PostgreSQL, the server's own CSV parser
can read the bytes instead. The two parsers agree on well-formed CSV, not on every byte sequence: a
quote inside an unquoted field (``a"b``) or text after a closing quote (``"a"b``) is literal or an error
to Python's csv module and starts or ends quoting to PostgreSQL; a line holding only ``\\.`` ends the
data for PostgreSQL. So every block is checked first with bytes operations (no per-row Python), and
when a block is not plainly the same to both, or PostgreSQL rejects anything, the load is rolled back to
a savepoint and the caller runs the per-row path, which decides the outcome and the messages as before.

An empty field, quoted or not, is NULL, as in ``Format.read``: ``FORCE_NULL`` on every column.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from typing import TypeGuard

from datapipeline.runner.context import Context
from datapipeline.runner.errors import TaskError
from datapipeline.runner.formats import CHUNK
from datapipeline.runner.log import get
from datapipeline.runner.nodes import S3Source, Source, SqlSink

log = get("copy")

# A quoted field both parsers read alike: it starts a field, ends before a separator or a line end, and
# holds no quote but doubled ones.
_QUOTED_FIELD = re.compile(rb'(?<![^,\r\n])"[^"]*(?:""[^"]*)*"(?![^,\r\n])')
# ``\.`` at the start of a line can be PostgreSQL's end-of-data marker, in CSV too (depending on the version).
_END_MARKERS = (b"\n\\.", b"\r\\.")
# A record longer than this goes the per-row path: buffering it here would cost memory, and the per-row
# path is what enforces csv.field_size_limit.
MAX_RECORD = 8 * CHUNK


class NotPlain(Exception):
    """The bytes may not mean the same to PostgreSQL's CSV parser as to Python's csv module."""


def applies(source: Source, sink: SqlSink) -> TypeGuard[S3Source]:
    """Whether the load can try the fast path (it may still fall back to the per-row path)."""
    if not isinstance(source, S3Source) or sink.insert_query or not sink.db.accepts_csv():
        return False
    fmt = source.format
    # One column: a blank line is a NULL row to PostgreSQL and a wrong column count to Format.read.
    return (fmt.type == "CSV" and fmt.escape is None and not source.skip_blank and not source.skip_header
            and len(sink.columns) > 1)


def load(ctx: Context, sink: SqlSink, source: S3Source) -> int | None:
    """Loads every input object with one COPY; None when it fell back (nothing loaded, counters reset)."""
    db, progress, counter = sink.db, ctx.progress, ctx.s3.bytes_read
    before = counter[0]
    db.where = f"{sink.where} (table {sink.table})"  # what the per-row path's messages name
    with db.errors(db.where):
        db.execute("SAVEPOINT dp_bulk_csv")
    error: Exception | None = None
    # Closed here, not when garbage collected: the S3 stream is closed before the per-row path opens it again.
    data = closing(_counted(ctx, _input_blocks(source)))
    try:
        with data as chunks:
            n = db.copy_csv(sink.table_ref, sink.columns, chunks)
    except NotPlain as e:
        reason = str(e)
    except Exception as e:  # whatever it was, the per-row path meets it again and names it
        reason, error = f"{type(e).__name__} during the COPY", e
    else:
        with db.errors(db.where):
            db.execute("RELEASE SAVEPOINT dp_bulk_csv")
        progress.rows_read = progress.rows_written = n
        return n
    _rollback_or_raise(sink, error)
    log.info("loading row by row: %s", reason)
    progress.rows_read = progress.rows_written = 0
    counter[0] = before
    return None


def _rollback_or_raise(sink: SqlSink, error: Exception | None) -> None:
    """Back to the savepoint; when even that fails (the connection is gone), there is no per-row path to
    fall back to: the error is reported as the per-row path reports it."""
    db = sink.db
    try:
        db.execute("ROLLBACK TO SAVEPOINT dp_bulk_csv")
        db.execute("RELEASE SAVEPOINT dp_bulk_csv")
    except Exception as lost:
        with db.errors(db.where):
            raise (error or lost) from None


def _input_blocks(source: S3Source) -> Generator[bytes, None, None]:
    for url in source.files:
        with source.open(url) as stream:
            try:
                yield from blocks(iter(lambda: stream.read(CHUNK), b""), source.format.header, url)
            except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; as S3Source.rows says it
                where = f"{source.role} {source.node.name!r} ({url})"
                raise TaskError("Format.Compression", f"{where}: cannot decompress the data as gzip ({e}); "
                                "check the node's compression field") from None


def _counted(ctx: Context, chunks: Iterable[bytes]) -> Generator[bytes, None, None]:
    """An estimate of rows_read for the progress lines (a quoted field may hold newlines)."""
    progress = ctx.progress
    for chunk in chunks:
        progress.rows_read += chunk.count(b"\n")
        yield chunk


def blocks(reads: Iterable[bytes], header: bool, name: object = "the input") -> Iterator[bytes]:
    """The bytes of one object in blocks that end at a record boundary, checked with :func:`plain`.

    The last record always ends with a line end, so the next object's first record does not continue
    it. The header record, when there is one, is dropped (Format.read skips it too).
    """
    pending = b""
    eol = b"\n"
    for chunk in reads:
        data = pending + chunk if pending else chunk
        if header:
            end = _first_record_end(data)
            if not end:
                pending = _check_length(data, name)
                continue
            _check_header(data[:end], name)
            data, header = data[end:], False
        end = _last_record_end(data)
        block, pending = data[:end], _check_length(data[end:], name)
        if block:
            _check_plain(block, name)
            eol = b"\r\n" if block.endswith(b"\r\n") else b"\n"
            yield block
    if header:  # a header without a line end and nothing after it
        _check_header(pending, name)
    elif pending:
        _check_plain(pending, name)
        yield pending + eol


def plain(block: bytes) -> bool:
    """Whether PostgreSQL's CSV parser reads ``block`` (whole records) as Python's csv module does."""
    if block.startswith(b"\\.") or any(marker in block for marker in _END_MARKERS):
        return False
    return b'"' not in block or b'"' not in _QUOTED_FIELD.sub(b"", block)


def _check_plain(block: bytes, name: object) -> None:
    if not plain(block):
        raise NotPlain(f"{name} holds quoting or a \\. line that PostgreSQL's CSV parser may read differently")


def _check_header(record: bytes, name: object) -> None:
    # Python's csv ends a record at a lone \r too; this path cuts records at \n only.
    body = record[:-2] if record.endswith(b"\r\n") else record.removesuffix(b"\n")
    if b"\r" in body:
        raise NotPlain(f"the header row of {name} holds a carriage return")
    _check_plain(record, name)


def _check_length(pending: bytes, name: object) -> bytes:
    if len(pending) > MAX_RECORD:
        raise NotPlain(f"{name} has a record longer than {MAX_RECORD // CHUNK} MiB")
    return pending


def _last_record_end(data: bytes) -> int:
    """Where the last whole record of ``data`` (which starts at a record boundary) ends; 0 when none does.

    A newline ends a record when an even number of quotes precede it (outside a quoted field).
    """
    end = data.rfind(b"\n")
    if end < 0 or b'"' not in data:
        return end + 1
    quotes = data.count(b'"', 0, end)
    while quotes % 2:
        previous = data.rfind(b"\n", 0, end)
        if previous < 0:
            return 0
        quotes -= data.count(b'"', previous, end)
        end = previous
    return end + 1


def _first_record_end(data: bytes) -> int:
    """Where the first record of ``data`` ends (after its newline); 0 when it does not end in ``data``."""
    start = quotes = 0
    while (end := data.find(b"\n", start)) >= 0:
        quotes += data.count(b'"', start, end)
        if quotes % 2 == 0:
            return end + 1
        start = end + 1
    return 0
