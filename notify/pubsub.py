"""Live events for subscriptions: account id -> bounded queues of new message ids; and the
open connections that ended sessions close."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from notify import sessions
from notify.connections import OpenConnections, SqliteWatch
from notify.live_events import MessageTail

log = logging.getLogger("keybin.pubsub")

QUEUE_SIZE = 100


class Inbox(Protocol):
    """Where a subscriber's events go: a queue, or a sink that sends them on the spot
    (schema/fast/fanout.py). Raises asyncio.QueueFull when the subscriber is too far behind."""

    def put_nowait(self, message_id: int) -> None: ...


class PubSub:
    """In-process fan-out (SQLite). A PostgreSQL backend extends it to several instances.

    Sessions this process ends close its connections right after the commit; those another
    process ends (the command line), once the watch notices its commit."""

    def __init__(self) -> None:
        self._queues: dict[int, set[Inbox]] = defaultdict(set)
        self.connections = OpenConnections()
        self._watch: SqliteWatch | None = None
        # New messages reach subscribers as their transactions commit (notify/live_events.py).
        self._tail = MessageTail(self.deliver_local)
        # The newest message id handed to this process's subscribers (whether it has any).
        self.heard = 0

    async def start(self) -> None:
        sessions.listen_here(self.connections)
        self._watch = SqliteWatch(self.connections)
        self._watch.start()
        await self._tail.start()

    async def stop(self) -> None:
        await self._tail.stop()
        sessions.stop_listening_here(self.connections)
        if self._watch is not None:
            await self._watch.stop()
            self._watch = None

    async def settle(self) -> None:
        """Hand on what was committed before now, before a new subscriber joins (SQLite: the
        tail's next look might otherwise be after it)."""
        if self._tail.running:
            await self._tail.read_new()

    async def publish(self, account_id: int, message_id: int) -> None:
        self.deliver_local(account_id, message_id)

    def deliver_local(self, account_id: int, message_id: int) -> None:
        self.heard = max(self.heard, message_id)
        for queue in list(self._queues.get(account_id, ())):
            try:
                queue.put_nowait(message_id)
            except asyncio.QueueFull:
                # A subscriber that stopped reading must not hold up everyone else.
                log.warning("subscriber queue full for account %s, event dropped", account_id)

    @asynccontextmanager
    async def subscribe(self, account_id: int, inbox: Inbox | None = None) -> AsyncIterator[Inbox]:
        """Events for `account_id` into `inbox` (a new bounded queue by default): messages
        committed from now on, none from before."""
        queue: Inbox = inbox if inbox is not None else asyncio.Queue(QUEUE_SIZE)
        await self.settle()
        self._queues[account_id].add(queue)
        try:
            yield queue
        finally:
            self._queues[account_id].discard(queue)
            if not self._queues[account_id]:
                del self._queues[account_id]

    def subscriber_count(self) -> int:
        return sum(len(queues) for queues in self._queues.values())
