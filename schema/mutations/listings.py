"""My Listings and My Lockboxes."""

from __future__ import annotations

import datetime

import strawberry

from models.enums import ListingStatus
from schema.context import Info
from schema.errors import UserError, not_available
from schema.listings import Listing, Lockbox


@strawberry.input
class AddressInput:
    line1: str
    city: str
    state: str
    postal_code: str
    line2: str | None = None


@strawberry.input
class AddListingInput:
    address: AddressInput
    mls_number: str | None = None
    status: ListingStatus | None = ListingStatus.ACTIVE


@strawberry.type
class AddListingPayload:
    listing: Listing | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AssignLockboxInput:
    serial_number: str


@strawberry.type
class AssignLockboxPayload:
    lockbox: Lockbox | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UnassignLockboxInput:
    lockbox_id: strawberry.ID


@strawberry.type
class UnassignLockboxPayload:
    lockbox: Lockbox | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AssignLockboxToListingInput:
    listing_id: strawberry.ID
    lockbox_id: strawberry.ID
    on_listing_since: datetime.date
    region_code: str


@strawberry.type
class AssignLockboxToListingPayload:
    listing: Listing | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ListingMutation:
    @strawberry.mutation
    async def add_listing(self, info: Info, input: AddListingInput) -> AddListingPayload:
        info.context.require_account()
        raise not_available("addListing")

    @strawberry.mutation
    async def assign_lockbox(self, info: Info, input: AssignLockboxInput) -> AssignLockboxPayload:
        info.context.require_account()
        raise not_available("assignLockbox")

    @strawberry.mutation
    async def unassign_lockbox(
        self, info: Info, input: UnassignLockboxInput
    ) -> UnassignLockboxPayload:
        info.context.require_account()
        raise not_available("unassignLockbox")

    @strawberry.mutation
    async def assign_lockbox_to_listing(
        self, info: Info, input: AssignLockboxToListingInput
    ) -> AssignLockboxToListingPayload:
        info.context.require_account()
        raise not_available("assignLockboxToListing")
