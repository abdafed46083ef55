"""LISTEN/NOTIFY pub/sub between instances, and its reconnection (PostgreSQL only)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from notify.pg_pubsub import PostgresPubSub, asyncpg_dsn
from settings import Settings
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="PostgreSQL pub/sub: runs in the `postgres` tox env"
)


async def until(predicate: object, within: float = 10.0) -> None:
    """Poll: the listener's reconnection has no event of its own to wait on."""
    async with asyncio.timeout(within):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_publish_on_one_instance_reaches_a_subscriber_on_another(
    settings: Settings, orm: None
) -> None:
    # given two instances' pub/subs on one database
    a, b = PostgresPubSub(settings.database_url), PostgresPubSub(settings.database_url)
    await a.start()
    await b.start()
    try:
        async with b.subscribe(7) as queue, a.subscribe(8) as other:
            # when
            await a.publish(7, 99)
            # then
            async with asyncio.timeout(2):
                assert await queue.get() == 99
            assert other.empty()
    finally:
        await a.stop()
        await b.stop()


async def test_a_dropped_listener_reconnects_by_itself(settings: Settings, orm: None) -> None:
    pubsub = PostgresPubSub(settings.database_url)
    await pubsub.start()
    try:
        pid = pubsub.listener_pid()
        assert pid is not None
        admin = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await until(lambda: pubsub.listener_pid() not in (None, pid))
        await pubsub.listening.wait()
        async with pubsub.subscribe(3) as queue:
            await pubsub.publish(3, 42)
            async with asyncio.timeout(2):
                assert await queue.get() == 42
    finally:
        await pubsub.stop()
