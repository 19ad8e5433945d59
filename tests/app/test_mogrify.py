"""``storage.database.mogrify`` gives the text pymysql's own ``mogrify`` gives."""

from __future__ import annotations

import datetime
import decimal
import enum

import pymysql
import pytest

from shillings_app.config import parse_dsn
from shillings_app.storage.database import mogrify


class Kind(enum.StrEnum):
    PAYMENT = "payment"


VALUES = [
    0,
    -7,
    10**15,
    True,
    False,
    None,
    "",
    "plain",
    'it\'s \\ a "quote"\n\r\t\x00\x1a end',
    "ünïcode ✓ 𝄞",
    Kind.PAYMENT,
    b"\x00\x01'\\",
    bytearray(b"ab"),
    1.5,
    decimal.Decimal("12.34"),
    datetime.datetime(2026, 11, 30, 13, 5, 7, 123456),
    datetime.date(2026, 11, 30),
]


@pytest.fixture
def cursor(database: str):
    conn = pymysql.connect(**parse_dsn(database))
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def test_same_text_as_pymysql(cursor) -> None:
    sql = "SELECT " + ", ".join(["%s"] * len(VALUES)) + " FROM t WHERE x LIKE 'a%%'"
    for args in (VALUES, tuple(VALUES), list(reversed(VALUES))):
        assert mogrify(cursor, sql, args) == cursor.mogrify(sql, args)
    assert mogrify(cursor, "SELECT '100%'", None) == "SELECT '100%'"
    assert mogrify(cursor, "SELECT %%s", ()) == cursor.mogrify("SELECT %%s", ())
    named = {"a": "x'y", "b": 3}
    assert mogrify(cursor, "%(a)s %(b)s", named) == cursor.mogrify("%(a)s %(b)s", named)
    with pytest.raises(pymysql.err.ProgrammingError):
        mogrify(cursor, "SELECT %s, %s", [1])


def test_no_backslash_escapes_mode_left_to_pymysql(cursor) -> None:
    cursor.execute("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
    args = ["it's \\ here", 5, None]
    text = mogrify(cursor, "SELECT %s, %s, %s", args)
    assert text == cursor.mogrify("SELECT %s, %s, %s", args)
    assert "'it''s \\ here'" in text
