"""PostgreSQL test databases: one migrated template, a fresh copy per test."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise

import db
from settings import Settings

# One template per test run: concurrent runs against one server never collide.
TEMPLATE = f"keybin_test_template_{os.getpid()}"


def url_for(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


async def _admin(base: str) -> asyncpg.Connection:
    return await asyncpg.connect(base.replace("postgres://", "postgresql://", 1))


async def build_template(base: str) -> None:
    admin = await _admin(base)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await admin.close()
    await db.migrate(Settings(database_url=url_for(base, TEMPLATE)))
    await Tortoise.close_connections()


async def copy_template(base: str) -> str:
    name = f"keybin_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.close()
    return name


async def drop(base: str, name: str) -> None:
    admin = await _admin(base)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
