"""Listings and My Lockboxes: queries an agent runs on their own portfolio."""

from __future__ import annotations

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from models.listings import Listing, Lockbox


def _agent_listings(agent_id: int, search: str | None) -> QuerySet[Listing]:
    query = Listing.filter(agent_id=agent_id)
    if search and search.strip():
        term = search.strip()
        query = query.filter(
            Q(line1__icontains=term)
            | Q(city__icontains=term)
            | Q(postal_code__icontains=term)
            | Q(mls_number__icontains=term)
        )
    return query


async def agent_listings(
    agent_id: int, limit: int, before_id: int | None, search: str | None
) -> list[Listing]:
    query = _agent_listings(agent_id, search)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit)


async def count_agent_listings(agent_id: int, search: str | None) -> int:
    return await _agent_listings(agent_id, search).count()


async def agent_lockboxes(agent_id: int, limit: int, after_id: int | None) -> list[Lockbox]:
    query = Lockbox.filter(assigned_to_id=agent_id)
    if after_id is not None:
        query = query.filter(id__lt=after_id)
    return await query.order_by("-id").limit(limit)


async def count_agent_lockboxes(agent_id: int) -> int:
    return await Lockbox.filter(assigned_to_id=agent_id).count()
