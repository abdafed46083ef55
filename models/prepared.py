"""Hot reads as statements written once: the bearer-token lookup every request makes, and
the Message Center page every app opens with.

Tortoise builds every query through pypika (and clones the QuerySet at each filter) on every
call; for these small indexed reads building the SQL cost more than running it. Statements
here are written once per model and dialect from the models' own metadata (no user input
reaches them: values travel as parameters), and the rows become the same model instances
Tortoise would give (`_init_from_db`, related rows where `select_related` keeps them)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from tortoise import connections
from tortoise.models import Model

M = TypeVar("M", bound=Model)
R = TypeVar("R", bound=Model)


def _columns(model: type[Model]) -> list[str]:
    return list(model._meta.fields_db_projection.values())


def numbered(sql: str) -> str:
    """PostgreSQL numbers its parameters: ? -> $1, $2, ..."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def _connection(model: type[Model]) -> Any:
    return connections.get(model._meta.default_connection or "default")


@cache
def _select_statement(model: type[Model], where: str, order_by: str, dialect: str) -> str:
    columns = ", ".join(f'"{c}"' for c in _columns(model))
    table = model._meta.db_table
    sql = f'SELECT {columns} FROM "{table}" WHERE {where} ORDER BY {order_by} LIMIT ?'  # noqa: S608
    return numbered(sql) if dialect == "postgres" else sql


async def select(
    model: type[M], where: str, params: list[Any], order_by: str, limit: int
) -> list[M]:
    """Rows of `model` matching `where` (SQL with ? parameters, columns double-quoted)."""
    connection = _connection(model)
    sql = _select_statement(model, where, order_by, connection.capabilities.dialect)
    _, rows = await connection.execute_query(sql, [*params, limit])
    columns = _columns(model)
    return [model._init_from_db(**dict(zip(columns, tuple(row), strict=True))) for row in rows]


@cache
def _statement(model: type[Model], related: str, key: str, dialect: str) -> str:
    related_model = model._meta.fields_map[related].related_model  # type: ignore[attr-defined]
    foreign_key = model._meta.fields_db_projection[f"{related}_id"]
    own = ", ".join(f'm."{c}"' for c in _columns(model))
    theirs = ", ".join(f'r."{c}"' for c in _columns(related_model))
    sql = (
        f'SELECT {own}, {theirs} FROM "{model._meta.db_table}" m '  # noqa: S608
        f'JOIN "{related_model._meta.db_table}" r ON r."{related_model._meta.db_pk_column}" '
        f'= m."{foreign_key}" WHERE m."{model._meta.fields_db_projection[key]}" = ?'
    )
    return numbered(sql) if dialect == "postgres" else sql


async def by_ids(model: type[M], ids: Sequence[Any]) -> list[M]:
    """`model.filter(pk__in=ids)`: what DataLoaders ask for, a batch at a time. The query
    builder makes an object per value of the IN list; here it is one string join."""
    if not ids:
        return []
    connection = _connection(model)
    columns = _columns(model)
    listed = ", ".join(f'"{c}"' for c in columns)
    sql = (
        f'SELECT {listed} FROM "{model._meta.db_table}" '  # noqa: S608
        f'WHERE "{model._meta.db_pk_column}" IN ({", ".join("?" * len(ids))})'
    )
    if connection.capabilities.dialect == "postgres":
        sql = numbered(sql)
    _, rows = await connection.execute_query(sql, list(ids))
    return [model._init_from_db(**dict(zip(columns, tuple(row), strict=True))) for row in rows]


async def get_with_related(model: type[M], related: str, key: str, value: Any) -> M | None:
    """`model.get_or_none(key=value).select_related(related)`, prepared once."""
    connection = _connection(model)
    sql = _statement(model, related, key, connection.capabilities.dialect)
    _, rows = await connection.execute_query(sql, [value])
    if not rows:
        return None
    row = tuple(rows[0])
    own = _columns(model)
    related_model: type[Model] = model._meta.fields_map[related].related_model  # type: ignore[attr-defined]
    instance = model._init_from_db(**dict(zip(own, row[: len(own)], strict=True)))
    other = related_model._init_from_db(
        **dict(zip(_columns(related_model), row[len(own) :], strict=True))
    )
    # Where select_related keeps it, so `instance.<related>` answers without a query.
    object.__setattr__(instance, f"_{related}", other)
    return instance
