"""Hot reads as statements written once: the bearer-token lookup every request makes, and
the Message Center page every app opens with.

Tortoise builds every query through pypika (and clones the QuerySet at each filter) on every
call; for these small indexed reads building the SQL cost more than running it. Statements
here are written once per model from the models' own metadata (no user input
reaches them: values travel as parameters), and the rows become the same model instances
Tortoise would give (`_init_from_db`, related rows where `select_related` keeps them).
`fetch` runs any statement written with ? parameters on either database (imports' batch
lookups, the console search). On SQLite the short ones (a row by key, a page through an
index, a modest batch by id) are read on the event loop (models/sqlite_client.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from typing import Any, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

M = TypeVar("M", bound=Model)
# A bound LIMIT written as an expression. SQLite (3.50 here) reads a bare `LIMIT ?`'s value
# when it plans a statement, so binding it throws the plan away and every run prepares the
# statement again: that took longer than running the Message Center page (59 against 23 µs).
# `? + 0` is planned once; PostgreSQL answers both alike.
LIMIT = "LIMIT ? + 0"
# Larger batches by id are read in the database's thread, off the event loop.
SHORT_BATCH = 100


@cache
def _columns(model: type[Model]) -> tuple[str, ...]:
    return tuple(model._meta.fields_db_projection.values())


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """PostgreSQL numbers its parameters: ? -> $1, $2, ..."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


async def fetch(
    connection: BaseDBAsyncClient, sql: str, params: Sequence[Any], *, short: bool = False
) -> list[tuple[Any, ...]]:
    """The rows of a statement written with ? parameters, numbered for PostgreSQL.
    `short`: a few rows found through an index (never a scan), which SQLite may then read
    on the event loop."""
    if short and (read_now := getattr(connection, "read_now", None)) is not None:
        read: list[tuple[Any, ...]] | None = read_now(sql, params)
        if read is not None:
            return read
    if connection.capabilities.dialect == "postgres":
        sql = numbered(sql)
    _, rows = await connection.execute_query(sql, list(params))
    return [tuple(row) for row in rows]


async def _rows(
    model: type[Model], sql: str, params: list[Any], *, short: bool = False
) -> list[tuple[Any, ...]]:
    connection = connections.get(model._meta.default_connection or "default")
    return await fetch(connection, sql, params, short=short)


def _instance(model: type[M], values: Sequence[Any]) -> M:
    return _loader(model)(values)  # type: ignore[return-value]


@cache
def _loader(model: type[Model]) -> Callable[[Sequence[Any]], Model]:
    """What `model._init_from_db(**row)` does with a whole row, each column read by its
    place: Tortoise's own field lists and conversions, without the keyword dict built per
    row (tests/test_prepared.py holds the two equal for every model)."""
    meta = model._meta
    place = {column: index for index, column in enumerate(_columns(model))}
    native = [(place[key], name) for key, name, _ in meta.db_native_fields]
    typed = [(place[key], name, field.field_type) for key, name, field in meta.db_default_fields]
    converted = [
        (place[key], name, field.to_python_value) for key, name, field in meta.db_complex_fields
    ]
    custom_pk = meta.db_pk_column not in meta.generated_db_fields
    setattr_ = object.__setattr__  # as Tortoise does: past Model.__setattr__

    def load(values: Sequence[Any]) -> Model:
        if len(values) != len(place):
            raise ValueError(f"{len(values)} values for {len(place)} columns")
        instance = model.__new__(model)
        setattr_(instance, "_partial", False)
        setattr_(instance, "_saved_in_db", True)
        setattr_(instance, "_custom_generated_pk", custom_pk)
        setattr_(instance, "_await_when_save", {})
        for index, name in native:
            setattr_(instance, name, values[index])
        for index, name, field_type in typed:
            value = values[index]
            setattr_(instance, name, None if value is None else field_type(value))
        for index, name, to_python in converted:
            setattr_(instance, name, to_python(values[index]))
        return instance

    return load


def _listed(model: type[Model], alias: str = "") -> str:
    return ", ".join(f'{alias}"{column}"' for column in _columns(model))


@cache
def _select_statement(model: type[Model], where: str, order_by: str) -> str:
    return (
        f'SELECT {_listed(model)} FROM "{model._meta.db_table}" '  # noqa: S608
        f"WHERE {where} ORDER BY {order_by} {LIMIT}"
    )


async def select(
    model: type[M],
    where: str,
    params: list[Any],
    order_by: str,
    limit: int,
    *,
    short: bool = False,
) -> list[M]:
    """Rows of `model` matching `where` (SQL with ? parameters, columns double-quoted).
    `short` when an index leads straight to them (never a scan: it may run on the loop)."""
    statement = _select_statement(model, where, order_by)
    rows = await _rows(model, statement, [*params, limit], short=short)
    return [_instance(model, row) for row in rows]


async def by_ids(model: type[M], ids: Sequence[Any]) -> list[M]:
    """`model.filter(pk__in=ids)`: what DataLoaders ask for, a batch at a time. The query
    builder makes an object per value of the IN list; here it is one string join."""
    if not ids:
        return []
    sql = (
        f'SELECT {_listed(model)} FROM "{model._meta.db_table}" '  # noqa: S608
        f'WHERE "{model._meta.db_pk_column}" IN ({placeholders(len(ids))})'
    )
    rows = await _rows(model, sql, list(ids), short=len(ids) <= SHORT_BATCH)
    return [_instance(model, row) for row in rows]


def _related_model(model: type[Model], related: str) -> type[Model]:
    return model._meta.fields_map[related].related_model  # type: ignore[attr-defined,no-any-return]


@cache
def _joined_statement(model: type[Model], related: str, key: str) -> str:
    other = _related_model(model, related)
    projection = model._meta.fields_db_projection
    return (
        f"SELECT {_listed(model, 'm.')}, {_listed(other, 'r.')} "  # noqa: S608
        f'FROM "{model._meta.db_table}" m JOIN "{other._meta.db_table}" r '
        f'ON r."{other._meta.db_pk_column}" = m."{projection[f"{related}_id"]}" '
        f'WHERE m."{projection[key]}" = ?'
    )


async def get_with_related(model: type[M], related: str, key: str, value: Any) -> M | None:
    """`model.get_or_none(key=value).select_related(related)`, written once (`key` is
    unique, so this is a short read)."""
    rows = await _rows(model, _joined_statement(model, related, key), [value], short=True)
    if not rows:
        return None
    own = len(_columns(model))
    instance = _instance(model, rows[0][:own])
    other = _instance(_related_model(model, related), rows[0][own:])
    # Where select_related keeps it, so `instance.<related>` answers without a query.
    object.__setattr__(instance, f"_{related}", other)
    return instance
