"""The root Subscription: the Message Center, live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from weakref import WeakKeyDictionary

import strawberry
from strawberry.dataloader import DataLoader

from models.messages import Message as MessageModel
from notify.pubsub import QUEUE_SIZE
from schema.context import Info
from schema.live import direct_sink
from schema.loaders import Loaders, by_id_loader
from schema.messages import Message

# Subscribers woken by one burst of events read their messages in one query, not
# one each: a batching, non-caching loader per event loop, shared by connections.
_fetchers: WeakKeyDictionary[asyncio.AbstractEventLoop, DataLoader[int, MessageModel | None]] = (
    WeakKeyDictionary()
)


def _fetcher() -> DataLoader[int, MessageModel | None]:
    loop = asyncio.get_running_loop()
    if loop not in _fetchers:
        _fetchers[loop] = by_id_loader(MessageModel, cache=False)
    return _fetchers[loop]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each new Message Center message of the signed-in account, as it is created."
    )
    async def message_added(self, info: Info) -> AsyncGenerator[Message, None]:
        account = info.context.require_account()
        sink = direct_sink(account.id)
        queue: asyncio.Queue[int] = sink.usual if sink is not None else asyncio.Queue(QUEUE_SIZE)
        async with info.context.pubsub.subscribe(account.id, sink or queue):
            while True:
                # With a sink, only the events it could not send itself come this way.
                message_id = await queue.get()
                if sink is not None:
                    await sink.sent()
                # Re-read and re-check: the event carries only an id.
                row = await _fetcher().load(message_id)
                if row is None or row.account_id != account.id:  # type: ignore[attr-defined]
                    continue
                # Loaders live per event: the connection's context outlives many events.
                info.context.loaders = Loaders()
                yield Message.from_model(row)
