"""A Hive script's text made ready for Spark SQL: variables substituted, statements split. Pure: no I/O.

Hive substitutes ``${name}`` (and ``${hivevar:name}``) textually before parsing, so a variable may stand for
a table name, a number or part of a string literal, and an unknown one is left as written. The tables
``${input1}``... and ``${output1}``... are variables too, whose values are their names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_VARIABLE = re.compile(r"\$\{(?:hivevar:)?([A-Za-z_][A-Za-z0-9_.]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


class ScriptError(ValueError):
    """The script or a scriptVariable is malformed; the message says which."""


def script_variables(items: Sequence[str]) -> dict[str, str]:
    """``scriptVariable`` entries (``NAME=VALUE``) as a mapping; a later entry wins, as with Hive's -d."""
    out: dict[str, str] = {}
    for index, item in enumerate(items):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not _NAME.fullmatch(name):
            raise ScriptError(f"scriptVariable[{index}] {item!r} is not NAME=VALUE (NAME: letters, digits, _ "
                              "and ., not starting with a digit)")
        out[name] = value
    return out


def substitute(script: str, variables: Mapping[str, str]) -> str:
    """``${name}`` and ``${hivevar:name}`` replaced in one pass (a value is never substituted again)."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), script)


def split_statements(script: str) -> list[str]:
    """The script's statements, split at ``;`` outside quotes, backquotes and comments; blank ones dropped."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i, n = 0, len(script)
    while i < n:
        char = script[i]
        if quote:
            current.append(char)
            if char == "\\" and quote != "`" and i + 1 < n:
                current.append(script[i + 1])
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
            current.append(char)
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end  # the comment is dropped; its newline is kept
            continue
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end < 0 else end + 2
            current.append(" ")
            continue
        elif char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    if quote:
        raise ScriptError(f"the script ends inside a {quote}...{quote} quotation")
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


# Statements only Spark's Hive support runs: Hive DDL (a CREATE TABLE without USING is a Hive table in Spark 3),
# SerDes and row formats, LOAD DATA, Hive functions by class name. Hive support costs a Derby metastore per attempt
# (about 3 s on a small node), so a script without any of these runs without it.
_HIVE_ONLY = re.compile(r"\bROW\s+FORMAT\b|\bSTORED\s+(AS|BY)\b|\bSERDE(PROPERTIES)?\b|\bLOAD\s+DATA\b|"
                        r"\bCREATE\s+(TEMPORARY\s+)?FUNCTION\b", re.IGNORECASE)
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?(EXTERNAL\s+|TEMPORARY\s+)?TABLE\b", re.IGNORECASE)
_USING = re.compile(r"\bUSING\s+\w+", re.IGNORECASE)


def needs_hive_support(statements: Sequence[str]) -> bool:
    """Whether any statement needs Spark's Hive support (a false yes only costs time; a false no, a clear error)."""
    return any(_HIVE_ONLY.search(s) or (_CREATE_TABLE.match(s) and not _USING.search(s)) for s in statements)


_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# Hive's INSERT OVERWRITE TABLE t, Spark's INSERT OVERWRITE [TABLE] t; a name may be backquoted.
_OVERWRITE = re.compile(r"\bINSERT\s+OVERWRITE\s+(?:TABLE\s+)?`?([A-Za-z_][A-Za-z0-9_]*)`?", re.IGNORECASE)


def overwritten_tables(statements: Sequence[str]) -> set[str]:
    """The tables (lower case) some statement replaces with INSERT OVERWRITE, multi-insert forms included
    (``FROM t INSERT OVERWRITE TABLE a SELECT ... INSERT INTO b SELECT ...``); text in quotes does not count."""
    found: set[str] = set()
    for statement in statements:
        found.update(m.group(1).lower() for m in _OVERWRITE.finditer(_LITERAL.sub("''", statement)))
    return found
