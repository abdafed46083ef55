"""My Listings and My Lockboxes."""

from __future__ import annotations

import datetime

import strawberry

from core.errors import DomainError
from core.ids import parse_pk
from models.enums import ListingStatus
from resolvers import listings as listing_ops
from resolvers import lockboxes as lockbox_ops
from schema.context import Info
from schema.errors import UserError, user_errors
from schema.listings import Listing, Lockbox, require_agent


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
        agent = require_agent(info)
        address = listing_ops.AddressFields(
            line1=input.address.line1,
            line2=input.address.line2,
            city=input.address.city,
            state=input.address.state,
            postal_code=input.address.postal_code,
        )
        try:
            row = await listing_ops.add_listing(
                agent, address, input.mls_number, input.status or ListingStatus.ACTIVE
            )
        except DomainError as error:
            return AddListingPayload(user_errors=user_errors(error))
        return AddListingPayload(listing=Listing.from_model(row))

    @strawberry.mutation
    async def assign_lockbox(self, info: Info, input: AssignLockboxInput) -> AssignLockboxPayload:
        agent = require_agent(info)
        try:
            row = await lockbox_ops.assign_lockbox(agent, input.serial_number)
        except DomainError as error:
            return AssignLockboxPayload(user_errors=user_errors(error))
        return AssignLockboxPayload(lockbox=Lockbox.from_model(row))

    @strawberry.mutation
    async def unassign_lockbox(
        self, info: Info, input: UnassignLockboxInput
    ) -> UnassignLockboxPayload:
        agent = require_agent(info)
        try:
            pk = parse_pk(input.lockbox_id, ("Lockbox",), "lockboxId")
            row = await lockbox_ops.unassign_lockbox(agent, pk)
        except DomainError as error:
            return UnassignLockboxPayload(user_errors=user_errors(error))
        return UnassignLockboxPayload(lockbox=Lockbox.from_model(row))

    @strawberry.mutation
    async def assign_lockbox_to_listing(
        self, info: Info, input: AssignLockboxToListingInput
    ) -> AssignLockboxToListingPayload:
        agent = require_agent(info)
        try:
            listing_pk = parse_pk(input.listing_id, ("Listing",), "listingId")
            lockbox_pk = parse_pk(input.lockbox_id, ("Lockbox",), "lockboxId")
            row = await lockbox_ops.assign_lockbox_to_listing(
                agent, listing_pk, lockbox_pk, input.on_listing_since, input.region_code
            )
        except DomainError as error:
            return AssignLockboxToListingPayload(user_errors=user_errors(error))
        listing = await lockbox_ops.listing_of(row)
        return AssignLockboxToListingPayload(listing=Listing.from_model(listing))
