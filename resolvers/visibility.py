"""Who may read what of another account's data reached through a field (README: Visibility).

Objects are found from the reader's own rows (their grants, listings, lockboxes, access
events, messages); what those lead to is someone else's. Of another account a reader sees
who they deal with, by name and trade, as the invitation and the access history name them;
its contact details, Key ID, status and belongings stay its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from models.accounts import Account
from models.grants import Grant
from models.listings import Listing


def reads_own(account_pk: int, reader_pk: int | None) -> bool:
    """The fields only an account itself reads (email, phone, status, Key ID, linked
    accounts, whether its email is proven): true for its owner alone."""
    return reader_pk is not None and reader_pk == account_pk


def still_exists(row: Account | None) -> Account | None:
    """A deleted account is no longer anyone's counterpart: the access history keeps its
    name as `actorName`, nothing resolves to it."""
    return row if row is not None and row.deleted_at is None else None


def grant_is_between(grant: Grant, reader: Account) -> bool:
    """The reader granted it or holds it: no query needed."""
    reader_pk = reader.id
    return reader_pk in (grant.granted_by_id, grant.grantee_id)  # type: ignore[attr-defined]


def grant_is_visible(grant: Grant, reader: Account | None, listing: Listing | None) -> bool:
    """A grant its agent made, its grantee holds, or that is on the reader's listing (the
    listing's access history); `listing` is the grant's."""
    if reader is None:
        return False
    on_own_listing = listing is not None and listing.agent_id == reader.id  # type: ignore[attr-defined]
    return grant_is_between(grant, reader) or on_own_listing


async def visible_grant(
    grant: Grant | None,
    reader: Account | None,
    listing_of: Callable[[int], Awaitable[Listing | None]],
) -> Grant | None:
    """The grant if the reader may see it, else None: one that is not (or no longer) theirs
    reads as a missing one. `listing_of` (the caller's DataLoader, so a page of messages
    costs one statement) is asked only when the grant is not between the reader and another."""
    if grant is None or reader is None:
        return None
    listing = None
    if not grant_is_between(grant, reader):
        listing = await listing_of(grant.listing_id)  # type: ignore[attr-defined]
    return grant if grant_is_visible(grant, reader, listing) else None


@dataclass(frozen=True)
class LockboxSight:
    """What a reader sees of a lockbox's present: where it is (listing, since when, region,
    holder) and its last use."""

    place: bool
    uses: bool


async def lockbox_sight(
    reader_pk: int | None,
    holder_pk: int | None,
    listing_pk: int | None,
    via_listing_pk: int | None,
    agent_of: Callable[[int], Awaitable[int | None]],
) -> LockboxSight:
    """The lockbox's holder, and the agent of the listing it is on, see all of it. Whoever
    reached it through a record on a listing (their grant, an access event, a code issued)
    sees where it is only while it is still on that listing, and never its uses: a grant
    covers one listing's lockbox for a while, not where the lockbox goes next, who takes it
    or who opens it since. `via_listing_pk` is that record's listing; `agent_of` (the
    caller's DataLoader) is asked only when the reader may be that listing's agent."""
    if reader_pk is None:
        return LockboxSight(place=False, uses=False)
    if reader_pk == holder_pk:
        return LockboxSight(place=True, uses=True)
    if listing_pk is None or listing_pk != via_listing_pk:
        return LockboxSight(place=False, uses=False)
    listing_agent = await agent_of(listing_pk)
    return LockboxSight(place=True, uses=reader_pk == listing_agent)
