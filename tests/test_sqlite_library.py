"""One SQLite library in the process, new enough for the search indexes' secure-delete."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import db
from core import sqlite
from settings import Settings


def test_every_sqlite_user_holds_the_one_library(tmp_path: Path) -> None:
    # when the ORM is configured for SQLite (which loads aiosqlite and Tortoise's client)
    db.tortoise_config(Settings(database_url=f"sqlite://{tmp_path / 'k.sqlite3'}"))
    # then they, and `import sqlite3` from here on, get the library core.sqlite chose
    import aiosqlite.core
    import tortoise.backends.sqlite.client

    assert getattr(aiosqlite.core, "sqlite3") is sqlite.driver  # noqa: B009
    assert getattr(tortoise.backends.sqlite.client, "sqlite3") is sqlite.driver  # noqa: B009
    assert sys.modules["sqlite3"] is sqlite.driver
    assert sqlite.driver.sqlite_version_info >= (3, 44)  # FTS5 secure-delete


def test_fts5_forgets_a_deleted_row_with_secure_delete() -> None:
    # given an FTS5 trigram table with secure-delete, holding a row written in its own commit
    conn = sqlite.driver.connect(":memory:", isolation_level=None)
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
    conn.execute("INSERT INTO t(t, rank) VALUES ('secure-delete', 1)")
    conn.execute("INSERT INTO t(rowid, x) VALUES (1, 'qjzxv')")
    # when
    conn.execute("DELETE FROM t WHERE rowid = 1")
    # then
    blocks = b"".join(r[0] for r in conn.execute("SELECT block FROM t_data") if r[0])
    assert b"qjz" not in blocks and b"zxv" not in blocks


def test_a_module_holding_another_sqlite_is_refused_by_name() -> None:
    # given a module that bound some other SQLite library before core.sqlite ran
    stale = types.ModuleType("stale_client")
    stale.sqlite3 = types.ModuleType("sqlite3")  # type: ignore[attr-defined]
    # when / then
    with pytest.raises(RuntimeError, match="stale_client"):
        sqlite.check(stale)
    sqlite.check(types.SimpleNamespace(__name__="ok", sqlite3=sqlite.driver))  # type: ignore[arg-type]
