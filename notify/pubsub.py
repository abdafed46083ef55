"""Live events for subscriptions: account id -> bounded queues of new message ids; and the
open connections that ended sessions close."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
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


class EventQueue:
    """A subscription's bounded queue of message ids, read by its one resolver task.

    What asyncio.Queue does for this, in a tenth of its memory: that one keeps three deques,
    an Event and its counters for every subscriber, for putters and getters it never has
    here; with thousands of open subscriptions that was a tenth of each connection's
    memory. Ids wait in a deque made when the first one comes; a reader waits on one future."""

    __slots__ = ("_ids", "_waiter", "maxsize")

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        self.maxsize = maxsize
        self._ids: deque[int] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, message_id: int) -> None:
        ids = self._ids
        if ids is None:
            ids = self._ids = deque()
        elif len(ids) >= self.maxsize:
            raise asyncio.QueueFull
        ids.append(message_id)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> int:
        # A reader cancelled while waiting leaves the ids where they are: none is lost.
        while not self._ids:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._ids.popleft()

    def empty(self) -> bool:
        return not self._ids

    def qsize(self) -> int:
        return len(self._ids) if self._ids else 0


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
            await self._tail.catch_up()

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
        queue: Inbox = inbox if inbox is not None else EventQueue()
        await self.attach(account_id, queue)
        try:
            yield queue
        finally:
            self.detach(account_id, queue)

    async def attach(self, account_id: int, inbox: Inbox) -> None:
        """`subscribe` for an inbox that outlives the block: events for `account_id` go
        to it until `detach` (a parked subscription's sink, schema/fast/fanout.py)."""
        await self.settle()
        self._queues[account_id].add(inbox)

    def detach(self, account_id: int, inbox: Inbox) -> None:
        queues = self._queues.get(account_id)
        if queues is not None:
            queues.discard(inbox)
            if not queues:
                del self._queues[account_id]

    def subscriber_count(self) -> int:
        return sum(len(queues) for queues in self._queues.values())
