"""Listings: an agent's own portfolio, searched, paged and added to by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from core.errors import DomainError, Forbidden, invalid_input
from core.text import is_one_line
from models.accounts import Account
from models.enums import AccountKind, ListingSource, ListingStatus
from models.listings import Listing, Lockbox, Region
from resolvers.account_status import require_active


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


async def lockboxes_of_listings(listing_ids: Sequence[int]) -> list[Lockbox | None]:
    """Each listing's lockbox (a listing holds at most one) in the order asked, None where
    it has none: a DataLoader's batch, so a page of listings costs one statement."""
    found = {row.listing_id: row for row in await Lockbox.filter(listing_id__in=listing_ids)}  # type: ignore[attr-defined]
    return [found.get(i) for i in listing_ids]


@dataclass(frozen=True)
class AddressFields:
    line1: str
    city: str
    state: str
    postal_code: str
    line2: str | None = None


# Column widths of models.listings.Listing: longer input is refused, never cut.
_LIMITS = {"line1": 200, "line2": 200, "city": 100, "state": 50, "postalCode": 20}


def _clean(value: str | None, limit: int, *field: str, required: bool = True) -> str | None:
    text = (value or "").strip()
    # Addresses are shown and mailed on one line (invitation subjects among them): a line
    # break or other control character there is refused, never stored.
    if not is_one_line(text):
        raise invalid_input("Write this on one line, without control characters.", *field)
    if not text:
        if required:
            raise invalid_input("This field is required.", *field)
        return None
    if len(text) > limit:
        raise invalid_input(f"At most {limit} characters.", *field)
    return text


async def add_listing(
    agent: Account, address: AddressFields, mls_number: str | None, status: ListingStatus
) -> Listing:
    """A listing entered by hand (source MANUAL); imported ones come from `keybin import`."""
    if agent.kind != AccountKind.AGENT:
        raise Forbidden()
    require_active(agent)
    line1 = _clean(address.line1, _LIMITS["line1"], "address", "line1")
    line2 = _clean(address.line2, _LIMITS["line2"], "address", "line2", required=False)
    city = _clean(address.city, _LIMITS["city"], "address", "city")
    state = _clean(address.state, _LIMITS["state"], "address", "state")
    postal = _clean(address.postal_code, _LIMITS["postalCode"], "address", "postalCode")
    mls = _clean(mls_number, 64, "mlsNumber", required=False)
    taken = DomainError(
        "INVALID_INPUT", "A listing with this MLS number exists.", ["input", "mlsNumber"]
    )
    if mls is not None and await Listing.exists(mls_number=mls):
        raise taken
    try:
        return await Listing.create(
            agent_id=agent.id,
            source=ListingSource.MANUAL,
            status=status,
            mls_number=mls,
            association=agent.association,
            line1=line1,
            line2=line2,
            city=city,
            state=state,
            postal_code=postal,
        )
    except IntegrityError:
        raise taken from None  # the same MLS number added concurrently


async def own_listing(agent: Account, listing_pk: int, *field: str) -> Listing:
    listing = await Listing.get_or_none(id=listing_pk, agent_id=agent.id)
    if listing is None:
        raise DomainError("NOT_FOUND", "No such listing.", ["input", *field])
    return listing


def one_line_address(listing: Listing) -> str:
    parts = [listing.line1, listing.line2, listing.city, f"{listing.state} {listing.postal_code}"]
    return ", ".join(p for p in parts if p)


async def regions() -> list[Region]:
    """Every region a listing may be in, by code: anyone signed in may read them."""
    return await Region.all().order_by("code")
