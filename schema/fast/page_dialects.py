"""What the page statements (schema/fast/page_sql.py) write differently for PostgreSQL and
for SQLite: parameters, JSON building, booleans, global ids and cursors, times.

The mapping of fields to columns (page_columns.py) and the shape of a statement (page_sql.py)
are written once; each piece whose SQL differs asks the dialect. SQLite keeps to the JSON
functions of 3.40 (json_object, json_group_array, json). Its base64 is sqlean's `encode`
(the `crypto` functions core/sqlite.py turns on), which writes global ids and cursors as
core.ids and schema.base do (tests/test_page_sql.py compares them); it keeps times as the
text Tortoise wrote, so a time in an offset other than UTC is turned to UTC by the same
Python the resolvers use, registered on the connection as an SQL function."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from weakref import WeakSet

from tortoise.fields import DatetimeField


class Postgres:
    name = "postgres"

    def param(self, number: int, cast: str) -> str:
        return f"${number}::{cast}"

    def bind(self, value: Any, cast: str) -> Any:
        return value

    def limit(self, param: str) -> str:
        return param

    def json_object(self, pairs: list[str]) -> str:
        return f"json_build_object({', '.join(pairs)})"

    def json_array(self, item: str, order: str) -> str:
        """The rows' items in `order` (an empty list when there are none)."""
        return f"COALESCE(json_agg({item} ORDER BY {order}), '[]')"

    def nested(self, subquery: str) -> str:
        """A scalar subquery's JSON value, inside another JSON value."""
        return f"({subquery})"

    def boolean(self, sql: str) -> str:
        return sql

    def global_id(self, type_name: str, id_sql: str) -> str:
        """core.ids.to_global_id: base64 of "Type:pk"."""
        return _base64(f"'{type_name}:' || {id_sql}")

    def cursor(self, id_sql: str) -> str:
        """schema.base.encode_cursor: URL-safe base64 of "k:pk"."""
        encoded = _base64(f"'k:' || {id_sql}")
        return f"translate({encoded}, '+/', '-_')"

    def comparable_time(self, column_sql: str) -> str:
        return column_sql

    def timestamp(self, column_sql: str) -> str:
        """datetime.isoformat() of a UTC time: microseconds only when there are any."""
        utc = f"({column_sql} AT TIME ZONE 'UTC')"
        return (
            f"CASE WHEN {column_sql} IS NULL THEN NULL ELSE "
            f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
            f"CASE WHEN date_part('microseconds', {utc})::bigint % 1000000 = 0 THEN '' "
            f"ELSE to_char({utc}, '.US') END || '+00:00' END"
        )

    def day(self, column_sql: str) -> str:
        """date.isoformat()."""
        return f"to_char({column_sql}, 'YYYY-MM-DD')"

    def document(self, select: str) -> str:
        """The statement answering with the JSON document `select` builds, as text."""
        return f"SELECT ({select})::text"

    async def prepare(self, client: Any) -> None:
        """Nothing to register: PostgreSQL has every function the statements use."""

    def read_now(self, client: Any, sql: str, values: list[Any]) -> list[Any] | None:
        """Every statement goes through the connection pool."""
        return None


def _base64(text_sql: str) -> str:
    # Short values only (ids, cursors): PostgreSQL breaks base64 lines at 76 characters.
    return f"encode(convert_to({text_sql}, 'UTF8'), 'base64')"


_DATETIME = DatetimeField()


def _utc_text(stored: str | None) -> str | None:
    """A stored time as Tortoise reads it, in UTC, written as Tortoise writes one."""
    if stored is None:
        return None
    value = _DATETIME.to_python_value(stored)
    return value.astimezone(UTC).isoformat(" ") if value is not None else None


# The SQL functions SQLite statements call, each the Python the resolvers answer with.
FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "keybin_utc": (1, _utc_text),
}


class Sqlite:
    name = "sqlite"

    def __init__(self) -> None:
        self._prepared: WeakSet[Any] = WeakSet()
        self._readers: WeakSet[Any] = WeakSet()

    def param(self, number: int, cast: str) -> str:
        return f"?{number}"

    def bind(self, value: Any, cast: str) -> Any:
        if isinstance(value, datetime):
            # As Tortoise writes times (datetime.isoformat(" ")), so the text compares.
            return value.astimezone(UTC).isoformat(" ")
        return value

    def limit(self, param: str) -> str:
        # An expression, not the bare parameter: SQLite reads a bare one's value when it
        # plans, so each run would prepare the whole statement again (models.prepared.LIMIT).
        return f"{param} + 0"

    def json_object(self, pairs: list[str]) -> str:
        return f"json_object({', '.join(pairs)})"

    def json_array(self, item: str, order: str) -> str:
        # Without ORDER BY inside the aggregate (SQLite 3.44 and newer only), the rows come
        # in the order of the subquery the statement reads them from, which sorts by `order`
        # and has a LIMIT, so it is never flattened into this query.
        return f"json_group_array({item})"

    def nested(self, subquery: str) -> str:
        # A JSON value stays JSON (not a quoted string) only within one expression: json()
        # says so again for a subquery's.
        return f"json(({subquery}))"

    def boolean(self, sql: str) -> str:
        # Conditions and boolean columns are 0 or 1 (or NULL: json(NULL) is null).
        return f"json(CASE ({sql}) WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"

    def global_id(self, type_name: str, id_sql: str) -> str:
        """core.ids.to_global_id: base64 of "Type:pk" (sqlean's `encode`, core/sqlite.py)."""
        return f"encode('{type_name}:' || {id_sql}, 'base64')"

    def cursor(self, id_sql: str) -> str:
        """schema.base.encode_cursor: URL-safe base64 of "k:pk"."""
        return f"replace(replace(encode('k:' || {id_sql}, 'base64'), '+', '-'), '/', '_')"

    def comparable_time(self, column_sql: str) -> str:
        """A stored time as text that compares with a bound one: Tortoise writes the offset
        it was given, nearly always UTC's; any other is turned to UTC first."""
        return (
            f"CASE WHEN {column_sql} IS NULL OR substr({column_sql}, -6) = '+00:00' "
            f"THEN {column_sql} ELSE keybin_utc({column_sql}) END"
        )

    def timestamp(self, column_sql: str) -> str:
        """datetime.isoformat(): the UTC text with a T between date and time."""
        return f"replace({self.comparable_time(column_sql)}, ' ', 'T')"

    def day(self, column_sql: str) -> str:
        return column_sql

    def document(self, select: str) -> str:
        return select

    async def prepare(self, client: Any) -> None:
        """Register FUNCTIONS on the connection once (it may be opened again)."""
        wrapper = client.acquire_connection()
        # Checked before taking the connection's lock: waiting for it behind every statement
        # already queued, on every request, would double each page's wait under load.
        if wrapper.connection in self._prepared:
            return
        async with wrapper as connection:
            if connection in self._prepared:
                return
            for name, (arity, function) in FUNCTIONS.items():
                await connection.create_function(name, arity, function, deterministic=True)
            self._prepared.add(connection)

    def read_now(self, client: Any, sql: str, values: list[Any]) -> list[Any] | None:
        """The statement's rows, read on the event loop where the client can (its read-only
        connection, models/sqlite_client.py); None: ask through Tortoise. The statement may
        call FUNCTIONS (a time stored with another offset than UTC's), and in aiosqlite's
        thread each call would first wait for the GIL, which the event loop holds while it
        works on other requests."""
        read_now = getattr(client, "read_now", None)
        if read_now is None:
            return None
        if client not in self._readers:
            for name, (arity, function) in FUNCTIONS.items():
                client.create_reader_function(name, arity, function)
            self._readers.add(client)
        rows: list[Any] | None = read_now(sql, values)
        return rows


Dialect = Postgres | Sqlite
DIALECTS: dict[str, Dialect] = {"postgres": Postgres(), "sqlite": Sqlite()}
