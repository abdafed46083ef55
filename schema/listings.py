"""Listing types: Region, Address, Listing, Lockbox, and their connections."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.dataloader import DataLoader

import schema.enums  # noqa: F401  (registers the enums used below)
from core.errors import Forbidden
from core.ids import to_global_id
from models.enums import ListingSource, ListingStatus
from resolvers import listings as listing_ops
from resolvers import lockboxes as lockbox_ops
from resolvers import rows, visibility
from schema.base import Connection, Node, build_connection, check_first, decode_cursor
from schema.context import Info
from schema.errors import forbidden

if TYPE_CHECKING:
    from models.accounts import Account as AccountModel
    from models.listings import Listing as ListingModel
    from models.listings import Lockbox as LockboxModel
    from models.listings import Region as RegionModel
    from schema.accounts import Agent
    from schema.grants import AccessEventConnection, GrantConnection, GrantStatus
    from schema.one_day_codes import OneDayCodeIssueConnection


@strawberry.type
class Region:
    code: str
    name: str
    time_zone: str = strawberry.field(description="IANA time zone, e.g. America/New_York")

    @classmethod
    def from_model(cls, row: RegionModel) -> Region:
        return cls(code=row.code, name=row.name, time_zone=row.time_zone)


@strawberry.type
class Address:
    line1: str
    line2: str | None
    city: str
    state: str
    postal_code: str


async def _region(info: Info, code: str | None) -> Region | None:
    if code is None:
        return None
    row = await info.context.loaders.batched(rows.regions).load(code)
    return Region.from_model(row) if row else None


def _lockbox_by_listing(info: Info) -> DataLoader[int, LockboxModel | None]:
    return info.context.loaders.batched(listing_ops.lockboxes_of_listings)


@strawberry.type
class Listing(Node):
    pk: strawberry.Private[int]
    agent_pk: strawberry.Private[int]
    mls_number: str | None
    address: Address
    status: ListingStatus
    source: ListingSource

    @strawberry.field
    async def agent(self, info: Info) -> Annotated[Agent, strawberry.lazy("schema.accounts")]:
        from schema.accounts import Agent, account_seen_by

        # Non-null in the contract: an agent deleted since still answers, by now nameless.
        row = await info.context.loaders.batched(rows.accounts).load(self.agent_pk)
        agent = account_seen_by(row, info)  # type: ignore[arg-type]
        assert isinstance(agent, Agent)  # noqa: S101  (listings belong to agents by construction)
        return agent

    @strawberry.field
    async def lockbox(self, info: Info) -> Lockbox | None:
        row = await _lockbox_by_listing(info).load(self.pk)
        return Lockbox.from_model(row, self.pk, self.agent_pk) if row else None

    @strawberry.field
    async def on_listing_since(self, info: Info) -> date | None:
        row = await _lockbox_by_listing(info).load(self.pk)
        return row.on_listing_since if row else None

    @strawberry.field
    async def region(self, info: Info) -> Region | None:
        row = await _lockbox_by_listing(info).load(self.pk)
        return await _region(info, row.region_id) if row else None  # type: ignore[attr-defined]

    @strawberry.field(
        description="SentriConnect-style access history for this listing, newest first."
    )
    async def grants(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: list[Annotated[GrantStatus, strawberry.lazy("schema.grants")]] | None = None,
    ) -> Annotated[GrantConnection, strawberry.lazy("schema.grants")]:
        from schema.grants import listing_grants

        return await listing_grants(info, self.pk, self.agent_pk, first, after, status)

    @strawberry.field
    async def access_events(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated[AccessEventConnection, strawberry.lazy("schema.grants")]:
        from schema.grants import listing_access_events

        return await listing_access_events(info, self.pk, self.agent_pk, first, after)

    @strawberry.field(
        description="One Day Codes issued for this listing's lockbox, newest first: by whom, "
        "for whom and for which day. The listing's agent alone may read it."
    )
    async def one_day_codes(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated[OneDayCodeIssueConnection, strawberry.lazy("schema.one_day_codes")]:
        from schema.one_day_codes import listing_one_day_codes

        return await listing_one_day_codes(info, self.pk, self.agent_pk, first, after)

    @classmethod
    def from_model(cls, row: ListingModel) -> Listing:
        return cls(
            id=strawberry.ID(to_global_id("Listing", row.id)),
            pk=row.id,
            agent_pk=row.agent_id,  # type: ignore[attr-defined]
            mls_number=row.mls_number,
            address=Address(
                line1=row.line1,
                line2=row.line2,
                city=row.city,
                state=row.state,
                postal_code=row.postal_code,
            ),
            status=row.status,
            source=row.source,
        )


@strawberry.type
class Lockbox(Node):
    pk: strawberry.Private[int]
    serial_number: str
    model: str
    ble_capable: bool = strawberry.field(
        description="Bluetooth Low Energy lockboxes take app credentials; others take "
        "One Day Codes."
    )
    assigned_pk: strawberry.Private[int | None]
    listing_pk: strawberry.Private[int | None]
    region_code: strawberry.Private[str | None]
    since: strawberry.Private[date | None]
    last_access: strawberry.Private[datetime | None]
    # The listing of the record the reader reached the lockbox through (a grant, an access
    # event, a code issued, the listing itself), and that listing's agent when known.
    via_listing_pk: strawberry.Private[int | None]
    via_agent_pk: strawberry.Private[int | None]

    async def _sight(self, info: Info) -> visibility.LockboxSight:
        async def agent_of(listing_pk: int) -> int | None:
            if self.via_agent_pk is not None:
                return self.via_agent_pk
            row = await info.context.loaders.batched(rows.listings).load(listing_pk)
            return row.agent_id if row else None  # type: ignore[attr-defined]

        account = info.context.account
        return await visibility.lockbox_sight(
            account.id if account else None,
            self.assigned_pk,
            self.listing_pk,
            self.via_listing_pk,
            agent_of,
        )

    @strawberry.field
    async def assigned_to(
        self, info: Info
    ) -> Annotated[Agent, strawberry.lazy("schema.accounts")] | None:
        from schema.accounts import Agent, account_seen_by

        if self.assigned_pk is None or not (await self._sight(info)).place:
            return None
        row = await info.context.loaders.batched(rows.accounts).load(self.assigned_pk)
        row = visibility.still_exists(row)
        agent = account_seen_by(row, info) if row else None
        return agent if isinstance(agent, Agent) else None

    @strawberry.field
    async def listing(self, info: Info) -> Listing | None:
        if self.listing_pk is None or not (await self._sight(info)).place:
            return None
        row = await info.context.loaders.batched(rows.listings).load(self.listing_pk)
        return Listing.from_model(row) if row else None

    @strawberry.field
    async def on_listing_since(self, info: Info) -> date | None:
        return self.since if (await self._sight(info)).place else None

    @strawberry.field
    async def region(self, info: Info) -> Region | None:
        return await _region(info, self.region_code) if (await self._sight(info)).place else None

    @strawberry.field
    async def last_access_at(self, info: Info) -> datetime | None:
        return self.last_access if (await self._sight(info)).uses else None

    @classmethod
    def from_model(
        cls,
        row: LockboxModel,
        via_listing_pk: int | None = None,
        via_agent_pk: int | None = None,
    ) -> Lockbox:
        return cls(
            id=strawberry.ID(to_global_id("Lockbox", row.id)),
            pk=row.id,
            serial_number=row.serial_number,
            model=row.model,
            ble_capable=row.ble,
            assigned_pk=row.assigned_to_id,  # type: ignore[attr-defined]
            listing_pk=row.listing_id,  # type: ignore[attr-defined]
            region_code=row.region_id,  # type: ignore[attr-defined]
            since=row.on_listing_since,
            last_access=row.last_access_at,
            via_listing_pk=via_listing_pk,
            via_agent_pk=via_agent_pk,
        )


@strawberry.type
class ListingConnection(Connection[Listing]):
    pass


@strawberry.type
class LockboxConnection(Connection[Lockbox]):
    pass


async def agent_listings(
    info: Info, agent_pk: int, first: int | None, after: str | None, search: str | None
) -> ListingConnection:
    _only_self(info, agent_pk)
    limit = check_first(first)
    rows = await listing_ops.agent_listings(agent_pk, limit + 1, decode_cursor(after), search)
    return build_connection(
        ListingConnection,
        [Listing.from_model(r) for r in rows],
        [r.id for r in rows],
        limit,
        after,
        lambda: listing_ops.count_agent_listings(agent_pk, search),
    )


async def agent_lockboxes(
    info: Info, agent_pk: int, first: int | None, after: str | None
) -> LockboxConnection:
    _only_self(info, agent_pk)
    limit = check_first(first)
    rows = await listing_ops.agent_lockboxes(agent_pk, limit + 1, decode_cursor(after))
    return build_connection(
        LockboxConnection,
        [Lockbox.from_model(r) for r in rows],
        [r.id for r in rows],
        limit,
        after,
        lambda: listing_ops.count_agent_lockboxes(agent_pk),
    )


def require_agent(info: Info) -> AccountModel:
    """Listings, lockboxes, grants and codes are agents' tools: others get FORBIDDEN."""
    account = info.context.require_account()
    try:
        lockbox_ops.require_agent(account)
    except Forbidden:
        raise forbidden() from None
    return account


def _only_self(info: Info, agent_pk: int) -> None:
    """An agent's listings and lockboxes are shown to that agent only."""
    account = info.context.account
    if not visibility.reads_own(agent_pk, account.id if account else None):
        raise forbidden()
