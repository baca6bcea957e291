"""The CSV fast path's guard, in process: whatever it lets through, PostgreSQL reads as Format.read does.

PostgreSQL's CSV parser is modelled on copyfromparse.c (CopyReadLineText, CopyReadAttributesCSV, FORCE_NULL
on every column); the servers tier loads the same kinds of input into a real PostgreSQL.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from datapipeline.runner.bulkcsv import MAX_RECORD, NotPlain, blocks, plain
from datapipeline.runner.errors import TaskError
from datapipeline.runner.formats import Format

Rows = list[list[str | None]]


class PgError(Exception):
    pass


def pg_lines(data: bytes) -> list[bytes]:
    """Records as CopyReadLineText cuts them: quotes toggle (the escape is the quote), the first line end
    sets the style, a different one later is an error, ``\\.`` alone at a line start ends the data."""
    lines: list[bytes] = []
    eol: bytes | None = None
    i = start = 0
    in_quote = False
    while i < len(data):
        c = data[i:i + 1]
        if start == i and data.startswith(b"\\.", i) and data[i + 2:i + 3] in (b"\r", b"\n", b""):
            return lines  # the end-of-data marker: what follows is never read
        if c == b'"':
            in_quote = not in_quote
        elif c in (b"\r", b"\n") and not in_quote:
            found = b"\r\n" if data.startswith(b"\r\n", i) else c
            if eol is None:
                eol = found
            elif found != eol and not (eol == b"\r" and found == b"\r\n"):
                raise PgError(f"literal {c!r} found in data")
            lines.append(data[start:i])
            i += len(eol) if eol == b"\r\n" else 1
            start = i
            continue
        i += 1
    if start < len(data):
        lines.append(data[start:])
    return lines


def pg_fields(line: bytes) -> list[str | None]:
    """CopyReadAttributesCSV, then FORCE_NULL: an empty value is NULL, quoted or not."""
    fields: list[str | None] = []
    value, i, quoted = b"", 0, False
    while True:
        if i >= len(line):
            break
        c = line[i:i + 1]
        i += 1
        if quoted:
            if c == b'"' and line[i:i + 1] == b'"':
                value, i = value + b'"', i + 1
            elif c == b'"':
                quoted = False
            else:
                value += c
        elif c == b",":
            fields.append(value.decode() or None)
            value = b""
        elif c == b'"':
            quoted = True
        else:
            value += c
    if quoted:
        raise PgError("unterminated CSV quoted field")
    fields.append(value.decode() or None)
    return fields


def pg_read(data: bytes, columns: int) -> Rows:
    rows = [pg_fields(line) for line in pg_lines(data)]
    if any(len(r) != columns for r in rows):
        raise PgError("extra or missing data")
    return rows


def python_read(data: bytes, columns: int, header: bool) -> Rows | TaskError:
    try:
        return [list(r) for r in Format("CSV", header=header).read(io.BytesIO(data), "w", columns)]
    except TaskError as e:
        return e


def fast(data: bytes, header: bool, sizes: list[int]) -> bytes | None:
    """What the fast path would send for ``data`` read in pieces of ``sizes``; None when it falls back."""
    pieces, i = [], 0
    for size in sizes:
        pieces.append(data[i:i + size])
        i += size
    pieces.append(data[i:])
    try:
        return b"".join(blocks([p for p in pieces if p], header))
    except NotPlain:
        return None


csv_bytes = st.lists(st.sampled_from([b"a", b"b", b",", b'"', b'""', b"\n", b"\r\n", b"\r", b"\\", b".", b" ",
                                      b"\\.", b"\xc3\xa9"]), max_size=40).map(b"".join)


@settings(max_examples=3000, deadline=None)
@given(csv_bytes, st.sampled_from([2, 3]), st.booleans(), st.lists(st.integers(1, 9), max_size=6))
@example(b'a,"b"\n"c",d', 2, False, [3])
@example(b'a,b\r\nc,d', 2, True, [])
@example(b'a,b\n\\.\nc,d\n', 2, False, [])
def test_what_the_guard_passes_postgresql_reads_as_format_read(data: bytes, columns: int, header: bool,
                                                                sizes: list[int]) -> None:
    sent = fast(data, header, sizes)
    if sent is None:
        return  # the per-row path decides
    try:
        pg = pg_read(sent, columns)
    except PgError:
        return  # PostgreSQL refuses: the per-row path decides
    assert python_read(data, columns, header) == pg


@pytest.mark.parametrize(("data", "expected"), [
    (b'1,"a, ""quoted"" b",3\n', True),
    (b'"",x\n', True),
    (b'1,a"b,3\n', False),  # a quote inside an unquoted field: literal to Python, quoting to PostgreSQL
    (b'1,"a"b,3\n', False),  # text after the closing quote
    (b'1, "a",3\n', False),  # a space before the opening quote
    (b"1,a\n\\.\n", False),  # PostgreSQL's end-of-data marker
    (b"\\.\n", False),
    (b"1,\\.,a\n", True),  # not at a line start: a value
])
def test_plain(data: bytes, expected: bool) -> None:
    assert plain(data) is expected


def test_blocks_end_at_records_and_keep_every_byte() -> None:
    data = b'h1,h2\n1,"multi\nline"\n2,b\n3,c'
    out = list(blocks([data[i:i + 4] for i in range(0, len(data), 4)], header=True))
    assert b"".join(out) == b'1,"multi\nline"\n2,b\n3,c\n'  # the header dropped, the last record ended
    assert all(b.endswith(b"\n") for b in out)
    assert b"".join(blocks([b"1,a\r\n2,b"], header=False)) == b"1,a\r\n2,b\r\n"  # the file's own line end


def test_a_record_longer_than_the_limit_goes_row_by_row() -> None:
    with pytest.raises(NotPlain):
        list(blocks([b"x" * (MAX_RECORD // 2)] * 3, header=False))

