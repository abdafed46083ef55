"""Live events for subscriptions: account id -> bounded queues of new message ids."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

log = logging.getLogger("keybin.pubsub")

QUEUE_SIZE = 100


class Inbox(Protocol):
    """Where a subscriber's events go: a queue, or a sink that sends them on the spot
    (schema/live.py). Raises asyncio.QueueFull when the subscriber is too far behind."""

    def put_nowait(self, message_id: int) -> None: ...


class PubSub:
    """In-process fan-out. A PostgreSQL backend extends it to several instances."""

    def __init__(self) -> None:
        self._queues: dict[int, set[Inbox]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish(self, account_id: int, message_id: int) -> None:
        self.deliver_local(account_id, message_id)

    def deliver_local(self, account_id: int, message_id: int) -> None:
        for queue in list(self._queues.get(account_id, ())):
            try:
                queue.put_nowait(message_id)
            except asyncio.QueueFull:
                # A subscriber that stopped reading must not hold up everyone else.
                log.warning("subscriber queue full for account %s, event dropped", account_id)

    @asynccontextmanager
    async def subscribe(self, account_id: int, inbox: Inbox | None = None) -> AsyncIterator[Inbox]:
        """Events for `account_id` into `inbox` (a new bounded queue by default)."""
        queue: Inbox = inbox if inbox is not None else asyncio.Queue(QUEUE_SIZE)
        self._queues[account_id].add(queue)
        try:
            yield queue
        finally:
            self._queues[account_id].discard(queue)
            if not self._queues[account_id]:
                del self._queues[account_id]

    def subscriber_count(self) -> int:
        return sum(len(queues) for queues in self._queues.values())
