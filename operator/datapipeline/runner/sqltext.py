"""Lexical helpers for SQL text: JDBC ``?`` placeholders and statement splitting.

Both must skip string literals, quoted identifiers, comments and PostgreSQL
dollar-quoted bodies, or a ``?`` or ``;`` inside a literal would be mistaken for syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _segments(sql: str) -> Iterator[tuple[bool, str]]:
    """(is_code, text) pieces of ``sql``; literals and comments are not code (comments start with - or /)."""
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        end = -1
        if c in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\" and c != '"':
                    j += 2  # MySQL backslash escapes; harmless for standard strings without backslashes
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            end = min(j + 1, n)
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            end = n if j < 0 else j
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            end = n if j < 0 else j + 2
        elif c == "$":
            m = _DOLLAR.match(sql, i)
            if m:
                j = sql.find(m.group(0), m.end())
                end = n if j < 0 else j + len(m.group(0))
        if end >= 0:
            if start < i:
                yield True, sql[start:i]
            yield False, sql[i:end]
            i = start = end
        else:
            i += 1
    if start < n:
        yield True, sql[start:]


def convert_placeholders(sql: str, paramstyle: str) -> tuple[str, int]:
    """``?`` placeholders rewritten for the driver (``%s`` for format style, doubling literal ``%``).

    Returns the new text and the number of placeholders.
    """
    if paramstyle == "qmark":
        return sql, sum(seg.count("?") for code, seg in _segments(sql) if code)
    out: list[str] = []
    count = 0
    for code, seg in _segments(sql):
        if code:
            count += seg.count("?")
            seg = seg.replace("%", "%%").replace("?", "%s")
        else:
            seg = seg.replace("%", "%%")
        out.append(seg)
    return "".join(out), count


def split_statements(script: str) -> list[str]:
    """The statements of a script, split on ``;`` outside literals and comments."""
    statements: list[str] = []
    current: list[str] = []
    for code, seg in _segments(script):
        if not code:
            current.append(seg)
            continue
        parts = seg.split(";")
        for part in parts[:-1]:
            current.append(part)
            statements.append("".join(current))
            current = []
        current.append(parts[-1])
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    """True unless the statement is only whitespace and comments."""
    return any(seg.strip() if code else not seg.startswith(("--", "/*")) for code, seg in _segments(statement))
