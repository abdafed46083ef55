"""Credentials for opening lockboxes, and the records lockboxes hand back."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.credentials import CredentialBundle
from schema.errors import UserError, not_available


@strawberry.input(description="deviceId is the app's own id, as given to signIn.")
class SyncCredentialsInput:
    device_id: str


@strawberry.type
class SyncCredentialsPayload:
    bundle: CredentialBundle | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ReportLockboxEventsInput:
    lockbox_serial: str
    records: list[str] = strawberry.field(
        description="Records as the lockbox signed them, see DESIGN.md."
    )


@strawberry.type
class ReportLockboxEventsPayload:
    accepted: int = 0
    duplicates: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CredentialMutation:
    @strawberry.mutation
    async def sync_credentials(
        self, info: Info, input: SyncCredentialsInput
    ) -> SyncCredentialsPayload:
        info.context.require_account()
        raise not_available("syncCredentials")

    @strawberry.mutation
    async def report_lockbox_events(
        self, info: Info, input: ReportLockboxEventsInput
    ) -> ReportLockboxEventsPayload:
        info.context.require_account()
        raise not_available("reportLockboxEvents")
