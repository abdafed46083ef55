"""Credentials for opening lockboxes, and the records lockboxes hand back."""

from __future__ import annotations

import strawberry

from core.errors import DomainError
from resolvers.credentials import sync_credentials
from resolvers.lockbox_events import report_lockbox_events
from resolvers.receipts import upload_receipt
from schema.context import Info
from schema.credentials import CredentialBundle, LockboxCredential, LockboxRevocationList
from schema.errors import UserError, user_errors
from schema.grants import Grant


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
    receipt: str | None = strawberry.field(
        default=None,
        description=(
            "The server's signed receipt for the records it now holds (accepted or duplicates),"
            " a compact JWS like credentials: the app hands it to the lockbox, which then drops"
            " exactly those records. Null when nothing was stored."
        ),
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CredentialMutation:
    @strawberry.mutation
    async def sync_credentials(
        self, info: Info, input: SyncCredentialsInput
    ) -> SyncCredentialsPayload:
        account = info.context.require_account()
        try:
            bundle = await sync_credentials(info.context.settings, account, input.device_id)
        except DomainError as error:
            return SyncCredentialsPayload(user_errors=user_errors(error))
        credentials = [
            LockboxCredential(
                token=issued.token,
                lockbox_serial=issued.lockbox_serial,
                grant=Grant.from_model(issued.grant) if issued.grant else None,
                not_before=issued.not_before,
                expires_at=issued.expires_at,
            )
            for issued in bundle.credentials
        ]
        revocations = [
            LockboxRevocationList(
                lockbox_serial=issued.lockbox_serial, token=issued.token, issued_at=issued.issued_at
            )
            for issued in bundle.revocations
        ]
        return SyncCredentialsPayload(
            bundle=CredentialBundle(
                issued_at=bundle.issued_at,
                expires_at=bundle.expires_at,
                credentials=credentials,
                revocations=revocations,
            )
        )

    @strawberry.mutation
    async def report_lockbox_events(
        self, info: Info, input: ReportLockboxEventsInput
    ) -> ReportLockboxEventsPayload:
        # Any signed-in phone may relay a lockbox's log: the records carry the lockbox's HMAC.
        info.context.require_account()
        try:
            report = await report_lockbox_events(input.lockbox_serial, input.records)
        except DomainError as error:
            return ReportLockboxEventsPayload(user_errors=user_errors(error))
        receipt = upload_receipt(info.context.settings, report.lockbox_serial, report.stored)
        return ReportLockboxEventsPayload(
            accepted=report.accepted, duplicates=report.duplicates, receipt=receipt
        )
