"""Pub/sub across instances: PostgreSQL LISTEN/NOTIFY on one listener connection per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from tortoise import Tortoise

from core.ids import pk_of
from notify import sessions
from notify.live_events import CHANNEL
from notify.pubsub import PubSub
from notify.tasks import stop_task

log = logging.getLogger("keybin.pubsub")

MAX_BACKOFF = 30.0


def asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgres://", "postgresql://", 1)


class PostgresPubSub(PubSub):
    """Publishes with NOTIFY; every instance's listener hands events to its local subscribers.

    The payload is only "account_id:message_id" (NOTIFY payloads stay far under 8000
    bytes); subscribers re-read the message and re-check it is theirs. Ended sessions come
    on a channel of their own (notify/sessions.py) and close this instance's connections.
    """

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.dsn = asyncpg_dsn(database_url)
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self._stopping = asyncio.Event()
        self._lost = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="pubsub-listener")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.listening.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._lost.set()  # end the wait on the listener connection at once
            await stop_task(self._task, self._stopping)
            self._task = None

    async def publish(self, account_id: int, message_id: int) -> None:
        connection = Tortoise.get_connection("default")
        await connection.execute_query(
            "SELECT pg_notify($1, $2)", [CHANNEL, f"{account_id}:{message_id}"]
        )

    def listener_pid(self) -> int | None:
        return self._connection.get_server_pid() if self._connection else None

    async def _listen_forever(self) -> None:
        backoff = 0.2
        reconnecting = False
        while not self._stopping.is_set():
            self._lost = lost = asyncio.Event()
            try:
                self._connection = await asyncpg.connect(self.dsn)
                self._connection.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await self._connection.add_listener(CHANNEL, self._on_notify)
                await self._connection.add_listener(sessions.CHANNEL, self._on_sessions_ended)
                log.info("listening for messages on PostgreSQL channel %s", CHANNEL)
                self.listening.set()
                backoff = 0.2
                if reconnecting:
                    # Sessions may have ended while nobody listened.
                    self.connections.recheck_soon()
                reconnecting = True
                await lost.wait()
                if not self._stopping.is_set():
                    log.warning("pub/sub listener connection lost, reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("pub/sub listener cannot connect (%s), retry in %.1fs", error, backoff)
            finally:
                self.listening.clear()
                await self._close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._stopping.wait()
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await connection.close(timeout=2)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        account, _, message = payload.partition(":")
        account_id, message_id = pk_of(account), pk_of(message)
        if account_id is not None and message_id is not None:
            self.deliver_local(account_id, message_id)

    def _on_sessions_ended(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for ended in sessions.decode(payload):
            self.connections.end(ended)
