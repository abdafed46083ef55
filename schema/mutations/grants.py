"""Granting and revoking access, and One Day Codes."""

from __future__ import annotations

import datetime

import strawberry

from schema.context import Info
from schema.errors import UserError, not_available
from schema.grants import Grant, OneDayCode, Weekday


@strawberry.input
class RecurrenceInput:
    weekdays: list[Weekday]
    daily_start: str
    daily_end: str


@strawberry.input
class GrantAccessInput:
    listing_id: strawberry.ID
    grantee_email: str
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    pin: str = strawberry.field(
        description="The granting agent's PIN: step-up authentication for every grant."
    )
    recurrence: RecurrenceInput | None = strawberry.field(
        default=None,
        description="Restricts the window to weekly hours; omitted means the whole window.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="A retry with the same key returns the first result instead of a second grant.",
    )


@strawberry.type
class GrantAccessPayload:
    grant: Grant | None = None
    invitation_sent: bool = strawberry.field(
        default=False,
        description="True when the email had no account and an invitation email was queued.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RevokeAccessInput:
    grant_id: strawberry.ID


@strawberry.type
class RevokeAccessPayload:
    grant: Grant | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class GenerateOneDayCodeInput:
    lockbox_id: strawberry.ID
    date: datetime.date
    pin: str
    issued_to: str | None = strawberry.field(
        default=None,
        description="Who the code is given to (name, phone), kept in the access history.",
    )


@strawberry.type
class GenerateOneDayCodePayload:
    one_day_code: OneDayCode | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class GrantMutation:
    @strawberry.mutation
    async def grant_access(self, info: Info, input: GrantAccessInput) -> GrantAccessPayload:
        info.context.require_account()
        raise not_available("grantAccess")

    @strawberry.mutation
    async def revoke_access(self, info: Info, input: RevokeAccessInput) -> RevokeAccessPayload:
        info.context.require_account()
        raise not_available("revokeAccess")

    @strawberry.mutation
    async def generate_one_day_code(
        self, info: Info, input: GenerateOneDayCodeInput
    ) -> GenerateOneDayCodePayload:
        info.context.require_account()
        raise not_available("generateOneDayCode")
