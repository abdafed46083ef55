"""Counting the SQL statements a request sends, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar

import pytest
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.sqlite.client import SqliteClient

from models import sqlite_client

T = TypeVar("T")
METHODS = ("execute_query", "execute_query_dict", "execute_insert")


class StatementCounter:
    """Counts statements sent while `active`: a context variable, so the background
    dispatcher's and scheduler's polling (tasks started before) is never counted, while
    the DataLoader tasks a request spawns inherit it and are."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.active: ContextVar[bool] = ContextVar("counting", default=False)

    async def count(self, request: Awaitable[T]) -> T:
        self.statements.clear()
        token = self.active.set(True)
        try:
            return await request
        finally:
            self.active.reset(token)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap both database clients' statement methods (their transactions inherit them),
        and the short reads SQLite answers on the event loop."""
        for client in (SqliteClient, AsyncpgDBClient):
            for name in METHODS:
                monkeypatch.setattr(client, name, self._counting(getattr(client, name)))
        reader = sqlite_client.SqliteClient
        monkeypatch.setattr(reader, "read_now", self._counting_read(reader.read_now))

    def _counting(self, original: Any) -> Any:
        async def wrapper(client: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            if self.active.get():
                self.statements.append(query)
            return await original(client, query, *args, **kwargs)

        return wrapper

    def _counting_read(self, original: Any) -> Any:
        def wrapper(client: Any, query: str, *args: Any) -> Any:
            rows = original(client, query, *args)
            # A read it could not answer goes on through execute_query, counted there.
            if rows is not None and self.active.get():
                self.statements.append(query)
            return rows

        return wrapper
