"""My Lockboxes: assigning lockboxes by serial number and putting them on listings."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from ble.serials import normalize_serial
from core import clock
from core.errors import DomainError, Forbidden
from models.accounts import Account
from models.enums import AccountKind
from models.grants import Grant, OneDayCodeIssue
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


async def own_lockbox(agent: Account, lockbox_pk: int, *field: str, lock: bool = False) -> Lockbox:
    """A lockbox the agent holds, or NOT_FOUND. With `lock`, inside a transaction, the row
    stays locked until it ends (see locked)."""
    query = locked() if lock else Lockbox.all()
    lockbox = await query.get_or_none(id=lockbox_pk, assigned_to_id=agent.id)
    if lockbox is None:
        raise DomainError("NOT_FOUND", "No such lockbox among yours.", ["input", *field])
    return lockbox


def locked() -> QuerySet[Lockbox]:
    """Lockbox rows read afresh inside a transaction and held until it ends. A grant, a One
    Day Code, an unassign and a move of one lockbox each check and write under this lock,
    so they run one after the other and each sees what the one before wrote: never a key
    given out on a lockbox that is leaving. PostgreSQL locks the rows (FOR UPDATE); SQLite
    has no row locks and needs none: Tortoise runs every transaction on its one connection,
    one at a time (and SQLite lets one writer in at a time)."""
    return Lockbox.select_for_update()


async def held_lockbox_on(agent: Account, listing: Listing) -> Lockbox:
    """Inside a transaction: the lockbox on the listing, locked, if the agent holds it. A
    listing that moved to this agent (`keybin import listings`) may carry another agent's
    lockbox: that one is theirs to give keys to, not this agent's."""
    lockbox = await locked().get_or_none(listing_id=listing.id)
    if lockbox is None or lockbox.assigned_to_id != agent.id:  # type: ignore[attr-defined]
        raise DomainError(
            "NO_LOCKBOX_ASSIGNED",
            "Put one of your lockboxes on this listing first.",
            ["input", "listingId"],
        )
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


async def refuse_while_keys_are_out(lockbox: Lockbox, *field: str) -> None:
    """LOCKBOX_UNAVAILABLE while someone may be on their way with a key to this lockbox: a
    scheduled or active grant, or a One Day Code whose day has not ended where the lockbox
    is. A code cannot be taken back (the lockbox computes it offline from a secret that never
    changes): moved or handed on, the lockbox would open to it at another house."""
    if await Grant.filter(grant_status.not_over(clock.now()), lockbox_id=lockbox.id).exists():
        raise DomainError(
            "LOCKBOX_UNAVAILABLE",
            "This lockbox has scheduled or active grants: revoke them, or wait until they end.",
            ["input", *field],
        )
    today = clock.now().astimezone(ZoneInfo(await zone_of(lockbox))).date()
    last_day = await _last_code_day(lockbox.id, today)
    if last_day is not None:
        raise DomainError(
            "LOCKBOX_UNAVAILABLE",
            f"A One Day Code for this lockbox opens it on {last_day.isoformat()}: it stays "
            "where it is until that day is over.",
            ["input", *field],
        )


async def _last_code_day(lockbox_id: int, today: date) -> date | None:
    issued = (
        await OneDayCodeIssue.filter(lockbox_id=lockbox_id, valid_on__gte=today)
        .order_by("-valid_on")
        .first()
    )
    return issued.valid_on if issued else None


async def unassign_lockbox(agent: Account, lockbox_pk: int) -> Lockbox:
    """Gives the lockbox back; refused (LOCKBOX_UNAVAILABLE) while keys to it are out."""
    require_agent(agent)
    async with in_transaction():
        lockbox = await own_lockbox(agent, lockbox_pk, "lockboxId", lock=True)
        await refuse_while_keys_are_out(lockbox, "lockboxId")
        await Lockbox.filter(id=lockbox.id).update(
            assigned_to_id=None,
            assigned_at=None,
            listing_id=None,
            listed_at=None,
            on_listing_since=None,
            region_id=None,
            last_access_at=None,  # the next holder's begins with their own first visit
        )
    await lockbox.refresh_from_db()
    return lockbox


async def assign_lockbox_to_listing(
    agent: Account, listing_pk: int, lockbox_pk: int, on_listing_since: date, region_code: str
) -> Lockbox:
    """Puts the lockbox on the listing; a lockbox already there is taken off (one per listing).

    A lockbox with keys out (live grants, One Day Codes to come) stays where it is: moving
    it would carry those keys to another house, or strand them.
    """
    require_agent(agent)
    require_active(agent)
    listing = await own_listing(agent, listing_pk, "listingId")
    lockbox = await own_lockbox(agent, lockbox_pk, "lockboxId")
    region = await Region.get_or_none(code=region_code.strip()) if len(region_code) <= 32 else None
    if region is None:
        raise DomainError("NOT_FOUND", "No such region.", ["input", "regionCode"])
    async with in_transaction():
        # Both rows in one statement, in id order: two moves at once never lock them in
        # opposite orders.
        rows = await locked().filter(Q(id=lockbox.id) | Q(listing_id=listing.id)).order_by("id")
        current = next((r for r in rows if r.id == lockbox.id), None)
        if current is None or current.assigned_to_id != agent.id:  # type: ignore[attr-defined]
            raise DomainError("NOT_FOUND", "No such lockbox among yours.", ["input", "lockboxId"])
        if current.listing_id not in (None, listing.id):  # type: ignore[attr-defined]
            await refuse_while_keys_are_out(current, "lockboxId")
        previous = next((r for r in rows if r.id != lockbox.id), None)
        if previous is not None:
            await refuse_while_keys_are_out(previous, "listingId")
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
