"""Message Center types."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from core.ids import to_global_id
from models.enums import MessageKind
from resolvers import rows, visibility
from schema.base import Connection, Node
from schema.context import Info
from schema.enums import MessageKind as MessageKindEnum  # noqa: F401  (registers the enum)
from schema.errors import forbidden

if TYPE_CHECKING:
    from models.messages import Message as MessageModel
    from schema.grants import Grant


@strawberry.type
class Message(Node):
    kind: MessageKind
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None
    grant_pk: strawberry.Private[int | None]

    @strawberry.field
    async def grant(self, info: Info) -> Annotated[Grant, strawberry.lazy("schema.grants")] | None:
        from schema.grants import Grant

        if self.grant_pk is None:
            return None
        loaders = info.context.loaders
        row = await loaders.batched(rows.grants).load(self.grant_pk)
        # A grant that is not (or no longer) the reader's to see reads as null, here too.
        row = await visibility.visible_grant(
            row, info.context.account, loaders.batched(rows.listings).load
        )
        return Grant.from_model(row) if row else None

    @classmethod
    def from_model(cls, row: MessageModel) -> Message:
        return cls(
            id=strawberry.ID(to_global_id("Message", row.id)),
            kind=row.kind,
            title=row.title,
            body=row.body,
            created_at=row.created_at,
            read_at=row.read_at,
            grant_pk=row.grant_id,  # type: ignore[attr-defined]
        )


@strawberry.type
class MessageConnection(Connection[Message]):
    pass


def require_own(info: Info, account_pk: int) -> None:
    """An account's Message Center (and devices) are its own: reached through a grant's
    grantee or a listing's agent, they answer FORBIDDEN instead of leaking."""
    account = info.context.account
    if not visibility.reads_own(account_pk, account.id if account else None):
        raise forbidden()
