"""Data formats (CSV, TSV, Custom, RegEx): streaming readers and writers, optional gzip.

Readers take a binary stream and yield rows (lists of ``str | None``); writers
take rows and yield byte chunks of about 1 MiB. Nothing holds more than one chunk,
so memory stays flat however large the data is.

NULL conventions (documented for users):
- CSV and Custom: an empty field reads as NULL; NULL is written as an empty field.
- TSV: PostgreSQL text conventions: ``\\N`` is NULL, backslash escapes ``\\t \\n \\r \\\\``
  and the separator (so a TSV file is exactly what ``COPY ... TO`` writes).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from datapipeline.core.task import DataFormatSpec
from datapipeline.runner.errors import InvalidTask, TaskError

Row = Sequence[Any]
CHUNK = 1024 * 1024
csv.field_size_limit(64 * 1024 * 1024)


def column_names(columns: Any) -> list[str]:
    """``column`` entries may be 'name TYPE' (AWS form); only the name matters here."""
    if not columns:
        return []
    items = [columns] if isinstance(columns, str) else list(columns)
    return [str(c).strip().split()[0] for c in items if str(c).strip()]


def as_text(value: Any) -> str | None:
    """A database value as the text written to files."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


@dataclass(frozen=True)
class Format:
    type: str
    columns: tuple[str, ...] = ()
    separator: str = ","
    record_separator: str = "\n"
    escape: str | None = None
    header: bool = False
    regex: re.Pattern[str] | None = None
    output_format: str | None = None

    @staticmethod
    def of(spec: DataFormatSpec | None, where: str) -> Format:
        if spec is None:
            return Format("CSV")
        f = spec.fields
        cols = tuple(column_names(f.get("column")))
        header = str(f.get("headerRow", "")).lower() == "true"
        if spec.type == "CSV":
            return Format("CSV", cols, ",", "\n", _one_char(f.get("escapeChar"), where, "escapeChar"), header)
        if spec.type == "TSV":
            return Format("TSV", cols, _sep(f.get("columnSeparator"), "\t"), _sep(f.get("recordSeparator"), "\n"),
                          _one_char(f.get("escapeChar"), where, "escapeChar") or "\\", header)
        if spec.type == "Custom":
            sep = f.get("columnSeparator")
            if not sep:
                raise InvalidTask(f"{where}: dataFormat Custom needs columnSeparator")
            return Format("Custom", cols, _sep(sep, ","), _sep(f.get("recordSeparator"), "\n"))
        if spec.type == "RegEx":
            pattern = f.get("inputRegEx")
            regex = None
            if pattern:
                try:
                    regex = re.compile(str(pattern))
                except re.error as e:
                    raise InvalidTask(f"{where}: dataFormat RegEx inputRegEx is not a valid regular expression: "
                                      f"{e}") from None
            out = f.get("outputFormat")
            return Format("RegEx", cols, regex=regex, output_format=str(out) if out else None)
        raise InvalidTask(f"{where}: dataFormat {spec.type} is not supported by this activity "
                          "(CSV, TSV, Custom and RegEx are)", "Task.UnsupportedFormat")

    @property
    def extension(self) -> str:
        return {"CSV": ".csv", "TSV": ".tsv"}.get(self.type, ".txt")

    # ------------------------------------------------------------------ reading
    def read(self, stream: IO[bytes], where: str, expected: int | None = None,
             skip_blank: bool = False, skip: int = 0) -> Iterator[list[str | None]]:
        """Rows of ``stream``; a malformed row or a wrong column count raises with its line number.

        ``expected`` is the number of columns each row must have (the table's); without it the
        format's column list, or else the first row, sets it. ``skip`` drops leading records
        (besides the header row), as Redshift's IGNOREHEADER does.
        """
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="" if self.type == "CSV" else None)
        if expected is None and self.columns:
            expected = len(self.columns)
        skip += 1 if self.header else 0
        try:
            if self.type == "CSV":
                yield from self._read_csv(text, where, expected, skip_blank, skip)
                return
            for line, row in self._parse(text, where):
                if skip:
                    skip -= 1
                    continue
                if skip_blank and (not row or row == [None] or row == [""]):
                    continue
                if expected is None:
                    expected = len(row)
                elif len(row) != expected:
                    raise _count_error(where, line, len(row), expected)
                yield row
        except UnicodeDecodeError as e:
            raise TaskError("Format.Encoding", f"{where}: the data is not UTF-8 text ({e.reason} at byte "
                            f"{e.start} of a chunk)") from None

    def _read_csv(self, text: io.TextIOWrapper, where: str, expected: int | None, skip_blank: bool,
                  skip: int) -> Iterator[list[str | None]]:
        # The hot loop of every CSV load: kept flat, no per-row function calls beyond the csv module.
        reader = csv.reader(text, strict=True, escapechar=self.escape)
        try:
            for row in reader:
                if skip:
                    skip -= 1
                    continue
                if len(row) != expected:
                    if not row and skip_blank:
                        continue
                    if expected is None:
                        expected = len(row)
                    else:
                        raise _count_error(where, reader.line_num, len(row), expected)
                if "" in row:
                    yield [v or None for v in row]  # an empty field is NULL
                else:
                    yield row  # type: ignore[misc]
        except csv.Error as e:
            raise TaskError("Format.MalformedRow", f"{where}: line {reader.line_num} is not valid CSV: {e}") \
                from None

    def _parse(self, text: io.TextIOWrapper, where: str) -> Iterator[tuple[int, list[str | None]]]:
        for n, record in enumerate(_records(text, self.record_separator), 1):
            if self.type == "RegEx":
                if self.regex is None:
                    raise InvalidTask(f"{where}: dataFormat RegEx needs inputRegEx to read data")
                m = self.regex.fullmatch(record)
                if m is None:
                    raise TaskError("Format.MalformedRow", f"{where}: line {n} does not match inputRegEx")
                yield n, list(m.groups())
            elif self.type == "TSV":
                yield n, _split_escaped(record, self.separator, self.escape or "\\", where, n)
            else:
                yield n, [v or None for v in record.split(self.separator)]

    # ------------------------------------------------------------------ writing
    def encode(self, rows: Iterable[Row], header: Sequence[str] | None = None) -> Iterator[bytes]:
        """Byte chunks of about CHUNK bytes holding ``rows`` in this format."""
        buf = io.StringIO()
        if self.type == "CSV":
            writer = csv.writer(buf, lineterminator="\n", escapechar=self.escape)
            if self.header and header:
                writer.writerow(header)
            # A lone \r is a line end to csv readers, but the writer (lineterminator \n) leaves it unquoted.
            quoted = csv.writer(buf, lineterminator="\n", escapechar=self.escape, quoting=csv.QUOTE_ALL)
            for row in rows:
                values = ["" if v is None else as_text(v) for v in row]
                if any("\r" in v for v in values if v):
                    quoted.writerow(values)
                else:
                    writer.writerow(values)
                if buf.tell() >= CHUNK:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
        else:
            if self.header and header and self.type == "TSV":
                buf.write(self._line(header))
            for row in rows:
                buf.write(self._line(row))
                if buf.tell() >= CHUNK:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
        if buf.tell():
            yield buf.getvalue().encode()

    def _line(self, row: Row) -> str:
        if self.type == "TSV":
            esc = self.escape or "\\"
            return self.separator.join(_escape(as_text(v), self.separator, esc) for v in row) + self.record_separator
        if self.type == "RegEx":
            if not self.output_format:
                raise InvalidTask("dataFormat RegEx needs outputFormat to write data")
            return _java_format(self.output_format, [as_text(v) or "" for v in row]) + "\n"
        return self.separator.join("" if v is None else (as_text(v) or "") for v in row) + self.record_separator


def _count_error(where: str, line: int, got: int, expected: int) -> TaskError:
    return TaskError("Format.ColumnCount", f"{where}: line {line} has {got} columns, expected {expected}")


def _sep(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    text = str(value)
    # Definitions often spell control characters as escapes ("\\t", "\\n", "\\u0001").
    return text.encode().decode("unicode_escape") if "\\" in text else text


def _one_char(value: Any, where: str, name: str) -> str | None:
    if value is None or value == "":
        return None
    text = _sep(value, "")
    if len(text) != 1:
        raise InvalidTask(f"{where}: dataFormat {name} must be one character, not {value!r}")
    return text


def _records(text: io.TextIOWrapper, separator: str) -> Iterator[str]:
    if separator == "\n":
        for line in text:
            yield line[:-1] if line.endswith("\n") else line
        return
    pending = ""
    while chunk := text.read(CHUNK):
        parts = (pending + chunk).split(separator)
        pending = parts.pop()
        yield from parts
    if pending:
        yield pending


_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}


def _split_escaped(record: str, sep: str, esc: str, where: str, line: int) -> list[str | None]:
    if esc not in record:
        return list(record.split(sep))
    # First split on separators that are not escaped, then unescape each field.
    parts: list[str] = []
    start = i = 0
    n = len(record)
    while i < n:
        if record[i] == esc:
            if i + 1 >= n:
                raise TaskError("Format.MalformedRow", f"{where}: line {line} ends with a lone escape character")
            i += 2
        elif record.startswith(sep, i):
            parts.append(record[start:i])
            i += len(sep)
            start = i
        else:
            i += 1
    parts.append(record[start:])
    null = esc + "N"
    pattern = re.compile(re.escape(esc) + "(.)", re.S)
    return [None if p == null else pattern.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(1)), p)
            for p in parts]


def _escape(value: str | None, sep: str, esc: str) -> str:
    if value is None:
        return esc + "N"
    if esc in value:
        value = value.replace(esc, esc + esc)
    for char, code in (("\n", "n"), ("\r", "r"), ("\t", "t")):
        if char in value:
            value = value.replace(char, esc + code)
    if sep not in "\n\r\t" and sep in value:
        value = value.replace(sep, esc + sep)
    return value


_JAVA_REF = re.compile(r"%(\d+)\$s")


def _java_format(fmt: str, values: Sequence[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        i = int(m.group(1)) - 1
        return values[i] if 0 <= i < len(values) else ""
    return _JAVA_REF.sub(sub, fmt)


def gzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    z = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    for chunk in chunks:
        out = z.compress(chunk)
        if out:
            yield out
    yield z.flush()


class ChunkStream(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (the upload side of a streamed copy).

    ``readinto`` fills the whole buffer unless the data ends: the multipart uploader takes a
    short read for the end of the stream.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        filled, size = 0, len(view)
        while filled < size:
            if not self._pending:
                chunk = next(self._it, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
            n = min(size - filled, len(self._pending))
            view[filled:filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled
