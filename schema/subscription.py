"""The root Subscription: the Message Center, live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from weakref import WeakKeyDictionary

import strawberry
from strawberry.dataloader import DataLoader

from models import prepared
from models.messages import Message as MessageModel
from schema.context import Info
from schema.loaders import Loaders
from schema.messages import Message

# Subscribers woken by one burst of events read their messages in one query, not
# one each: a batching, non-caching loader per event loop, shared by connections.
_fetchers: WeakKeyDictionary[asyncio.AbstractEventLoop, DataLoader[int, MessageModel | None]] = (
    WeakKeyDictionary()
)


async def _load_messages(ids: list[int]) -> Sequence[MessageModel | None]:
    rows = {row.id: row for row in await prepared.by_ids(MessageModel, ids)}
    return [rows.get(i) for i in ids]


def _fetcher() -> DataLoader[int, MessageModel | None]:
    loop = asyncio.get_running_loop()
    if loop not in _fetchers:
        _fetchers[loop] = DataLoader(load_fn=_load_messages, cache=False)
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
