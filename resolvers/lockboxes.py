"""My Lockboxes: assigning lockboxes by serial number and putting them on listings."""

from __future__ import annotations

from datetime import date

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from ble.serials import normalize_serial
from core import clock
from core.errors import DomainError, Forbidden
from models.accounts import Account
from models.enums import AccountKind
from models.grants import Grant
from models.listings import Listing, Lockbox, Region
from resolvers import grant_status
from resolvers.account_status import require_active
from resolvers.listings import own_listing

MAX_SERIAL = 32


def require_agent(account: Account) -> None:
    """Lockboxes, listings, grants and codes are an agent's tools: others are refused outright."""
    if account.kind != AccountKind.AGENT:
        raise Forbidden()


def _serial(value: str) -> str:
    return normalize_serial(value)


async def lockbox_by_serial(account: Account, serial_number: str) -> Lockbox | None:
    """A lockbox the agent could assign: unassigned or already theirs; nothing else is shown."""
    if account.kind != AccountKind.AGENT or len(serial_number) > MAX_SERIAL:
        return None
    lockbox = await Lockbox.get_or_none(serial_number=_serial(serial_number))
    if lockbox is None or lockbox.assigned_to_id not in (None, account.id):  # type: ignore[attr-defined]
        return None
    return lockbox


async def zone_of(lockbox: Lockbox) -> str:
    """The IANA zone of the lockbox's region: local dates and weekly hours are judged there."""
    region_code = lockbox.region_id  # type: ignore[attr-defined]
    region = await Region.get_or_none(code=region_code) if region_code else None
    return region.time_zone if region else "UTC"


async def own_lockbox(agent: Account, lockbox_pk: int, *field: str) -> Lockbox:
    lockbox = await Lockbox.get_or_none(id=lockbox_pk, assigned_to_id=agent.id)
    if lockbox is None:
        raise DomainError("NOT_FOUND", "No such lockbox among yours.", ["input", *field])
    return lockbox


async def assign_lockbox(agent: Account, serial_number: str) -> Lockbox:
    require_agent(agent)
    require_active(agent)
    field = ["input", "serialNumber"]
    lockbox = None
    if len(serial_number) <= MAX_SERIAL:
        lockbox = await Lockbox.get_or_none(serial_number=_serial(serial_number))
    if lockbox is None:
        raise DomainError("NOT_FOUND", "No lockbox has this serial number.", field)
    # Conditional update: of two agents claiming the same lockbox at once, one wins.
    await Lockbox.filter(id=lockbox.id, assigned_to_id__isnull=True).update(
        assigned_to_id=agent.id, assigned_at=clock.now()
    )
    await lockbox.refresh_from_db()
    if lockbox.assigned_to_id != agent.id:  # type: ignore[attr-defined]
        raise DomainError(
            "LOCKBOX_UNAVAILABLE", "This lockbox is assigned to another agent.", field
        )
    return lockbox


async def _has_live_grants(lockbox_id: int) -> bool:
    """Scheduled or active grants: someone may be on their way with a key to this lockbox."""
    return await Grant.filter(grant_status.not_over(clock.now()), lockbox_id=lockbox_id).exists()


def _in_use(*field: str) -> DomainError:
    return DomainError(
        "LOCKBOX_UNAVAILABLE",
        "This lockbox has scheduled or active grants: revoke them, or wait until they end.",
        ["input", *field],
    )


async def unassign_lockbox(agent: Account, lockbox_pk: int) -> Lockbox:
    """Gives the lockbox back; refused (LOCKBOX_UNAVAILABLE) while grants on it are live."""
    require_agent(agent)
    lockbox = await own_lockbox(agent, lockbox_pk, "lockboxId")
    if await _has_live_grants(lockbox.id):
        raise _in_use("lockboxId")
    await Lockbox.filter(id=lockbox.id, assigned_to_id=agent.id).update(
        assigned_to_id=None,
        assigned_at=None,
        listing_id=None,
        listed_at=None,
        on_listing_since=None,
        region_id=None,
    )
    await lockbox.refresh_from_db()
    return lockbox


async def assign_lockbox_to_listing(
    agent: Account, listing_pk: int, lockbox_pk: int, on_listing_since: date, region_code: str
) -> Lockbox:
    """Puts the lockbox on the listing; a lockbox already there is taken off (one per listing).

    A lockbox with live grants stays where it is: moving it would carry those grants'
    keys to another house, or strand them.
    """
    require_agent(agent)
    require_active(agent)
    listing = await own_listing(agent, listing_pk, "listingId")
    lockbox = await own_lockbox(agent, lockbox_pk, "lockboxId")
    region = await Region.get_or_none(code=region_code.strip()) if len(region_code) <= 32 else None
    if region is None:
        raise DomainError("NOT_FOUND", "No such region.", ["input", "regionCode"])
    if lockbox.listing_id not in (None, listing.id) and await _has_live_grants(lockbox.id):  # type: ignore[attr-defined]
        raise _in_use("lockboxId")
    previous = await Lockbox.filter(listing_id=listing.id).exclude(id=lockbox.id).first()
    if previous is not None and await _has_live_grants(previous.id):
        raise _in_use("listingId")
    async with in_transaction():
        if previous is not None:
            await Lockbox.filter(id=previous.id).update(
                listing_id=None, on_listing_since=None, listed_at=None
            )
        # A new stay starts when the lockbox moves; a new date or region for the same one not.
        await Lockbox.filter(
            Q(listing_id__isnull=True) | ~Q(listing_id=listing.id), id=lockbox.id
        ).update(listed_at=clock.now())
        await Lockbox.filter(id=lockbox.id).update(
            listing_id=listing.id, on_listing_since=on_listing_since, region_id=region.code
        )
    await lockbox.refresh_from_db()
    return lockbox


async def listing_of(lockbox: Lockbox) -> Listing:
    """The listing a lockbox was just put on, read afresh: assignLockboxToListing answers
    with the listing, not the lockbox."""
    return await Listing.get(id=lockbox.listing_id)  # type: ignore[attr-defined]
