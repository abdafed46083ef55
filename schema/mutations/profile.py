"""My account: profile, phone, email, password, PIN, devices, deletion."""

from __future__ import annotations

import strawberry

from core.errors import DomainError
from core.ids import parse_pk
from models.enums import ContractorRole
from resolvers import auth, deletion, email_proof, profile
from schema.accounts import Account, account_from_model
from schema.context import Info
from schema.errors import UserError, user_errors
from schema.mutations.signup import verification_global_id, verification_pk


@strawberry.input
class UpdateMyInfoInput:
    first_name: str | None = None
    last_name: str | None = None
    role: ContractorRole | None = None
    company: str | None = None


@strawberry.type
class UpdateMyInfoPayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class BeginPhoneChangeInput:
    new_phone: str


@strawberry.type
class BeginPhoneChangePayload:
    verification_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ConfirmPhoneChangeInput:
    verification_id: strawberry.ID
    code: str


@strawberry.type
class ConfirmPhoneChangePayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateEmailInput:
    new_email: str
    password: str


@strawberry.type
class UpdateEmailPayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.type
class ChangePasswordPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class SetPinInput:
    password: str
    new_pin: str = strawberry.field(description="4 digits.")


@strawberry.type
class SetPinPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class DeleteMyAccountInput:
    password: str


@strawberry.type
class DeleteMyAccountPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ConfirmEmailInput:
    token: str = strawberry.field(
        description="The token from the confirmation link mailed to the address, or, signed "
        "in as a contractor, from an invitation mailed to the account's address."
    )


@strawberry.type
class ConfirmEmailPayload:
    account: Account | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RequestEmailConfirmationPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="deviceId is the Device's node id.")
class RemoveDeviceInput:
    device_id: strawberry.ID


@strawberry.type
class RemoveDevicePayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ProfileMutation:
    @strawberry.mutation
    async def update_my_info(self, info: Info, input: UpdateMyInfoInput) -> UpdateMyInfoPayload:
        account = info.context.require_account()
        try:
            updated = await profile.update_my_info(
                account, input.first_name, input.last_name, input.role, input.company
            )
        except DomainError as error:
            return UpdateMyInfoPayload(user_errors=user_errors(error))
        return UpdateMyInfoPayload(account=account_from_model(updated))

    @strawberry.mutation
    async def begin_phone_change(
        self, info: Info, input: BeginPhoneChangeInput
    ) -> BeginPhoneChangePayload:
        account = info.context.require_account()
        try:
            verification = await profile.begin_phone_change(account, input.new_phone)
        except DomainError as error:
            return BeginPhoneChangePayload(user_errors=user_errors(error))
        return BeginPhoneChangePayload(verification_id=verification_global_id(verification.id))

    @strawberry.mutation
    async def confirm_phone_change(
        self, info: Info, input: ConfirmPhoneChangeInput
    ) -> ConfirmPhoneChangePayload:
        account = info.context.require_account()
        try:
            updated = await profile.confirm_phone_change(
                account, verification_pk(input.verification_id), input.code
            )
        except DomainError as error:
            return ConfirmPhoneChangePayload(user_errors=user_errors(error))
        return ConfirmPhoneChangePayload(account=account_from_model(updated))

    @strawberry.mutation
    async def update_email(self, info: Info, input: UpdateEmailInput) -> UpdateEmailPayload:
        account = info.context.require_account()
        try:
            await info.context.rate_limit("password", account=str(account.id))
            updated = await profile.update_email(
                info.context.settings, account, input.new_email, input.password
            )
        except DomainError as error:
            return UpdateEmailPayload(user_errors=user_errors(error))
        return UpdateEmailPayload(account=account_from_model(updated))

    @strawberry.mutation(
        description="Proves the account's email address; access granted to it then arrives."
    )
    async def confirm_email(self, info: Info, input: ConfirmEmailInput) -> ConfirmEmailPayload:
        try:
            account = info.context.account
            if account is not None and not await email_proof.is_confirmation(input.token):
                confirmed = await email_proof.confirm_with_invitation(account, input.token)
            else:
                confirmed = await email_proof.confirm_email(input.token)
        except DomainError as error:
            return ConfirmEmailPayload(user_errors=user_errors(error))
        # The link may be followed signed out, or signed in as someone else: say only whose
        # address it was to the account itself.
        mine = account is not None and account.id == confirmed.id
        return ConfirmEmailPayload(account=account_from_model(confirmed) if mine else None)

    @strawberry.mutation(
        description="Mails a new confirmation link to the account's unproven email address."
    )
    async def request_email_confirmation(self, info: Info) -> RequestEmailConfirmationPayload:
        account = info.context.require_account()
        try:
            await email_proof.request_confirmation(info.context.settings, account)
        except DomainError as error:
            return RequestEmailConfirmationPayload(ok=False, user_errors=user_errors(error))
        return RequestEmailConfirmationPayload(ok=True)

    @strawberry.mutation
    async def change_password(
        self, info: Info, input: ChangePasswordInput
    ) -> ChangePasswordPayload:
        signed_in = info.context.require_auth()
        try:
            await info.context.rate_limit("password", account=str(signed_in.account.id))
            await auth.change_password(signed_in, input.current_password, input.new_password)
        except DomainError as error:
            return ChangePasswordPayload(ok=False, user_errors=user_errors(error))
        return ChangePasswordPayload(ok=True)

    @strawberry.mutation(
        description="Sets or changes the PIN that grants and One Day Codes ask for."
    )
    async def set_pin(self, info: Info, input: SetPinInput) -> SetPinPayload:
        account = info.context.require_account()
        try:
            await info.context.rate_limit("pin", account=str(account.id))
            await auth.set_pin(account, input.password, input.new_pin)
        except DomainError as error:
            return SetPinPayload(ok=False, user_errors=user_errors(error))
        return SetPinPayload(ok=True)

    @strawberry.mutation
    async def delete_my_account(
        self, info: Info, input: DeleteMyAccountInput
    ) -> DeleteMyAccountPayload:
        account = info.context.require_account()
        try:
            await info.context.rate_limit("password", account=str(account.id))
            await deletion.delete_my_account(account, input.password)
        except DomainError as error:
            return DeleteMyAccountPayload(ok=False, user_errors=user_errors(error))
        return DeleteMyAccountPayload(ok=True)

    @strawberry.mutation
    async def remove_device(self, info: Info, input: RemoveDeviceInput) -> RemoveDevicePayload:
        account = info.context.require_account()
        try:
            device_pk = parse_pk(input.device_id, ("Device",), "deviceId")
            await auth.remove_device(account, device_pk)
        except DomainError as error:
            return RemoveDevicePayload(ok=False, user_errors=user_errors(error))
        return RemoveDevicePayload(ok=True)
