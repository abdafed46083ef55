"""Contractor signup: email and phone, an SMS code, then the account."""

from __future__ import annotations

from typing import cast

import strawberry

from core.errors import DomainError
from core.ids import from_global_id, to_global_id
from models.enums import ContractorRole
from resolvers import signup
from resolvers.verifications import GLOBAL_ID_TYPE
from schema.accounts import Contractor, account_from_model
from schema.context import Info
from schema.errors import UserError, user_errors


def verification_pk(global_id: str) -> str:
    """The uuid inside a Verification global id, or NOT_FOUND."""
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] != GLOBAL_ID_TYPE:
        raise DomainError("NOT_FOUND", "No such verification.", ["input", "verificationId"])
    return parsed[1]


def verification_global_id(pk: object) -> strawberry.ID:
    return strawberry.ID(to_global_id(GLOBAL_ID_TYPE, str(pk)))


@strawberry.input
class BeginContractorSignupInput:
    email: str
    phone: str
    invitation_token: str | None = strawberry.field(
        default=None,
        description="The token from an invitation email, when the person came from one.",
    )


@strawberry.type
class BeginContractorSignupPayload:
    verification_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class VerifySignupCodeInput:
    verification_id: strawberry.ID
    code: str


@strawberry.type
class VerifySignupCodePayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SecurityAnswerInput:
    question: str
    answer: str


@strawberry.input
class CompleteContractorSignupInput:
    verification_id: strawberry.ID
    first_name: str
    last_name: str
    role: ContractorRole
    password: str = strawberry.field(
        description="6-20 characters with at least one upper case letter, one lower case "
        "letter and one digit."
    )
    pin: str = strawberry.field(description="4 digits.")
    security_answers: list[SecurityAnswerInput]
    company: str | None = None


@strawberry.type
class CompleteContractorSignupPayload:
    contractor: Contractor | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SignupMutation:
    @strawberry.mutation
    async def begin_contractor_signup(
        self, info: Info, input: BeginContractorSignupInput
    ) -> BeginContractorSignupPayload:
        try:
            await info.context.rate_limit("signupCode", phone=input.phone, email=input.email)
            verification = await signup.begin_signup(
                input.email, input.phone, input.invitation_token
            )
        except DomainError as error:
            return BeginContractorSignupPayload(user_errors=user_errors(error))
        return BeginContractorSignupPayload(verification_id=verification_global_id(verification.id))

    @strawberry.mutation
    async def verify_signup_code(
        self, info: Info, input: VerifySignupCodeInput
    ) -> VerifySignupCodePayload:
        try:
            await info.context.rate_limit("signupCode")
            await signup.verify_signup_code(verification_pk(input.verification_id), input.code)
        except DomainError as error:
            return VerifySignupCodePayload(ok=False, user_errors=user_errors(error))
        return VerifySignupCodePayload(ok=True)

    @strawberry.mutation
    async def complete_contractor_signup(
        self, info: Info, input: CompleteContractorSignupInput
    ) -> CompleteContractorSignupPayload:
        answers = [signup.SecurityAnswerIn(a.question, a.answer) for a in input.security_answers]
        try:
            account = await signup.complete_signup(
                info.context.settings,
                verification_pk(input.verification_id),
                first_name=input.first_name,
                last_name=input.last_name,
                role=input.role,
                company=input.company,
                password=input.password,
                pin=input.pin,
                security_answers=answers,
            )
        except DomainError as error:
            return CompleteContractorSignupPayload(user_errors=user_errors(error))
        # complete_signup creates a contractor account, so this is a Contractor.
        contractor = cast(Contractor, account_from_model(account))
        return CompleteContractorSignupPayload(contractor=contractor)
