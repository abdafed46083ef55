"""The root Query."""

from __future__ import annotations

import datetime
from typing import Annotated

import strawberry

from resolvers import listings as listing_ops
from resolvers import lockboxes as lockbox_ops
from schema.accounts import Account, account_from_model
from schema.base import Node
from schema.context import Info
from schema.grants import AccessEventConnection, access_log_connection
from schema.listings import Lockbox, Region
from schema.node import resolve_node


@strawberry.type
class Query:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)

    @strawberry.field(description="The signed-in account, or null without a valid token.")
    async def me(self, info: Info) -> Account | None:
        account = info.context.account
        return account_from_model(account) if account else None

    @strawberry.field
    async def regions(self, info: Info) -> list[Region]:
        return [Region.from_model(r) for r in await listing_ops.regions()]

    @strawberry.field(
        description="For assigning: a lockbox that is unassigned or already this agent's."
    )
    async def lockbox_by_serial(self, info: Info, serial_number: str) -> Lockbox | None:
        row = await lockbox_ops.lockbox_by_serial(info.context.require_account(), serial_number)
        return Lockbox.from_model(row) if row else None

    @strawberry.field(
        description="Access Log: lockbox uses on the agent's lockboxes, or the contractor's own "
        "uses, in [from, to)."
    )
    async def access_log(
        self,
        info: Info,
        from_: Annotated[datetime.datetime, strawberry.argument(name="from")],
        to: datetime.datetime,
        first: int | None = 50,
        after: str | None = None,
    ) -> AccessEventConnection:
        return await access_log_connection(info, from_, to, first, after)
