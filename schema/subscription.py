"""The root Subscription: the Message Center, live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from weakref import WeakKeyDictionary

import strawberry
from strawberry.dataloader import DataLoader

from models.messages import Message as MessageModel
from schema.context import Info
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
        async with info.context.pubsub.subscribe(account.id) as queue:
            while True:
                message_id = await queue.get()
                # Re-read and re-check: the event carries only an id.
                row = await _fetcher().load(message_id)
                if row is None or row.account_id != account.id:  # type: ignore[attr-defined]
                    continue
                # Loaders live per event: the connection's context outlives many events.
                info.context.loaders = Loaders()
                yield Message.from_model(row)
