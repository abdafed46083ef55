"""Contractor signup: email and phone, an SMS code, then the account."""

from __future__ import annotations

import strawberry

from models.enums import ContractorRole
from schema.accounts import Contractor
from schema.context import Info
from schema.errors import UserError, not_available


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
        raise not_available("beginContractorSignup")

    @strawberry.mutation
    async def verify_signup_code(
        self, info: Info, input: VerifySignupCodeInput
    ) -> VerifySignupCodePayload:
        raise not_available("verifySignupCode")

    @strawberry.mutation
    async def complete_contractor_signup(
        self, info: Info, input: CompleteContractorSignupInput
    ) -> CompleteContractorSignupPayload:
        raise not_available("completeContractorSignup")
