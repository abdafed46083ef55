"""keybin's SQLite client: Tortoise's, plus a read-only connection for short reads.

Tortoise runs every statement in aiosqlite's worker thread. For the reads that answer
nearly every request (the bearer token's session, the Message Center page, rows by id) the
trip to that thread and back cost more than the statement itself: two GIL handoffs and a
wake-up of the event loop each time, about a fifth of a small query's CPU. `read_now` runs
such a statement on the event loop instead, on a connection of its own opened read-only. In
WAL mode (Tortoise's default) a reader never waits for the writer and sees every commit
made before it starts; each statement is its own read transaction, so no snapshot stays
open to hold back checkpoints. Reads inside a transaction keep using the transaction's own
connection (`connections.get` returns that one then): they must see its writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from tortoise.backends.sqlite.client import SqliteClient as TortoiseSqliteClient

from core.sqlite import driver

IN_MEMORY = ("", ":memory:")


Function = tuple[int, Callable[..., Any]]  # (arity, the Python that answers)


class SqliteClient(TortoiseSqliteClient):
    _reader: driver.Connection | None = None
    _reader_functions: dict[str, Function] | None = None

    async def create_connection(self, with_db: bool) -> None:
        await super().create_connection(with_db)
        # Once the file is open in WAL mode (the PRAGMAs ran): a read-only connection cannot
        # switch it, and an in-memory database is not shared with a second connection.
        if self._reader is None and self.filename not in IN_MEMORY:
            self._reader = driver.connect(
                f"file:{quote(self.filename)}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            for name, (arity, function) in (self._reader_functions or {}).items():
                self._reader.create_function(name, arity, function, deterministic=True)

    def create_reader_function(self, name: str, arity: int, function: Callable[..., Any]) -> None:
        """An SQL function the short reads may call (as aiosqlite's `create_function` adds
        one to Tortoise's connection), kept for the reader's whole life, reopened or not."""
        if self._reader_functions is None:
            self._reader_functions = {}
        if self._reader_functions.get(name) == (arity, function):
            return
        self._reader_functions[name] = (arity, function)
        if self._reader is not None:
            self._reader.create_function(name, arity, function, deterministic=True)

    async def close(self) -> None:
        # First: the last connection to close checkpoints the WAL and removes it, and a
        # read-only one cannot, which would leave deleted rows' old pages in the WAL file.
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        await super().close()

    def read_now(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]] | None:
        """The rows of a short read (a few rows found through an index), read on the event
        loop; None when this connection cannot answer now (none open, the file busy or
        being recovered, the statement refused): the caller then asks through Tortoise,
        which answers or raises as usual."""
        reader = self._reader
        if reader is None:
            return None
        try:
            return reader.execute(sql, params).fetchall()
        except driver.Error:
            return None


client_class = SqliteClient
