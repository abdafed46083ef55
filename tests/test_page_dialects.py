"""The page statements write global ids and cursors in SQL: on SQLite with sqlean's base64
(`encode`, turned on by core/sqlite.py), on PostgreSQL with its own. Each must be the text
the resolvers write in Python, for every id, or a client's cursor from one path would not
be read by the other."""

from __future__ import annotations

import random

import pytest

from core.ids import to_global_id
from core.sqlite import driver
from schema.base import encode_cursor
from schema.fast.page_dialects import Postgres, Sqlite
from tests.conftest import POSTGRES_URL

IDS = [0, 1, 9, 10, 62, 63, 99, 255, 1000, 65535, 2**31 - 1, 2**53, 2**63 - 1]
IDS += random.Random(7).sample(range(1, 10**12), 2000)


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's statements; the SQLite run checks them")
def test_sqlite_writes_global_ids_and_cursors_as_python_does() -> None:
    dialect = Sqlite()
    sql = f"SELECT {dialect.global_id('Grant', '?1')}, {dialect.cursor('?1')}"
    connection = driver.connect(":memory:")
    try:
        for pk in IDS:
            assert connection.execute(sql, (pk,)).fetchone() == (
                to_global_id("Grant", pk),
                encode_cursor(pk),
            ), pk
        # A missing row's id is NULL, and so are its id and cursor.
        assert connection.execute(sql, (None,)).fetchone() == (None, None)
    finally:
        connection.close()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (KEYBIN_TEST_DATABASE_URL)")
async def test_postgres_writes_global_ids_and_cursors_as_python_does() -> None:
    import asyncpg

    dialect = Postgres()
    sql = (
        f"SELECT pk, {dialect.global_id('Grant', 'pk')}, {dialect.cursor('pk')} "  # noqa: S608
        "FROM unnest($1::bigint[]) AS pk"
    )
    connection = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1))
    try:
        rows = await connection.fetch(sql, IDS)
    finally:
        await connection.close()
    assert [(pk, gid, cursor) for pk, gid, cursor in rows] == [
        (pk, to_global_id("Grant", pk), encode_cursor(pk)) for pk in IDS
    ]
