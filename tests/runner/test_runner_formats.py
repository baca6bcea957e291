"""Formats and SQL text helpers, in process (no servers)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datapipeline.core.task import DatabaseSpec, DataFormatSpec
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.formats import Format
from datapipeline.runner.log import Redactor
from datapipeline.runner.sql import conninfo
from datapipeline.runner.sqltext import convert_placeholders, split_statements

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
cells = st.one_of(st.none(), text.filter(lambda s: s != ""))


def roundtrip(fmt: Format, rows: list[list[str | None]]) -> list[list[str | None]]:
    data = b"".join(fmt.encode(rows))
    return [list(r) for r in fmt.read(io.BytesIO(data), "w")]


@given(st.lists(st.lists(cells, min_size=2, max_size=2), max_size=20))
def test_csv_roundtrip(rows: list[list[str | None]]) -> None:
    assert roundtrip(Format("CSV"), rows) == rows


@given(st.lists(st.lists(st.one_of(st.none(), text), min_size=3, max_size=3), max_size=20),
       st.sampled_from(["\t", ",", "|"]))
def test_tsv_roundtrip_any_text(rows: list[list[str | None]], sep: str) -> None:
    assert roundtrip(Format("TSV", separator=sep, escape="\\"), rows) == rows


def test_format_of_spellings() -> None:
    fmt = Format.of(DataFormatSpec("Custom", {"columnSeparator": "\\u0001", "column": ["a INT", "b STRING"]}), "n")
    assert (fmt.separator, fmt.columns) == ("\x01", ("a", "b"))
    with pytest.raises(InvalidTask, match="must be one character"):
        Format.of(DataFormatSpec("CSV", {"escapeChar": "ab"}), "n")
    with pytest.raises(InvalidTask, match="not a valid regular expression"):
        Format.of(DataFormatSpec("RegEx", {"inputRegEx": "(unclosed"}), "n")


def test_csv_errors_carry_line_numbers() -> None:
    with pytest.raises(TaskError, match=r"^w: line 4 has 1 columns, expected 2$"):
        list(Format("CSV").read(io.BytesIO(b'a,b\n"multi\nline",c\nlonely\n'), "w"))


def test_regex_output_format() -> None:
    fmt = Format("RegEx", output_format="%2$s=%1$s")
    assert b"".join(fmt.encode([["a", "b"]])) == b"b=a\n"


def test_placeholders_and_statements() -> None:
    assert convert_placeholders("SELECT '?', \"?\", ? -- ?\n, $x$?$x$, 5 % 2", "format") == \
        ("SELECT '?', \"?\", %s -- ?\n, $x$?$x$, 5 %% 2", 1)
    assert split_statements("a; 'b;c'; /* ; */ ; -- only a comment;\n d") == ["a", "'b;c'", "-- only a comment;\n d"]


def test_conninfo_understands_jdbc_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "pw-from-secret")
    info = conninfo(DatabaseSpec("D", "RdsDatabase", "jdbc:mysql://db.example:3307/shop?useSSL=false",
                                 username="u", password_env="PW"), "w")
    assert (info.dialect, info.host, info.port, info.database, info.user, info.password) == \
        ("mysql", "db.example", 3307, "shop", "u", "pw-from-secret")
    info = conninfo(DatabaseSpec("R", "RedshiftDatabase", "jdbc:redshift://wh:5439/dev", database_name="prod"), "w")
    assert (info.dialect, info.port, info.database) == ("postgresql", 5439, "prod")
    assert conninfo(DatabaseSpec("S", "JdbcDatabase", "jdbc:sqlite:/tmp/x.db"), "w").path == "/tmp/x.db"
    with pytest.raises(InvalidTask, match="connectionString must start with"):
        conninfo(DatabaseSpec("O", "JdbcDatabase", "jdbc:oracle:thin:@h:1521:x"), "w")


def test_redactor() -> None:
    r = Redactor()
    r.add("hunter22")
    assert r("pw hunter22 and postgresql://u:inline@h/d?password=p4ss&x=1") == \
        "pw *** and postgresql://u:***@h/d?password=***&x=1"
