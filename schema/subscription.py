"""The root Subscription: the Message Center, live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Annotated
from weakref import WeakKeyDictionary

import strawberry
from strawberry.dataloader import DataLoader

from core.ids import global_pk
from notify.pubsub import EventQueue
from resolvers import messages as message_ops
from resolvers import rows
from schema.context import Info
from schema.errors import bad_argument
from schema.fast.fanout import direct_sink, park
from schema.loaders import Loaders
from schema.messages import Message

if TYPE_CHECKING:
    from models.messages import Message as MessageModel

# Subscribers woken by one burst of events read their messages in one query, not
# one each: a batching, non-caching loader per event loop, shared by connections.
_fetchers: WeakKeyDictionary[asyncio.AbstractEventLoop, DataLoader[int, MessageModel | None]] = (
    WeakKeyDictionary()
)


def _fetcher() -> DataLoader[int, MessageModel | None]:
    loop = asyncio.get_running_loop()
    if loop not in _fetchers:
        _fetchers[loop] = DataLoader(load_fn=rows.messages, cache=False)
    return _fetchers[loop]


# A subscriber that resumes after a long time reads the rest from the Message Center.
CATCH_UP = 100


def _resume_point(after: strawberry.ID | None) -> int | None:
    if after is None:
        return None
    pk = global_pk(after, ("Message",))
    if pk is None:
        raise bad_argument("`after` is not a message id.")
    return pk


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each new Message Center message of the signed-in account, as it is created."
    )
    async def message_added(
        self,
        info: Info,
        after: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="Resume after this message (the last one the app has): the "
                f"account's messages created since are sent first, oldest first, at most "
                f"{CATCH_UP}; older ones are in the Message Center."
            ),
        ] = None,
    ) -> AsyncGenerator[Message, None]:
        account = info.context.require_account()
        resume_after = _resume_point(after)
        # Resuming takes the usual path: the missed messages go first, then the live ones.
        sink = direct_sink(account.id) if resume_after is None else None
        if sink is not None and sink.direct:
            await park(sink, info.context.pubsub)  # the sink sends every event from now on
        queue = sink.resolver_queue if sink is not None else EventQueue()
        async with info.context.pubsub.subscribe(account.id, sink or queue):
            # Subscribed before reading: a message committed meanwhile is read or heard, and
            # one both read and heard is sent once.
            caught_up: set[int] = set()
            if resume_after is not None:
                for missed in await message_ops.since(account.id, resume_after, CATCH_UP):
                    caught_up.add(missed.id)
                    info.context.loaders = Loaders()
                    yield Message.from_model(missed)
            while True:
                # With a sink, only the events it could not send itself come this way.
                message_id = await queue.get()
                if message_id in caught_up:
                    continue
                if sink is not None:
                    await sink.flush()
                # Re-read and re-check: the event carries only an id.
                row = message_ops.addressed_to(await _fetcher().load(message_id), account.id)
                if row is None:
                    continue
                # Loaders live per event: the connection's context outlives many events.
                info.context.loaders = Loaders()
                yield Message.from_model(row)
