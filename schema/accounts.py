"""Account types: the Account interface, Agent, Contractor, Device, LinkedAccount."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

import schema.enums  # noqa: F401  (registers the enums used below)
from core.ids import to_global_id
from models.enums import AccountKind, AccountStatus, ContractorRole, MessageKind
from resolvers import accounts as account_ops
from resolvers import messages as message_ops
from resolvers import visibility
from schema.base import Node, build_connection, check_first, decode_cursor
from schema.context import Info
from schema.messages import Message, MessageConnection, require_own

if TYPE_CHECKING:
    from models.accounts import Account as AccountModel
    from schema.billing import Billing
    from schema.grants import GrantConnection, GrantStatus
    from schema.listings import ListingConnection, LockboxConnection


@strawberry.type
class Device(Node):
    name: str
    registered_at: datetime
    last_seen_at: datetime
    current: bool


@strawberry.type
class LinkedAccount:
    key_id: str
    association: str
    status: AccountStatus


class OwnAccount(BasePermission):
    """Details only the account itself reads; anyone else who reaches it through a grant,
    listing, lockbox or access event is told FORBIDDEN (resolvers/visibility.py)."""

    message = "Not allowed."
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012  (as BasePermission declares it)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return visibility.reads_own(source.pk, source.seen_by)


def own(nullable: bool = False) -> list[FieldExtension]:
    """The field is its account's own: a nullable one reads as null for anyone else."""
    # No schema directive: the exported schema stays the contract's; the README has the table.
    return [
        PermissionExtension(
            permissions=[OwnAccount()], use_directives=False, fail_silently=nullable
        )
    ]


@strawberry.interface(description="A signed-in person: a member agent or a contractor.")
class Account(Node):
    pk: strawberry.Private[int]
    # Who reads this object: its own pk when shown to itself (me, node, its own mutations);
    # the reader's when reached from another object; None for an anonymous reader.
    seen_by: strawberry.Private[int | None]
    first_name: str
    last_name: str
    email: str = strawberry.field(extensions=own())
    phone: str | None = strawberry.field(
        description="E.164, e.g. +15135550100", extensions=own(nullable=True)
    )
    status: AccountStatus = strawberry.field(extensions=own())
    email_verified: bool = strawberry.field(
        extensions=own(),
        description="Whether the owner proved the email address (an invitation or the "
        "confirmation link mailed to it). Access granted to the address reaches a contractor "
        "only once it is.",
    )

    @strawberry.field
    async def messages(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        unread_only: bool | None = False,
        kind: Annotated[
            list[MessageKind] | None,
            strawberry.argument(description="Only messages of these kinds; null or empty: all."),
        ] = None,
    ) -> MessageConnection:
        require_own(info, self.pk)
        limit = check_first(first)
        unread = bool(unread_only)
        page = await message_ops.page(self.pk, limit + 1, decode_cursor(after), unread, kind)
        return build_connection(
            MessageConnection,
            [Message.from_model(m) for m in page],
            [m.id for m in page],
            limit,
            after,
            lambda: message_ops.count(self.pk, unread, kind),
        )

    @strawberry.field
    async def unread_message_count(self, info: Info) -> int:
        require_own(info, self.pk)
        return await message_ops.count(self.pk, unread_only=True)

    @strawberry.field
    async def devices(self, info: Info) -> list[Device]:
        require_own(info, self.pk)
        current = info.context.auth.session.device_id if info.context.auth else None  # type: ignore[attr-defined]
        rows = await account_ops.devices_of(self.pk)
        return [
            Device(
                id=strawberry.ID(to_global_id("Device", d.id)),
                name=d.name,
                registered_at=d.registered_at,
                last_seen_at=d.last_seen_at,
                current=d.id == current,
            )
            for d in rows
        ]


@strawberry.type(description="A member agent (REALTOR) of an association or MLS.")
class Agent(Account):
    key_id: str = strawberry.field(
        description="The 9-digit Key ID the agent signs in and calls support with.",
        extensions=own(),
    )
    association: str

    @strawberry.field(
        description="The person's other agent accounts; switching means signing in to that one.",
        extensions=own(),
    )
    async def linked_accounts(self, info: Info) -> list[LinkedAccount]:
        rows = await account_ops.linked_agent_accounts(self.pk, self.email)
        return [
            LinkedAccount(key_id=r.key_id or "", association=r.association, status=r.status)
            for r in rows
        ]

    @strawberry.field
    async def listings(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        search: str | None = None,
    ) -> Annotated[ListingConnection, strawberry.lazy("schema.listings")]:
        from schema.listings import agent_listings

        return await agent_listings(info, self.pk, first, after, search)

    @strawberry.field(description="My Lockboxes: the lockboxes assigned to this agent.")
    async def lockboxes(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Annotated[LockboxConnection, strawberry.lazy("schema.listings")]:
        from schema.listings import agent_lockboxes

        return await agent_lockboxes(info, self.pk, first, after)

    @strawberry.field(
        description="The key subscription: balance, due date, autopay, invoices and payments.",
        extensions=own(),
    )
    async def billing(self, info: Info) -> Annotated[Billing, strawberry.lazy("schema.billing")]:
        from schema.billing import agent_billing

        return await agent_billing(info, self.pk)


@strawberry.type(description="A non-member agent, contractor or service provider.")
class Contractor(Account):
    role: ContractorRole
    company: str | None

    @strawberry.field(description="Accesses granted to this contractor, newest first.")
    async def grants(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        status: list[Annotated[GrantStatus, strawberry.lazy("schema.grants")]] | None = None,
    ) -> Annotated[GrantConnection, strawberry.lazy("schema.grants")]:
        from schema.grants import contractor_grants

        return await contractor_grants(info, self.pk, first, after, status)


def account_from_model(row: AccountModel) -> Agent | Contractor:
    """The account as it sees itself: `me`, `node` and its own mutations' payloads."""
    return _account(row, seen_by=row.id)


def account_seen_by(row: AccountModel, info: Info) -> Agent | Contractor:
    """Another object's account (a grant's agent or grantee, a listing's agent, a lockbox's
    holder, an access event's actor) as the signed-in reader sees it."""
    reader = info.context.account
    return _account(row, seen_by=reader.id if reader else None)


def _account(row: AccountModel, seen_by: int | None) -> Agent | Contractor:
    common = {
        "pk": row.id,
        "seen_by": seen_by,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "email": row.email or "",
        "phone": row.phone,
        "status": row.status,
        "email_verified": row.email_verified,
    }
    if row.kind == AccountKind.AGENT:
        return Agent(
            id=strawberry.ID(to_global_id("Agent", row.id)),
            key_id=row.key_id or "",
            association=row.association,
            **common,  # type: ignore[arg-type]
        )
    return Contractor(
        id=strawberry.ID(to_global_id("Contractor", row.id)),
        role=row.role or ContractorRole.OTHER,
        company=row.company,
        **common,  # type: ignore[arg-type]
    )
