"""The SQLite library keybin runs on: sqlean.py's build of SQLite (3.50), not the one the
interpreter was linked with (3.40 on Debian 12, 3.31 on older systems).

Why: the console search's trigram indexes are FTS5 tables, and only FTS5's `secure-delete`
(SQLite 3.44 or newer) removes a deleted account's name and address from the index itself,
instead of leaving them in old segments until a merge. A deleted account must leave no trace.

Every SQLite connection in the process must come from this one library: two copies of SQLite
in one process do not see each other's POSIX locks, and closing a file in one copy drops the
other's (sqlite.org/howtocorrupt.html, 2.2.1). So importing this module puts the library in
place of `sqlite3` for everything imported afterwards (aiosqlite and Tortoise's SQLite client
load at `Tortoise.init`), and keybin's own modules take `driver` from here. `db.py` imports it
first, and `check()` says loudly if a module still holds the interpreter's copy."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3 as driver
else:
    import sqlean as driver
    import sqlean.dbapi2

    sys.modules["sqlite3"] = driver
    sys.modules["sqlite3.dbapi2"] = sqlean.dbapi2
    # sqlean's `crypto` functions in every connection opened from here on (and no other of
    # its extensions: file access stays out): the page statements write global ids and
    # cursors with its base64 `encode`, in SQLite, instead of calling back into Python for
    # every row (schema/fast/page_dialects.py).
    driver.extensions.enable("crypto")

__all__ = ["check", "driver"]


def check(*modules: ModuleType) -> None:
    """Raise unless every module given (or its `sqlite3` global) is this library."""
    for module in modules:
        held = getattr(module, "sqlite3", module)
        if held is not driver:
            raise RuntimeError(
                f"{module.__name__} holds another SQLite library ({held!r}); "
                "import core.sqlite before it"
            )
