"""Live Message Center events, announced when the message's transaction commits.

A message is durable in its table; its live delivery starts at commit and never waits
behind mail, SMS or push. On PostgreSQL the announcement is a NOTIFY issued inside the
writer's transaction: PostgreSQL sends it exactly at commit, to every instance, and never
on rollback. SQLite has no NOTIFY: this process reads the new rows of the message table
right after each commit (MessageTail), which sees only what was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from tortoise import Tortoise
from tortoise.exceptions import OperationalError

from notify import outbox
from notify.tasks import stop_task

log = logging.getLogger("keybin.live")

CHANNEL = "keybin_messages"
# A commit that forgot to wake the tail, or one made by another process, is seen this late.
TAIL_POLL_SECONDS = 0.5
TAIL_BATCH = 1000

Deliver = Callable[[int, int], None]


async def message_posted(account_id: int, message_id: int) -> None:
    """Call inside the transaction that creates the message."""
    database = Tortoise.get_connection("default")
    if database.capabilities.dialect == "postgres":
        # Inside a transaction this connection is the transaction's: sent at its commit.
        await database.execute_query(
            "SELECT pg_notify($1, $2)", [CHANNEL, f"{account_id}:{message_id}"]
        )


class MessageTail:
    """SQLite: hands each newly committed message to `deliver(account_id, message_id)`, in
    commit order (one writer at a time, so ids grow in commit order)."""

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.last_id: int | None = None
        self.wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The loop and a new subscriber may both read: one at a time, so each row goes once.
        self._reading = asyncio.Lock()
        # The read that new callers of `catch_up` wait for, until it starts.
        self._next: asyncio.Future[int] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        self.last_id = await self._newest()
        self._stopping.clear()
        outbox.on_wake(self.wakeup.set)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="message-tail")

    async def stop(self) -> None:
        outbox.off_wake(self.wakeup.set)
        if self._task is not None:
            self.wakeup.set()
            await stop_task(self._task, self._stopping)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TAIL_POLL_SECONDS):
                    await self.wakeup.wait()
            self.wakeup.clear()
            try:
                await self.read_new()
            except OperationalError as error:
                log.warning("new messages not read (%s): at the next look", error)

    async def read_new(self) -> int:
        """Deliver the messages committed since the last read; how many there were."""
        async with self._reading:
            return await self._read_new()

    async def catch_up(self) -> None:
        """Return once a read that started after this call has delivered.

        Callers that come while another read is under way share the one read after it:
        a thousand clients subscribing at once cost two reads, not a thousand in a row,
        each holding its half-started subscription in memory while it waited its turn."""
        if self._next is None:
            self._next = asyncio.ensure_future(self._read_for_callers())
        await asyncio.shield(self._next)

    async def _read_for_callers(self) -> int:
        async with self._reading:
            self._next = None  # later callers need a read that starts after this one
            return await self._read_new()

    async def _read_new(self) -> int:
        database = Tortoise.get_connection("default")
        delivered = 0
        while True:
            rows = await database.execute_query_dict(
                "SELECT id, account_id FROM message WHERE id > ? ORDER BY id LIMIT ? + 0",
                [self.last_id or 0, TAIL_BATCH],
            )
            for row in rows:
                self.deliver(int(row["account_id"]), int(row["id"]))
            if rows:
                self.last_id = int(rows[-1]["id"])
                delivered += len(rows)
            if len(rows) < TAIL_BATCH:
                return delivered

    async def _newest(self) -> int:
        database = Tortoise.get_connection("default")
        rows = await database.execute_query_dict("SELECT MAX(id) AS id FROM message")
        return int(rows[0]["id"] or 0)
