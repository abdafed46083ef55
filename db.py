"""Database wiring: the Tortoise config for a Settings, migrations, and the session helpers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as migrate_api

from core import sqlite
from settings import Settings

log = logging.getLogger("keybin.db")

MODEL_MODULES = [
    "models.accounts",
    "models.staff",
    "models.listings",
    "models.grants",
    "models.access",
    "models.messages",
    "models.outbox",
    "models.ratelimits",
    "models.billing",
]

# secure_delete: a deleted account must leave no bytes behind in the file.
SQLITE_PRAGMAS = {"busy_timeout": "5000", "secure_delete": "on", "foreign_keys": "ON"}


def database_url(settings: Settings) -> str:
    """The settings' URL with the PRAGMAs keybin relies on added for SQLite."""
    url = settings.database_url
    if not settings.is_sqlite:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for key, value in SQLITE_PRAGMAS.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def keep_session(connection: Any) -> None:
    """What a PostgreSQL connection goes through on its way back to the pool, besides the
    rollback of any open transaction, which asyncpg always does. Its default also sends
    `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` to the server after
    every statement: a round trip each time, a tenth of a small query's server time, to undo
    session state keybin never sets on pooled connections (LISTEN has a connection of its
    own, notify/pg_pubsub.py; no advisory locks, cursors or SET)."""


def connection_config(settings: Settings) -> dict[str, Any]:
    config = expand_db_url(database_url(settings))
    if settings.is_sqlite:
        # Tortoise's client with short reads on the event loop (models/sqlite_client.py).
        config["engine"] = "models.sqlite_client"
    else:
        config["credentials"]["reset"] = keep_session
    return config


def tortoise_config(settings: Settings) -> dict[str, Any]:
    if settings.is_sqlite:
        _check_sqlite_library()
    return {
        "connections": {"default": connection_config(settings)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "migrations": "models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _check_sqlite_library() -> None:
    """Load Tortoise's SQLite client now, so it binds the SQLite library core.sqlite put in
    place, and fail here, not with a damaged file, if anything bound the interpreter's."""
    import aiosqlite.core
    import tortoise.backends.sqlite.client
    import tortoise.backends.sqlite.executor

    sqlite.check(aiosqlite.core, tortoise.backends.sqlite.client, tortoise.backends.sqlite.executor)


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (run before serving)."""
    await migrate_api(config=tortoise_config(settings))
    log.info("database migrated")


@asynccontextmanager
async def connected(settings: Settings, *, run_migrations: bool = True) -> AsyncIterator[None]:
    """Open the ORM for a command-line task, migrating first; always close it."""
    if run_migrations:
        await migrate(settings)
        await Tortoise.close_connections()
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


# For Tortoise's own CLI (`tortoise -c db.TORTOISE_ORM makemigrations`).
TORTOISE_ORM = tortoise_config(Settings(database_url="sqlite://./keybin.sqlite3"))
