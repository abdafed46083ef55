"""Credential types: what a phone carries to open a lockbox over BLE."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from schema.grants import Grant


@strawberry.type(
    description="A credential a phone hands to a lockbox over BLE: a compact JWS, see DESIGN.md."
)
class LockboxCredential:
    token: str
    lockbox_serial: str
    grant: Annotated[Grant, strawberry.lazy("schema.grants")] | None
    not_before: datetime
    expires_at: datetime


@strawberry.type(
    description=(
        "A lockbox's list of revoked grants, a compact JWS signed like credentials: the app"
        " hands it to the lockbox before opening, so revocations reach lockboxes offline."
    )
)
class LockboxRevocationList:
    lockbox_serial: str
    token: str
    issued_at: datetime


@strawberry.type
class CredentialBundle:
    issued_at: datetime
    expires_at: datetime = strawberry.field(
        description="The app shows a green check while now < expiresAt."
    )
    credentials: list[LockboxCredential]
    revocations: list[LockboxRevocationList] = strawberry.field(
        description=(
            "One per lockbox a credential here is for, or a revoked grant of the caller's was"
            " (agents: every BLE lockbox they hold)."
        )
    )
