"""Grant types: Grant, Recurrence, AccessEvent, OneDayCode, and their connections."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

import schema.enums  # noqa: F401  (registers the enums used below)
from models.access import AccessEvent as AccessEventModel
from models.enums import AccessMethod, AccessOutcome
from models.grants import Grant as GrantModel
from resolvers import clock
from schema.base import Connection, Node
from schema.context import Info
from schema.errors import not_available
from schema.ids import to_global_id

if TYPE_CHECKING:
    from schema.accounts import Account, Agent, Contractor
    from schema.listings import Listing, Lockbox


@strawberry.enum
class GrantStatus(Enum):
    SCHEDULED = "SCHEDULED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@strawberry.enum
class Weekday(Enum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


WEEKDAYS = list(Weekday)  # index + 1 is the ISO weekday


@strawberry.type(
    description="Weekly hours, in the listing region's time zone, e.g. a cleaner every "
    "Tuesday 09:00-12:00."
)
class Recurrence:
    weekdays: list[Weekday]
    daily_start: str = strawberry.field(description="HH:MM, 24-hour clock.")
    daily_end: str


def grant_status(row: GrantModel, now: datetime | None = None) -> GrantStatus:
    """Derived from the clock, never stored."""
    now = now or clock.now()
    if row.revoked_at is not None:
        return GrantStatus.REVOKED
    if now < row.starts_at:
        return GrantStatus.SCHEDULED
    return GrantStatus.ACTIVE if now < row.ends_at else GrantStatus.EXPIRED


@strawberry.type(
    description="Time-windowed access to one listing's lockbox, granted by an agent to an email."
)
class Grant(Node):
    pk: strawberry.Private[int]
    row: strawberry.Private[GrantModel]
    grantee_email: str
    starts_at: datetime
    ends_at: datetime
    status: GrantStatus
    revocable: bool = strawberry.field(description="Only grants that have not started can be revoked.")
    created_at: datetime
    revoked_at: datetime | None
    recurrence: Recurrence | None = strawberry.field(
        description="Null for one continuous window; else the weekly hours inside it."
    )

    @strawberry.field
    async def listing(self, info: Info) -> Annotated[Listing, strawberry.lazy("schema.listings")]:
        from models.listings import Listing as ListingModel
        from schema.listings import Listing

        row = await info.context.loaders.by_id(ListingModel).load(self.row.listing_id)  # type: ignore[attr-defined]
        return Listing.from_model(row)  # type: ignore[arg-type]

    @strawberry.field
    async def lockbox(self, info: Info) -> Annotated[Lockbox, strawberry.lazy("schema.listings")]:
        from models.listings import Lockbox as LockboxModel
        from schema.listings import Lockbox

        row = await info.context.loaders.by_id(LockboxModel).load(self.row.lockbox_id)  # type: ignore[attr-defined]
        return Lockbox.from_model(row)  # type: ignore[arg-type]

    @strawberry.field
    async def granted_by(self, info: Info) -> Annotated[Agent, strawberry.lazy("schema.accounts")]:
        from models.accounts import Account as AccountModel
        from schema.accounts import account_from_model

        row = await info.context.loaders.by_id(AccountModel).load(self.row.granted_by_id)  # type: ignore[attr-defined]
        return account_from_model(row)  # type: ignore[arg-type,return-value]

    @strawberry.field(description="Null until the invited person has created an account.")
    async def grantee(
        self, info: Info
    ) -> Annotated[Contractor, strawberry.lazy("schema.accounts")] | None:
        from models.accounts import Account as AccountModel
        from schema.accounts import Contractor, account_from_model

        grantee_id = self.row.grantee_id  # type: ignore[attr-defined]
        if grantee_id is None:
            return None
        row = await info.context.loaders.by_id(AccountModel).load(grantee_id)
        account = account_from_model(row) if row else None
        return account if isinstance(account, Contractor) else None

    @strawberry.field
    async def access_events(self, info: Info) -> list[AccessEvent]:
        rows = await AccessEventModel.filter(grant_id=self.pk).order_by("-occurred_at", "-id")
        return [AccessEvent.from_model(r) for r in rows]

    @classmethod
    def from_model(cls, row: GrantModel) -> Grant:
        status = grant_status(row)
        recurrence = None
        if row.rec_weekdays:
            recurrence = Recurrence(
                weekdays=[WEEKDAYS[int(d) - 1] for d in row.rec_weekdays.split(",")],
                daily_start=row.rec_start or "",
                daily_end=row.rec_end or "",
            )
        return cls(
            id=strawberry.ID(to_global_id("Grant", row.id)),
            pk=row.id,
            row=row,
            grantee_email=row.grantee_email or "",
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            status=status,
            revocable=status == GrantStatus.SCHEDULED,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            recurrence=recurrence,
        )


@strawberry.type(description="One use (or refused use) of a lockbox, as the lockbox recorded it.")
class AccessEvent(Node):
    row: strawberry.Private[AccessEventModel]
    occurred_at: datetime
    method: AccessMethod
    outcome: AccessOutcome
    actor_name: str = strawberry.field(
        description="The person's name at the time; kept after the account is deleted."
    )

    @strawberry.field
    async def lockbox(self, info: Info) -> Annotated[Lockbox, strawberry.lazy("schema.listings")]:
        from models.listings import Lockbox as LockboxModel
        from schema.listings import Lockbox

        row = await info.context.loaders.by_id(LockboxModel).load(self.row.lockbox_id)  # type: ignore[attr-defined]
        return Lockbox.from_model(row)  # type: ignore[arg-type]

    @strawberry.field
    async def listing(
        self, info: Info
    ) -> Annotated[Listing, strawberry.lazy("schema.listings")] | None:
        from models.listings import Listing as ListingModel
        from schema.listings import Listing

        listing_id = self.row.listing_id  # type: ignore[attr-defined]
        row = await info.context.loaders.by_id(ListingModel).load(listing_id) if listing_id else None
        return Listing.from_model(row) if row else None

    @strawberry.field
    async def grant(self, info: Info) -> Grant | None:
        grant_id = self.row.grant_id  # type: ignore[attr-defined]
        row = await info.context.loaders.by_id(GrantModel).load(grant_id) if grant_id else None
        return Grant.from_model(row) if row else None

    @strawberry.field(description="Null once the account is deleted.")
    async def actor(
        self, info: Info
    ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        from models.accounts import Account as AccountModel
        from schema.accounts import account_from_model

        actor_id = self.row.actor_id  # type: ignore[attr-defined]
        row = await info.context.loaders.by_id(AccountModel).load(actor_id) if actor_id else None
        if row is None or row.deleted_at is not None:
            return None
        return account_from_model(row)

    @classmethod
    def from_model(cls, row: AccessEventModel) -> AccessEvent:
        return cls(
            id=strawberry.ID(to_global_id("AccessEvent", row.id)),
            row=row,
            occurred_at=row.occurred_at,
            method=row.method,
            outcome=row.outcome,
            actor_name=row.actor_name,
        )


@strawberry.type
class OneDayCode:
    code: str
    lockbox_row: strawberry.Private[object]
    valid_on: date = strawberry.field(
        description="The day, in the lockbox region's time zone, on which the code opens the lockbox."
    )
    valid_from: datetime
    valid_until: datetime
    issued_to: str | None

    @strawberry.field
    def lockbox(self) -> Annotated[Lockbox, strawberry.lazy("schema.listings")]:
        from schema.listings import Lockbox

        return Lockbox.from_model(self.lockbox_row)  # type: ignore[arg-type]


@strawberry.type
class GrantConnection(Connection[Grant]):
    pass


@strawberry.type
class AccessEventConnection(Connection[AccessEvent]):
    pass


async def listing_grants(
    info: Info, listing_pk: int, first: int | None, after: str | None, status: list[GrantStatus] | None
) -> GrantConnection:
    raise not_available("Listing.grants")


async def contractor_grants(
    info: Info, account_pk: int, first: int | None, after: str | None, status: list[GrantStatus] | None
) -> GrantConnection:
    raise not_available("Contractor.grants")


async def listing_access_events(
    info: Info, listing_pk: int, first: int | None, after: str | None
) -> AccessEventConnection:
    raise not_available("Listing.accessEvents")
