"""Table names reach SQL as quoted identifiers: a name that is not exactly quoted identifiers is one name."""

from __future__ import annotations

import pytest

from datapipeline.runner.sql import MySql, Postgres


@pytest.mark.parametrize(("table", "schema", "expected"), [
    ("orders", None, '"orders"'),
    ("sales.orders", None, '"sales"."orders"'),
    ("orders", "sales", '"sales"."orders"'),
    ('"Orders"', None, '"Orders"'),
    ('"sales"."Orders"', None, '"sales"."Orders"'),
    ('"a""b"', None, '"a""b"'),
    ('"t" UNION SELECT password FROM users', None, '"""t"" UNION SELECT password FROM users"'),
    ('"t"; DROP TABLE x; --', None, '"""t""; DROP TABLE x; --"'),
    ('t"; DROP TABLE x; --', "s", '"s"."t""; DROP TABLE x; --"'),
])
def test_postgres_table_names(table: str, schema: str | None, expected: str) -> None:
    assert Postgres.__new__(Postgres).table_ref(table, schema) == expected


def test_mysql_table_names() -> None:
    db = MySql.__new__(MySql)
    assert db.table_ref("shop.orders") == "`shop`.`orders`"
    assert db.table_ref("`t` UNION SELECT 1") == "```t`` UNION SELECT 1`"
