"""The Message Center's mutations, and push tokens."""

from __future__ import annotations

import strawberry

from core.errors import DomainError, invalid_input
from core.ids import global_pk
from models.enums import PushPlatform
from resolvers import messages as message_ops
from resolvers import push as push_ops
from schema.context import Info
from schema.errors import UserError, user_errors


@strawberry.input(description="Where to push this device's notifications while the app is closed.")
class RegisterPushTokenInput:
    device_id: str = strawberry.field(description="The app's own device id, as given to signIn.")
    platform: PushPlatform
    token: str


@strawberry.type
class RegisterPushTokenPayload:
    ok: bool
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class MessageIdsInput:
    ids: list[strawberry.ID]


@strawberry.type
class MessagesPayload:
    count: int
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class MessageMutation:
    @strawberry.mutation
    async def register_push_token(
        self, info: Info, input: RegisterPushTokenInput
    ) -> RegisterPushTokenPayload:
        account = info.context.require_account()
        try:
            await push_ops.register_push_token(
                account, input.device_id, input.platform, input.token
            )
        except DomainError as error:
            return RegisterPushTokenPayload(ok=False, user_errors=user_errors(error))
        return RegisterPushTokenPayload(ok=True)

    @strawberry.mutation
    async def mark_messages_read(self, info: Info, input: MessageIdsInput) -> MessagesPayload:
        account = info.context.require_account()
        try:
            ids = _message_pks(input.ids)
        except DomainError as error:
            return MessagesPayload(count=0, user_errors=user_errors(error))
        return MessagesPayload(count=await message_ops.mark_read(account.id, ids))

    @strawberry.mutation
    async def delete_messages(self, info: Info, input: MessageIdsInput) -> MessagesPayload:
        account = info.context.require_account()
        try:
            ids = _message_pks(input.ids)
        except DomainError as error:
            return MessagesPayload(count=0, user_errors=user_errors(error))
        return MessagesPayload(count=await message_ops.delete(account.id, ids))


MAX_IDS = 100


def _message_pks(ids: list[strawberry.ID]) -> list[int]:
    """Ids that are not Message ids name nothing of the caller's: ignored like others' ids."""
    if len(ids) > MAX_IDS:
        raise invalid_input(f"At most {MAX_IDS} messages at a time.", "ids")
    pks = []
    for value in ids:
        pk = global_pk(value, ("Message",))
        if pk is not None:
            pks.append(pk)
    return pks
