"""Grant types: Grant, Recurrence, AccessEvent, OneDayCode, and their connections."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.dataloader import DataLoader

import schema.enums  # noqa: F401  (registers the enums used below)
from core.ids import pk_of, to_global_id
from models.enums import AccessMethod, AccessOutcome
from resolvers import access_log as log_ops
from resolvers import grants as grant_ops
from resolvers import rows, visibility
from resolvers.access_log import Position
from resolvers.grant_status import status_of
from schema.base import (
    Connection,
    Edge,
    Node,
    PageInfo,
    build_connection,
    check_first,
    decode_cursor,
)
from schema.context import Info
from schema.errors import bad_argument, forbidden

if TYPE_CHECKING:
    from models.access import AccessEvent as AccessEventModel
    from models.accounts import Account as AccountModel
    from models.grants import Grant as GrantModel
    from schema.accounts import Account, Agent, Contractor
    from schema.listings import Listing, Lockbox


@strawberry.enum
class GrantStatus(Enum):
    SCHEDULED = "SCHEDULED"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@strawberry.enum
class Weekday(Enum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


WEEKDAYS = list(Weekday)  # index + 1 is the ISO weekday


@strawberry.type(
    description="Weekly hours, in the listing region's time zone, e.g. a cleaner every "
    "Tuesday 09:00-12:00."
)
class Recurrence:
    weekdays: list[Weekday]
    daily_start: str = strawberry.field(description="HH:MM, 24-hour clock.")
    daily_end: str


@strawberry.type(
    description="Time-windowed access to one listing's lockbox, granted by an agent to an email."
)
class Grant(Node):
    pk: strawberry.Private[int]
    listing_pk: strawberry.Private[int]
    lockbox_pk: strawberry.Private[int]
    granted_by_pk: strawberry.Private[int]
    grantee_pk: strawberry.Private[int | None]
    grantee_email: str
    starts_at: datetime
    ends_at: datetime
    status: GrantStatus
    revocable: bool = strawberry.field(
        description="Only grants that have not started can be revoked."
    )
    created_at: datetime
    revoked_at: datetime | None
    recurrence: Recurrence | None = strawberry.field(
        description="Null for one continuous window; else the weekly hours inside it."
    )

    @strawberry.field
    async def listing(self, info: Info) -> Annotated[Listing, strawberry.lazy("schema.listings")]:
        from schema.listings import Listing

        row = await info.context.loaders.batched(rows.listings).load(self.listing_pk)
        return Listing.from_model(row)  # type: ignore[arg-type]

    @strawberry.field
    async def lockbox(self, info: Info) -> Annotated[Lockbox, strawberry.lazy("schema.listings")]:
        from schema.listings import Lockbox

        row = await info.context.loaders.batched(rows.lockboxes).load(self.lockbox_pk)
        return Lockbox.from_model(row, via_listing_pk=self.listing_pk)  # type: ignore[arg-type]

    @strawberry.field
    async def granted_by(self, info: Info) -> Annotated[Agent, strawberry.lazy("schema.accounts")]:
        from schema.accounts import account_seen_by

        # Non-null in the contract: an agent deleted since still answers, by now nameless.
        row = await info.context.loaders.batched(rows.accounts).load(self.granted_by_pk)
        return account_seen_by(row, info)  # type: ignore[arg-type,return-value]

    @strawberry.field(description="Null until the invited person has created an account.")
    async def grantee(
        self, info: Info
    ) -> Annotated[Contractor, strawberry.lazy("schema.accounts")] | None:
        from schema.accounts import Contractor, account_seen_by

        if self.grantee_pk is None:
            return None
        row = visibility.still_exists(
            await info.context.loaders.batched(rows.accounts).load(self.grantee_pk)
        )
        account = account_seen_by(row, info) if row else None
        return account if isinstance(account, Contractor) else None

    @strawberry.field
    async def access_events(self, info: Info) -> list[AccessEvent]:
        rows = await _events_by_grant(info, info.context.require_account()).load(self.pk)
        return [AccessEvent.from_model(r) for r in rows]

    @classmethod
    def from_model(cls, row: GrantModel) -> Grant:
        status = GrantStatus(status_of(row).value)
        recurrence = None
        if row.rec_weekdays:
            recurrence = Recurrence(
                weekdays=[WEEKDAYS[int(d) - 1] for d in row.rec_weekdays.split(",")],
                daily_start=row.rec_start or "",
                daily_end=row.rec_end or "",
            )
        return cls(
            id=strawberry.ID(to_global_id("Grant", row.id)),
            pk=row.id,
            listing_pk=row.listing_id,  # type: ignore[attr-defined]
            lockbox_pk=row.lockbox_id,  # type: ignore[attr-defined]
            granted_by_pk=row.granted_by_id,  # type: ignore[attr-defined]
            grantee_pk=row.grantee_id,  # type: ignore[attr-defined]
            grantee_email=row.grantee_email or "",
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            status=status,
            revocable=status == GrantStatus.SCHEDULED,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            recurrence=recurrence,
        )


@strawberry.type(description="One use (or refused use) of a lockbox, as the lockbox recorded it.")
class AccessEvent(Node):
    lockbox_pk: strawberry.Private[int]
    listing_pk: strawberry.Private[int | None]
    grant_pk: strawberry.Private[int | None]
    actor_pk: strawberry.Private[int | None]
    occurred_at: datetime
    method: AccessMethod
    outcome: AccessOutcome
    actor_name: str = strawberry.field(
        description="The person's name at the time; kept after the account is deleted."
    )

    @strawberry.field
    async def lockbox(self, info: Info) -> Annotated[Lockbox, strawberry.lazy("schema.listings")]:
        from schema.listings import Lockbox

        row = await info.context.loaders.batched(rows.lockboxes).load(self.lockbox_pk)
        return Lockbox.from_model(row, via_listing_pk=self.listing_pk)  # type: ignore[arg-type]

    @strawberry.field
    async def listing(
        self, info: Info
    ) -> Annotated[Listing, strawberry.lazy("schema.listings")] | None:
        from schema.listings import Listing

        listing_pk = self.listing_pk
        row = (
            await info.context.loaders.batched(rows.listings).load(listing_pk)
            if listing_pk
            else None
        )
        return Listing.from_model(row) if row else None

    @strawberry.field
    async def grant(self, info: Info) -> Grant | None:
        grant_pk = self.grant_pk
        loaders = info.context.loaders
        row = await loaders.batched(rows.grants).load(grant_pk) if grant_pk else None
        # The event may be the reader's (their lockbox's) while the grant is someone else's:
        # it reads as null then, as Query.node would answer for it.
        row = await visibility.visible_grant(
            row, info.context.account, loaders.batched(rows.listings).load
        )
        return Grant.from_model(row) if row else None

    @strawberry.field(description="Null once the account is deleted.")
    async def actor(
        self, info: Info
    ) -> Annotated[Account, strawberry.lazy("schema.accounts")] | None:
        from schema.accounts import account_seen_by

        actor_pk = self.actor_pk
        row = await info.context.loaders.batched(rows.accounts).load(actor_pk) if actor_pk else None
        row = visibility.still_exists(row)
        return account_seen_by(row, info) if row else None

    @classmethod
    def from_model(cls, row: AccessEventModel) -> AccessEvent:
        return cls(
            id=strawberry.ID(to_global_id("AccessEvent", row.id)),
            lockbox_pk=row.lockbox_id,  # type: ignore[attr-defined]
            listing_pk=row.listing_id,  # type: ignore[attr-defined]
            grant_pk=row.grant_id,  # type: ignore[attr-defined]
            actor_pk=row.actor_id,  # type: ignore[attr-defined]
            occurred_at=row.occurred_at,
            method=row.method,
            outcome=row.outcome,
            actor_name=row.actor_name,
        )


@strawberry.type
class OneDayCode:
    code: str
    lockbox_row: strawberry.Private[object]
    valid_on: date = strawberry.field(
        description="The day, in the lockbox region's time zone, on which the code opens "
        "the lockbox."
    )
    valid_from: datetime
    valid_until: datetime
    issued_to: str | None

    @strawberry.field
    def lockbox(self) -> Annotated[Lockbox, strawberry.lazy("schema.listings")]:
        from schema.listings import Lockbox

        return Lockbox.from_model(self.lockbox_row)  # type: ignore[arg-type]


@strawberry.type
class GrantConnection(Connection[Grant]):
    pass


@strawberry.type
class AccessEventConnection(Connection[AccessEvent]):
    pass


def _statuses(status: list[GrantStatus] | None) -> tuple[str, ...] | None:
    return tuple(sorted({s.value for s in status})) if status else None


def _grants_by_listing(
    info: Info, limit: int, before_id: int | None, statuses: tuple[str, ...] | None
) -> DataLoader[int, list[GrantModel]]:
    """All requested listings' grant pages in one query, sliced per listing here."""

    async def load(listing_ids: list[int]) -> Sequence[list[GrantModel]]:
        rows = await grant_ops.grants_of_listings(listing_ids, before_id, statuses)
        pages: dict[int, list[GrantModel]] = defaultdict(list)
        for row in rows:
            page = pages[row.listing_id]  # type: ignore[attr-defined]
            if len(page) < limit:
                page.append(row)
        return [pages[i] for i in listing_ids]

    key = ("grants_by_listing", limit, before_id, statuses)
    return info.context.loaders.named(key, lambda: DataLoader(load_fn=load))


def _grant_count_by_listing(info: Info, statuses: tuple[str, ...] | None) -> DataLoader[int, int]:
    async def load(listing_ids: list[int]) -> Sequence[int]:
        counts = await grant_ops.count_grants_of_listings(listing_ids, statuses)
        return [counts.get(i, 0) for i in listing_ids]

    key = ("grant_count_by_listing", statuses)
    return info.context.loaders.named(key, lambda: DataLoader(load_fn=load))


def _grant_rows_to_connection(
    rows: Sequence[GrantModel],
    limit: int,
    after: str | None,
    counter: Callable[[], Awaitable[int]],
) -> GrantConnection:
    return build_connection(
        GrantConnection,
        [Grant.from_model(r) for r in rows],
        [r.id for r in rows],
        limit,
        after,
        counter,
    )


async def listing_grants(
    info: Info,
    listing_pk: int,
    agent_pk: int,
    first: int | None,
    after: str | None,
    status: list[GrantStatus] | None,
) -> GrantConnection:
    """The listing's access history: its agent's alone, never a grantee's view of others."""
    _only_self(info, agent_pk)
    limit = check_first(first)
    statuses = _statuses(status)
    rows = await _grants_by_listing(info, limit + 1, decode_cursor(after), statuses).load(
        listing_pk
    )
    counts = _grant_count_by_listing(info, statuses)
    return _grant_rows_to_connection(rows, limit, after, lambda: counts.load(listing_pk))


async def contractor_grants(
    info: Info,
    account_pk: int,
    first: int | None,
    after: str | None,
    status: list[GrantStatus] | None,
) -> GrantConnection:
    _only_self(info, account_pk)
    limit = check_first(first)
    statuses = _statuses(status)
    rows = await grant_ops.contractor_grants(account_pk, limit + 1, decode_cursor(after), statuses)
    return _grant_rows_to_connection(
        rows, limit, after, lambda: grant_ops.count_contractor_grants(account_pk, statuses)
    )


def _only_self(info: Info, account_pk: int) -> None:
    """A listing's history and a contractor's grants are their account's alone."""
    account = info.context.account
    if not visibility.reads_own(account_pk, account.id if account else None):
        raise forbidden()


def encode_event_cursor(row: AccessEventModel) -> str:
    micros = int(row.occurred_at.timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"e:{micros}:{row.id}".encode()).decode()


def decode_event_cursor(cursor: str | None) -> Position | None:
    """Access events sort by when they happened, which is not the order they arrived in."""
    if cursor is None:
        return None
    try:
        prefix, micros, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        pk = pk_of(event_id)
        if prefix != "e" or pk is None:
            raise ValueError(cursor)
        at = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=int(micros))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise bad_argument("The cursor is not valid.") from None
    return at, pk


def _event_connection(
    rows: Sequence[AccessEventModel],
    limit: int,
    after: str | None,
    counter: Callable[[], Awaitable[int]],
) -> AccessEventConnection:
    shown = rows[:limit]
    edges = [Edge(cursor=encode_event_cursor(r), node=AccessEvent.from_model(r)) for r in shown]
    page = PageInfo(
        has_next_page=len(rows) > limit,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return AccessEventConnection(edges=edges, page_info=page, counter=counter)


def _events_by_listing(
    info: Info, limit: int, position: Position | None
) -> DataLoader[int, list[AccessEventModel]]:
    async def load(listing_ids: list[int]) -> Sequence[list[AccessEventModel]]:
        pages: dict[int, list[AccessEventModel]] = defaultdict(list)
        for row in await log_ops.events_of_listings(listing_ids, position):
            page = pages[row.listing_id]  # type: ignore[attr-defined]
            if len(page) < limit:
                page.append(row)
        return [pages[i] for i in listing_ids]

    key = ("events_by_listing", limit, position)
    return info.context.loaders.named(key, lambda: DataLoader(load_fn=load))


def _event_count_by_listing(info: Info) -> DataLoader[int, int]:
    async def load(listing_ids: list[int]) -> Sequence[int]:
        counts = await log_ops.count_events_of_listings(listing_ids)
        return [counts.get(i, 0) for i in listing_ids]

    return info.context.loaders.named("event_count_by_listing", lambda: DataLoader(load_fn=load))


def _events_by_grant(info: Info, reader: AccountModel) -> DataLoader[int, list[AccessEventModel]]:
    """A grant's uses the reader may see: all of them for its listing's agent, only their
    own for a grantee (a grant's history is the agent's record, not the grantee's)."""

    async def load(grant_ids: list[int]) -> Sequence[list[AccessEventModel]]:
        found: dict[int, list[AccessEventModel]] = defaultdict(list)
        for row in await log_ops.events_of_grants(grant_ids, reader):
            found[row.grant_id].append(row)  # type: ignore[attr-defined]
        return [found[i] for i in grant_ids]

    return info.context.loaders.named("events_by_grant", lambda: DataLoader(load_fn=load))


async def listing_access_events(
    info: Info, listing_pk: int, agent_pk: int, first: int | None, after: str | None
) -> AccessEventConnection:
    _only_self(info, agent_pk)
    limit = check_first(first)
    position = decode_event_cursor(after)
    rows = await _events_by_listing(info, limit + 1, position).load(listing_pk)
    counts = _event_count_by_listing(info)
    return _event_connection(rows, limit, after, lambda: counts.load(listing_pk))


MAX_LOG_WINDOW = timedelta(days=366)


async def access_log_connection(
    info: Info, start: datetime, end: datetime, first: int | None, after: str | None
) -> AccessEventConnection:
    account = info.context.require_account()
    if start.tzinfo is None or end.tzinfo is None:
        raise bad_argument("from and to need a UTC offset.")
    if end <= start:
        raise bad_argument("to must be later than from.")
    if end - start > MAX_LOG_WINDOW:
        raise bad_argument("The Access Log shows at most 366 days at a time.")
    limit = check_first(first)
    rows = await log_ops.access_log(account, start, end, limit + 1, decode_event_cursor(after))
    return _event_connection(
        rows, limit, after, lambda: log_ops.count_access_log(account, start, end)
    )
