"""The Message Center's mutations, and push tokens."""

from __future__ import annotations

import strawberry

from models.enums import PushPlatform
from schema.context import Info
from schema.errors import UserError, not_available


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
        info.context.require_account()
        raise not_available("registerPushToken")

    @strawberry.mutation
    async def mark_messages_read(self, info: Info, input: MessageIdsInput) -> MessagesPayload:
        info.context.require_account()
        raise not_available("markMessagesRead")

    @strawberry.mutation
    async def delete_messages(self, info: Info, input: MessageIdsInput) -> MessagesPayload:
        info.context.require_account()
        raise not_available("deleteMessages")
