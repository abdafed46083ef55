"""The root Subscription: the Message Center, live."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from models.messages import Message as MessageModel
from schema.context import Info
from schema.loaders import Loaders
from schema.messages import Message


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
                row = await MessageModel.get_or_none(id=message_id, account_id=account.id)
                if row is None:
                    continue
                # Loaders live per event: the connection's context outlives many events.
                info.context.loaders = Loaders()
                yield Message.from_model(row)
