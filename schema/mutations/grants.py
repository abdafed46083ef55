"""Granting and revoking access, and One Day Codes."""

from __future__ import annotations

import datetime

import strawberry

from core.errors import DomainError
from core.ids import parse_pk
from resolvers import codes as code_ops
from resolvers import grants as grant_ops
from schema.context import Info
from schema.errors import UserError, user_errors
from schema.grants import WEEKDAYS, Grant, OneDayCode, Weekday
from schema.listings import require_agent
from schema.mutations.step_up import StepUpInput, confirmation


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
    pin: str | None = strawberry.field(
        default=None,
        description="The granting agent's PIN: step-up authentication for every grant "
        "(or stepUp instead).",
    )
    step_up: StepUpInput | None = strawberry.field(
        default=None,
        description="In place of the PIN: a beginStepUp challenge signed by this device.",
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
    pin: str | None = strawberry.field(
        default=None, description="The agent's PIN (or stepUp instead)."
    )
    step_up: StepUpInput | None = strawberry.field(
        default=None,
        description="In place of the PIN: a beginStepUp challenge signed by this device.",
    )
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
        agent = require_agent(info)
        recurrence = None
        if input.recurrence is not None:
            recurrence = grant_ops.RecurrenceSpec(
                weekdays=[WEEKDAYS.index(day) + 1 for day in input.recurrence.weekdays],
                daily_start=input.recurrence.daily_start,
                daily_end=input.recurrence.daily_end,
            )
        try:
            request = grant_ops.GrantRequest(
                listing_pk=parse_pk(input.listing_id, ("Listing",), "listingId"),
                grantee_email=input.grantee_email,
                starts_at=input.starts_at,
                ends_at=input.ends_at,
                confirmation=confirmation(info, input.pin, input.step_up),
                recurrence=recurrence,
                idempotency_key=input.idempotency_key,
            )
            await info.context.rate_limit("pin", account=str(agent.id))
            granted = await grant_ops.grant_access(info.context.settings, agent, request)
        except DomainError as error:
            return GrantAccessPayload(user_errors=user_errors(error))
        return GrantAccessPayload(
            grant=Grant.from_model(granted.grant), invitation_sent=granted.invitation_sent
        )

    @strawberry.mutation
    async def revoke_access(self, info: Info, input: RevokeAccessInput) -> RevokeAccessPayload:
        agent = require_agent(info)
        try:
            pk = parse_pk(input.grant_id, ("Grant",), "grantId")
            row = await grant_ops.revoke_access(agent, pk)
        except DomainError as error:
            return RevokeAccessPayload(user_errors=user_errors(error))
        return RevokeAccessPayload(grant=Grant.from_model(row))

    @strawberry.mutation
    async def generate_one_day_code(
        self, info: Info, input: GenerateOneDayCodeInput
    ) -> GenerateOneDayCodePayload:
        agent = require_agent(info)
        try:
            pk = parse_pk(input.lockbox_id, ("Lockbox",), "lockboxId")
            await info.context.rate_limit("pin", account=str(agent.id))
            issued = await code_ops.generate_one_day_code(
                info.context.settings,
                agent,
                pk,
                input.date,
                confirmation(info, input.pin, input.step_up),
                input.issued_to,
            )
        except DomainError as error:
            return GenerateOneDayCodePayload(user_errors=user_errors(error))
        code = OneDayCode(
            code=issued.code,
            lockbox_row=issued.lockbox,
            valid_on=issued.valid_on,
            valid_from=issued.valid_from,
            valid_until=issued.valid_until,
            issued_to=issued.issued_to,
        )
        return GenerateOneDayCodePayload(one_day_code=code)
