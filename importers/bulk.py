"""Set-based writes for imports: one parameterised statement run over a batch (executemany).

Model instances cost more to build than the rest of an import put together, so new rows
and updates go to the database as plain tuples, in statements built by Tortoise's own
query builder for the connection's dialect (SQLite `?`, PostgreSQL `$1`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from core import clock


def _db_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _defaults(
    model: type[Model], given: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Callable[[], Any]]]:
    """What Model() would fill in for the columns not given, so a new field needs no change
    here: (constants for the whole batch, factories called per row)."""
    meta = model._meta
    constants: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name, column in meta.fields_db_projection.items():
        field = meta.fields_map[name]
        if name in given or (field.pk and field.generated):
            continue
        if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            # One batch is one transaction: its rows share a timestamp.
            constants[column] = clock.now()
        elif callable(field.default):
            factories[column] = field.default
        else:
            constants[column] = _db_value(field.default)
    return constants, factories


def _as_stored(db: BaseDBAsyncClient, value: Any) -> Any:
    """A batch constant in the form SQLite stores it, converted once: the sqlite3 adapter
    Tortoise registers would otherwise format the same time again for every row."""
    if isinstance(value, datetime) and db.capabilities.dialect == "sqlite":
        return value.isoformat(" ")  # what tortoise.backends.sqlite.executor's adapter writes
    return value


async def insert(
    db: BaseDBAsyncClient, model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT the rows, given as the database takes them (enums as their values) in `columns`
    order; the other columns get the model's defaults."""
    if not rows:
        return
    meta = model._meta
    constants, factories = _defaults(model, columns)
    names = [meta.fields_db_projection[name] for name in columns] + [*constants, *factories]
    executor = db.executor_class(model=model, db=db)
    query = (
        db.query_class.into(meta.basetable)
        .columns(*names)
        .insert(*(executor.parameter(i) for i in range(len(names))))
    )
    tail = [_as_stored(db, value) for value in constants.values()]
    if factories:
        values = [[*row, *tail, *(_db_value(f()) for f in factories.values())] for row in rows]
    else:
        values = [[*row, *tail] for row in rows]
    await db.execute_many(query.get_sql(), values)


async def update(
    db: BaseDBAsyncClient, model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """UPDATE by primary key: each row is the new values in `columns` order, then the key."""
    if not rows:
        return
    meta = model._meta
    table = meta.basetable
    executor = db.executor_class(model=model, db=db)
    query = db.query_class.update(table)
    for position, name in enumerate(columns):
        query = query.set(meta.fields_db_projection[name], executor.parameter(position))
    query = query.where(table[meta.db_pk_column] == executor.parameter(len(columns)))
    await db.execute_many(query.get_sql(), [list(row) for row in rows])
