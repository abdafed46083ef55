"""Sign-in, sign-out and password reset."""

from __future__ import annotations

import strawberry

from core.errors import DomainError
from resolvers import auth
from schema.accounts import Account, account_from_model
from schema.context import Info
from schema.errors import UserError, user_errors


@strawberry.input
class SignInInput:
    login: str = strawberry.field(description="Email address or 9-digit Key ID.")
    password: str
    device_id: str = strawberry.field(
        description="A stable id the app generates once per installation."
    )
    device_name: str
    device_public_key: str | None = strawberry.field(
        default=None,
        description="The app's Ed25519 public key, raw 32 bytes, base64url without padding.",
    )


@strawberry.type
class SignInPayload:
    token: str | None = None
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SignOutPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RequestPasswordResetInput:
    login: str = strawberry.field(
        description="Email address or 9-digit Key ID. The answer is the same whether or not "
        "it exists."
    )


@strawberry.type
class RequestPasswordResetPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ResetPasswordInput:
    token: str
    new_password: str


@strawberry.type
class ResetPasswordPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AuthMutation:
    @strawberry.mutation
    async def sign_in(self, info: Info, input: SignInInput) -> SignInPayload:
        try:
            # The login as typed, never the account: a refusal must not tell whether it exists.
            await info.context.rate_limit("signIn", login=input.login)
            signed_in = await auth.sign_in(
                info.context.settings,
                input.login,
                input.password,
                input.device_id,
                input.device_name,
                input.device_public_key,
                info.context.client_address,
            )
        except DomainError as error:
            return SignInPayload(user_errors=user_errors(error))
        return SignInPayload(token=signed_in.token, account=account_from_model(signed_in.account))

    @strawberry.mutation
    async def sign_out(self, info: Info) -> SignOutPayload:
        await auth.sign_out(info.context.require_auth())
        return SignOutPayload(ok=True)

    @strawberry.mutation
    async def request_password_reset(
        self, info: Info, input: RequestPasswordResetInput
    ) -> RequestPasswordResetPayload:
        try:
            await info.context.rate_limit("requestPasswordReset", login=input.login)
        except DomainError as error:
            return RequestPasswordResetPayload(ok=False, user_errors=user_errors(error))
        await auth.request_password_reset(info.context.settings, input.login)
        return RequestPasswordResetPayload(ok=True)

    @strawberry.mutation
    async def reset_password(self, info: Info, input: ResetPasswordInput) -> ResetPasswordPayload:
        try:
            await auth.reset_password(input.token, input.new_password)
        except DomainError as error:
            return ResetPasswordPayload(ok=False, user_errors=user_errors(error))
        return ResetPasswordPayload(ok=True)
