"""This process's signed-in WebSocket connections, by session, closed when their session ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from tortoise import Tortoise
from tortoise.exceptions import OperationalError

from core import clock
from models.accounts import Session
from models.enums import AccountStatus
from notify.sessions import NOT_ACTIVE, SESSION_ENDED, Ended
from notify.tasks import stop_task

log = logging.getLogger("keybin.sessions")

# Events remembered for connections still checking their token when one is heard.
RECENT = 1024
WATCH_SECONDS = 0.25


class Connection(Protocol):
    """A signed-in WebSocket: whose session it is, and how to close it."""

    account_id: int
    session_id: int

    def close_for(self, code: int) -> None:
        """Stop its subscriptions and close it with `code`, now (without waiting)."""


class OpenConnections:
    def __init__(self) -> None:
        self._by_account: dict[int, set[Connection]] = {}
        self._recent: deque[tuple[int, Ended]] = deque(maxlen=RECENT)
        self._heard = 0
        self._rechecks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return sum(len(found) for found in self._by_account.values())

    def mark(self) -> int:
        """Taken before a connection's token is checked, and handed to `add`."""
        return self._heard

    def add(self, connection: Connection, since: int) -> None:
        """Hold `connection` to its session. An event heard since `since` (while its token
        was being checked against a row it may have just removed) closes it at once."""
        for heard, ended in self._recent:
            if heard > since and ended.closes(connection.account_id, connection.session_id):
                connection.close_for(ended.code)
                return
        self._by_account.setdefault(connection.account_id, set()).add(connection)
        if self._recent and self._recent[0][0] > since + 1:
            # More events came meanwhile than are remembered: ask the database instead.
            self._start_recheck([connection])

    def discard(self, connection: Connection) -> None:
        found = self._by_account.get(connection.account_id)
        if found is not None:
            found.discard(connection)
            if not found:
                del self._by_account[connection.account_id]

    def end(self, ended: Ended) -> None:
        self._heard += 1
        self._recent.append((self._heard, ended))
        for connection in list(self._by_account.get(ended.account_id, ())):
            if ended.closes(connection.account_id, connection.session_id):
                self.discard(connection)
                connection.close_for(ended.code)

    async def recheck(self, connections: Iterable[Connection] | None = None) -> None:
        """Close the connections whose session the database no longer holds (or whose
        account is not ACTIVE): for what no event told, such as another process's commit
        on SQLite, or a NOTIFY sent while the listener was reconnecting."""
        if connections is None:
            connections = [c for found in self._by_account.values() for c in found]
        targets = list(connections)
        if not targets:
            return
        rows = await Session.filter(
            id__in={c.session_id for c in targets}, expires_at__gt=clock.now()
        ).values_list("id", "account__status", "account__deleted_at")
        holding = {int(id_): (status, deleted) for id_, status, deleted in rows}
        for connection in targets:
            found = holding.get(connection.session_id)
            if found is None or found[1] is not None:
                code = SESSION_ENDED
            elif found[0] != AccountStatus.ACTIVE:
                code = NOT_ACTIVE
            else:
                continue
            self.discard(connection)
            connection.close_for(code)

    def _start_recheck(self, connections: Iterable[Connection] | None = None) -> None:
        task = asyncio.get_running_loop().create_task(self.recheck(connections))
        self._rechecks.add(task)
        task.add_done_callback(self._rechecked)

    def _rechecked(self, task: asyncio.Task[None]) -> None:
        self._rechecks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("checking open connections failed", exc_info=task.exception())

    def recheck_soon(self) -> None:
        """`recheck` every connection, in a task of its own."""
        self._start_recheck()


class SqliteWatch:
    """SQLite has no NOTIFY: a session another process ends (`keybin import members` making
    an agent inactive) is noticed by the data version of this process's one connection,
    which moves only when another connection, so another process, commits; the open
    connections are then checked against the database."""

    def __init__(self, connections: OpenConnections) -> None:
        self.connections = connections
        self._version: int | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="session-watch")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task, self._stopping)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_SECONDS):
                    await self._stopping.wait()
            if not len(self.connections):
                continue
            try:
                if await self._moved():
                    await self.connections.recheck()
            except OperationalError as error:
                log.warning("open connections not checked (%s): at the next look", error)
                self._version = None

    async def _moved(self) -> bool:
        """Whether another process committed since the last look."""
        database = Tortoise.get_connection("default")
        rows = await database.execute_query_dict("PRAGMA data_version")
        version = int(rows[0]["data_version"])
        moved, self._version = version != self._version, version
        return moved
