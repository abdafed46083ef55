"""The Access Log: lockbox uses an agent may see, or a contractor's own, newest first."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from tortoise.expressions import F, Q
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from models.access import AccessEvent
from models.accounts import Account
from models.enums import AccountKind

# A keyset position in a feed sorted by (occurred_at, id), newest first.
Position = tuple[datetime, int]


def _before(position: Position | None) -> Q | None:
    if position is None:
        return None
    at, event_id = position
    return Q(occurred_at__lt=at) | Q(occurred_at=at, id__lt=event_id)


def _page(query: QuerySet[AccessEvent], position: Position | None) -> QuerySet[AccessEvent]:
    if (where := _before(position)) is not None:
        query = query.filter(where)
    return query.order_by("-occurred_at", "-id")


def visible_to(account: Account) -> Q:
    """Agents: uses at their listings, and uses of the lockboxes they hold made off any
    listing since they took them. Contractors: their own. A lockbox changes hands: its uses
    before, at a listing or not, are never the next holder's to see."""
    if account.kind == AccountKind.AGENT:
        off_listing = Q(
            listing_id__isnull=True,
            lockbox__assigned_to_id=account.id,
            occurred_at__gte=F("lockbox__assigned_at"),
        )
        return Q(listing__agent_id=account.id) | off_listing
    return Q(actor_id=account.id)


def _log(account: Account, start: datetime, end: datetime) -> QuerySet[AccessEvent]:
    return AccessEvent.filter(visible_to(account), occurred_at__gte=start, occurred_at__lt=end)


async def access_log(
    account: Account, start: datetime, end: datetime, limit: int, position: Position | None
) -> list[AccessEvent]:
    return await _page(_log(account, start, end), position).limit(limit)


async def count_access_log(account: Account, start: datetime, end: datetime) -> int:
    return await _log(account, start, end).count()


async def visible_event(account: Account, event_pk: int) -> AccessEvent | None:
    return await AccessEvent.filter(visible_to(account), id=event_pk).first()


async def events_of_listings(
    listing_ids: Collection[int], position: Position | None
) -> list[AccessEvent]:
    """Every listing's events in one query, newest first; callers slice per listing."""
    return await _page(AccessEvent.filter(listing_id__in=list(listing_ids)), position)


async def count_events_of_listings(listing_ids: Collection[int]) -> dict[int, int]:
    rows = (
        await AccessEvent.filter(listing_id__in=list(listing_ids))
        .annotate(n=Count("id"))
        .group_by("listing_id")
        .values("listing_id", "n")
    )
    return {int(r["listing_id"]): int(r["n"]) for r in rows}


async def events_of_grants(grant_ids: Collection[int], reader: Account) -> list[AccessEvent]:
    """The grants' uses the reader may see (`visible_to`), newest first."""
    return await AccessEvent.filter(visible_to(reader), grant_id__in=list(grant_ids)).order_by(
        "-occurred_at", "-id"
    )
