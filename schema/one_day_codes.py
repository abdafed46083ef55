"""One Day Codes issued, as part of a listing's access history (never the code itself)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.dataloader import DataLoader

from core.ids import to_global_id
from resolvers import codes as code_ops
from resolvers import rows
from schema.base import Connection, Node, build_connection, check_first, decode_cursor
from schema.context import Info
from schema.errors import forbidden

if TYPE_CHECKING:
    from models.grants import OneDayCodeIssue as IssueModel
    from schema.accounts import Agent
    from schema.listings import Listing, Lockbox


@strawberry.type(
    description="A One Day Code handed out: by whom, for whom and for which day. The code "
    "itself is derived from the lockbox and the day, and is never stored or shown again."
)
class OneDayCodeIssue(Node):
    # The row's keys, not the row: a Private field's type must resolve at run time, and
    # schema/ names the table classes for type checking only.
    agent_pk: strawberry.Private[int]
    lockbox_pk: strawberry.Private[int]
    listing_pk: strawberry.Private[int | None]
    issued_at: datetime
    valid_on: date = strawberry.field(
        description="The day, in the lockbox region's time zone, on which the code opens "
        "the lockbox."
    )
    issued_to: str | None = strawberry.field(
        description="Whom the agent gave the code to, as they wrote it."
    )

    @strawberry.field
    async def issued_by(self, info: Info) -> Annotated[Agent, strawberry.lazy("schema.accounts")]:
        from schema.accounts import Agent, account_seen_by

        # Non-null, like a grant's grantedBy: an agent deleted since still answers, nameless.
        row = await info.context.loaders.batched(rows.accounts).load(self.agent_pk)
        agent = account_seen_by(row, info)  # type: ignore[arg-type]
        assert isinstance(agent, Agent)  # noqa: S101  (only agents issue codes)
        return agent

    @strawberry.field
    async def lockbox(self, info: Info) -> Annotated[Lockbox, strawberry.lazy("schema.listings")]:
        from schema.listings import Lockbox

        row = await info.context.loaders.batched(rows.lockboxes).load(self.lockbox_pk)
        return Lockbox.from_model(row, via_listing_pk=self.listing_pk)  # type: ignore[arg-type]

    @strawberry.field(description="Null for a code issued while the lockbox was on no listing.")
    async def listing(
        self, info: Info
    ) -> Annotated[Listing, strawberry.lazy("schema.listings")] | None:
        from schema.listings import Listing

        listing_id = self.listing_pk
        row = (
            await info.context.loaders.batched(rows.listings).load(listing_id)
            if listing_id
            else None
        )
        return Listing.from_model(row) if row else None

    @classmethod
    def from_model(cls, row: IssueModel) -> OneDayCodeIssue:
        return cls(
            id=strawberry.ID(to_global_id("OneDayCodeIssue", row.id)),
            agent_pk=row.agent_id,  # type: ignore[attr-defined]
            lockbox_pk=row.lockbox_id,  # type: ignore[attr-defined]
            listing_pk=row.listing_id,
            issued_at=row.created_at,
            valid_on=row.valid_on,
            issued_to=row.issued_to,
        )


@strawberry.type
class OneDayCodeIssueConnection(Connection[OneDayCodeIssue]):
    pass


def _codes_by_listing(
    info: Info, limit: int, before_id: int | None
) -> DataLoader[int, list[IssueModel]]:
    """Every requested listing's page in one statement, split per listing here."""

    async def load(listing_ids: list[int]) -> Sequence[list[IssueModel]]:
        pages: dict[int, list[IssueModel]] = defaultdict(list)
        for row in await code_ops.codes_of_listings(listing_ids, limit, before_id):
            pages[row.listing_id].append(row)  # type: ignore[index]
        return [pages[i] for i in listing_ids]

    key = ("codes_by_listing", limit, before_id)
    return info.context.loaders.named(key, lambda: DataLoader(load_fn=load))


def _code_count_by_listing(info: Info) -> DataLoader[int, int]:
    async def load(listing_ids: list[int]) -> Sequence[int]:
        counts = await code_ops.count_codes_of_listings(listing_ids)
        return [counts.get(i, 0) for i in listing_ids]

    return info.context.loaders.named("code_count_by_listing", lambda: DataLoader(load_fn=load))


async def listing_one_day_codes(
    info: Info, listing_pk: int, agent_pk: int, first: int | None, after: str | None
) -> OneDayCodeIssueConnection:
    """The listing's agent alone reads it: whom a code went to is theirs to know."""
    reader = info.context.account
    if reader is None or reader.id != agent_pk:
        raise forbidden()
    limit = check_first(first)
    rows = await _codes_by_listing(info, limit + 1, decode_cursor(after)).load(listing_pk)
    counts = _code_count_by_listing(info)
    return build_connection(
        OneDayCodeIssueConnection,
        [OneDayCodeIssue.from_model(r) for r in rows],
        [r.id for r in rows],
        limit,
        after,
        lambda: counts.load(listing_pk),
    )
