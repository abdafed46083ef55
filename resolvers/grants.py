"""Granting and revoking time-windowed lockbox access, and the access history queries."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from ble.recurrence import InvalidRecurrence, Recurrence
from core import clock
from core.errors import DomainError, invalid_input
from core.security import new_token, token_digest
from models.accounts import Account, Invitation
from models.enums import AccountEventKind, AccountKind, MessageKind
from models.grants import Grant
from models.listings import Listing, Lockbox
from notify import outbox
from resolvers import events, step_up
from resolvers.account_status import require_active
from resolvers.emails import valid_email
from resolvers.grant_status import GrantStatus, in_status, status_filter
from resolvers.listings import one_line_address, own_listing
from resolvers.lockboxes import held_lockbox_on, require_agent, zone_of
from resolvers.notifications import post_message
from resolvers.step_up import Confirmation
from settings import Settings

MAX_KEY = 128
# How far in the past a start may be: the phone's clock and the network's delay.
START_SKEW = timedelta(minutes=5)
# How far ahead a start may be. Until it ends a grant keeps its lockbox on the listing (no
# unassign, no move) and is one more key out: a visit is planned weeks ahead, and a listing
# rarely stays on the market a year. Past it, nothing real is planned, only typos.
MAX_START_AHEAD = timedelta(days=365)


@dataclass(frozen=True)
class RecurrenceSpec:
    """Weekly hours: ISO weekdays (1 = Monday) and HH:MM times in the region's zone."""

    weekdays: list[int]
    daily_start: str
    daily_end: str


@dataclass(frozen=True)
class GrantRequest:
    listing_pk: int
    grantee_email: str
    starts_at: datetime
    ends_at: datetime
    confirmation: Confirmation
    recurrence: RecurrenceSpec | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Granted:
    grant: Grant
    invitation_sent: bool


async def grant_access(settings: Settings, agent: Account, request: GrantRequest) -> Granted:
    """Checks every rule in the contract's order, then writes grant, messages and mail at once."""
    require_agent(agent)
    require_active(agent)
    listing = await own_listing(agent, request.listing_pk, "listingId")
    # Outside any transaction: a wrong PIN is counted even though nothing else changes.
    await step_up.confirm(agent, request.confirmation, step_up.Operation.GRANT_ACCESS)
    key = _idempotency_key(request.idempotency_key)
    if key is not None and (earlier := await _earlier(agent, key)) is not None:
        return earlier
    try:
        async with in_transaction():
            # The lockbox stays locked from this check to the grant's insert: an unassign or a
            # move of it waits, then finds the grant (resolvers/lockboxes.py).
            lockbox = await held_lockbox_on(agent, listing)
            if not lockbox.ble:
                raise DomainError(
                    "LOCKBOX_NOT_BLE",
                    "This lockbox does not take app credentials: give a One Day Code instead.",
                    ["input", "listingId"],
                )
            _check_window(settings, request.starts_at, request.ends_at)
            email = await _check_email(request.grantee_email)
            zone = await zone_of(lockbox)
            rec = _check_recurrence(request.recurrence, zone)
            granted = await _create(
                settings, agent, listing, lockbox, zone, request, email, rec, key
            )
    except IntegrityError:
        # The same key raced in from a second request: the first grant stands.
        if key is not None and (earlier := await _earlier(agent, key)) is not None:
            return earlier
        raise
    outbox.wake()
    return granted


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_KEY or "\x00" in key:
        raise invalid_input(f"An idempotency key is 1-{MAX_KEY} characters.", "idempotencyKey")
    return key


async def _earlier(agent: Account, key: str) -> Granted | None:
    grant = await Grant.get_or_none(granted_by_id=agent.id, idempotency_key=key)
    if grant is None:
        return None
    # A grant still without a grantee went out as an invitation.
    return Granted(grant=grant, invitation_sent=grant.grantee_id is None)  # type: ignore[attr-defined]


def _check_window(settings: Settings, starts_at: datetime, ends_at: datetime) -> None:
    for name, value in (("startsAt", starts_at), ("endsAt", ends_at)):
        if value.tzinfo is None:
            raise invalid_input("Give the time with its UTC offset.", name)
    field = ["input", "endsAt"]
    if ends_at <= starts_at:
        raise DomainError("INVALID_TIME_WINDOW", "The access must end after it starts.", field)
    if ends_at <= clock.now():
        raise DomainError("INVALID_TIME_WINDOW", "The access would already be over.", field)
    if starts_at < clock.now() - START_SKEW:
        # Accepted, it would be ACTIVE at once and never revocable: a typo strands the agent.
        raise DomainError(
            "INVALID_TIME_WINDOW",
            "The access cannot start in the past: choose a start from now on.",
            ["input", "startsAt"],
        )
    if starts_at > clock.now() + MAX_START_AHEAD:
        raise DomainError(
            "INVALID_TIME_WINDOW",
            f"An access starts at most {MAX_START_AHEAD.days} days from now.",
            ["input", "startsAt"],
        )
    if ends_at - starts_at > timedelta(days=settings.max_grant_days):
        raise DomainError(
            "INVALID_TIME_WINDOW",
            f"An access lasts at most {settings.max_grant_days} days.",
            field,
        )


async def _check_email(value: str) -> str:
    email = valid_email(value, "granteeEmail")
    agent_email = await Account.filter(
        email=email, kind=AccountKind.AGENT, deleted_at__isnull=True
    ).exists()
    if agent_email:
        raise DomainError(
            "EMAIL_BELONGS_TO_AGENT",
            "This email belongs to a member agent, who opens lockboxes with their own key.",
            ["input", "granteeEmail"],
        )
    return email


def _check_recurrence(spec: RecurrenceSpec | None, zone: str) -> Recurrence | None:
    if spec is None:
        return None
    if not spec.weekdays:
        raise invalid_input("Pick at least one weekday.", "recurrence", "weekdays")
    days = tuple(sorted(set(spec.weekdays)))
    try:
        Recurrence(tz=zone, days=days, start=spec.daily_start, end="24:00")
    except InvalidRecurrence:
        raise invalid_input("Give the time as HH:MM.", "recurrence", "dailyStart") from None
    try:
        return Recurrence(tz=zone, days=days, start=spec.daily_start, end=spec.daily_end)
    except InvalidRecurrence:
        raise invalid_input(
            "Give the end as HH:MM, later than the start on the same day.", "recurrence", "dailyEnd"
        ) from None


def local_time(value: datetime, zone: str) -> str:
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%a %b} {local.day}, {local:%Y %H:%M %Z}"


async def _create(
    settings: Settings,
    agent: Account,
    listing: Listing,
    lockbox: Lockbox,
    zone: str,
    request: GrantRequest,
    email: str,
    rec: Recurrence | None,
    key: str | None,
) -> Granted:
    """Inside the transaction that holds the lockbox: grant, messages and mail at once."""
    # Only a proven address receives the grant; an unproven claim to it gets an invitation
    # mailed to the address, like anyone else, and a note saying why nothing arrived.
    contractor = await Account.filter(
        email=email, kind=AccountKind.CONTRACTOR, email_verified=True, deleted_at__isnull=True
    ).first()
    address = one_line_address(listing)
    window = _window(request.starts_at, request.ends_at, zone)
    grant = await Grant.create(
        listing_id=listing.id,
        lockbox_id=lockbox.id,
        granted_by_id=agent.id,
        grantee_email=email,
        grantee_id=contractor.id if contractor else None,
        starts_at=request.starts_at,
        ends_at=request.ends_at,
        rec_weekdays=",".join(str(d) for d in rec.days) if rec else None,
        rec_start=rec.start if rec else None,
        rec_end=rec.end if rec else None,
        idempotency_key=key,
    )
    if contractor is not None:
        who = contractor.full_name or "your contractor"
        await _post_granted(contractor.id, agent.full_name, address, window, grant.id)
    else:
        who = "a new contractor (invitation sent)"
        await _invite(settings, agent, grant, address, zone)
        await _tell_unproven_claimant(email)
    await post_message(
        agent.id,
        MessageKind.ACCESS_GRANTED,
        f"Access granted to {who}",
        f"You granted {who} access to the lockbox at {address} {window}.",
        grant.id,
    )
    return Granted(grant=grant, invitation_sent=contractor is None)


def _window(starts_at: datetime, ends_at: datetime, zone: str) -> str:
    return f"from {local_time(starts_at, zone)} to {local_time(ends_at, zone)}"


async def _post_granted(
    grantee_id: int, agent_name: str, address: str, window: str, grant_id: int
) -> None:
    await post_message(
        grantee_id,
        MessageKind.ACCESS_GRANTED,
        f"Access granted: {address}",
        f"{agent_name} granted you access to the lockbox at {address} {window}.",
        grant_id,
    )


async def tell_grantee(grant: Grant, grantee_id: int) -> None:
    """Inside a transaction: the grantee's ACCESS_GRANTED message for a grant made earlier."""
    listing = await Listing.get(id=grant.listing_id)  # type: ignore[attr-defined]
    lockbox = await Lockbox.get(id=grant.lockbox_id)  # type: ignore[attr-defined]
    agent = await Account.get(id=grant.granted_by_id)  # type: ignore[attr-defined]
    window = _window(grant.starts_at, grant.ends_at, await zone_of(lockbox))
    await _post_granted(grantee_id, agent.full_name, one_line_address(listing), window, grant.id)


async def _tell_unproven_claimant(email: str) -> None:
    """An account that claims the address without having proved it learns why nothing came."""
    claimant = await Account.filter(
        email=email, kind=AccountKind.CONTRACTOR, email_verified=False, deleted_at__isnull=True
    ).first()
    if claimant is None:
        return
    await post_message(
        claimant.id,
        MessageKind.ACCOUNT,
        "Confirm your email address to receive access",
        "A listing agent granted access to your email address. It will appear here once you "
        "confirm the address: follow the confirmation link we emailed you, or open the "
        "invitation sent to that address in the app.",
    )


async def _invite(
    settings: Settings, agent: Account, grant: Grant, address: str, zone: str
) -> None:
    """Call inside the grant's transaction: the invitation exists only if the grant does."""
    token = new_token()
    email = grant.grantee_email or ""
    await Invitation.create(
        token_hash=token_digest(token), email=email, invited_by_id=agent.id, grant_id=grant.id
    )
    await outbox.email(
        email,
        "invitation",
        {
            "agent_name": agent.full_name,
            "address": address,
            "starts_at": local_time(grant.starts_at, zone),
            "ends_at": local_time(grant.ends_at, zone),
            # The page this opens is also the link the app opens (universal and app links).
            "link": f"{settings.public_url}/signup?invitation={token}",
            "app_store_url": settings.app_store_url,
            "play_store_url": settings.play_store_url,
        },
    )
    # The invitee has no account yet; the agent's log keeps the fact, not the address.
    await events.record(agent, AccountEventKind.INVITED, "invited a contractor")


async def revoke_access(agent: Account, grant_pk: int) -> Grant:
    """Only before the start: a key must never be taken away mid-visit."""
    require_agent(agent)
    grant = await Grant.get_or_none(id=grant_pk, granted_by_id=agent.id)
    field = ["input", "grantId"]
    if grant is None:
        raise DomainError("NOT_FOUND", "No such grant among yours.", field)
    if grant.revoked_at is not None:
        raise DomainError("GRANT_ALREADY_REVOKED", "This access is already revoked.", field)
    now = clock.now()
    if now >= grant.starts_at:
        raise DomainError(
            "GRANT_ALREADY_STARTED", "This access has started: it runs to its end.", field
        )
    listing = await Listing.get(id=grant.listing_id)  # type: ignore[attr-defined]
    async with in_transaction():
        # Conditional: a concurrent revoke, or the start instant passing, leaves it as it is.
        scheduled = in_status(GrantStatus.SCHEDULED, now)
        revoked = await Grant.filter(scheduled, id=grant.id).update(revoked_at=now)
        if not revoked:
            raise DomainError("GRANT_ALREADY_REVOKED", "This access is already revoked.", field)
        if grant.grantee_id is not None:  # type: ignore[attr-defined]
            address = one_line_address(listing)
            await post_message(
                grant.grantee_id,  # type: ignore[attr-defined]
                MessageKind.ACCESS_REVOKED,
                f"Access revoked: {address}",
                f"{agent.full_name} revoked your access to the lockbox at {address}.",
                grant.id,
            )
    outbox.wake()
    await grant.refresh_from_db()
    return grant


async def grants_of_listings(
    listing_ids: Collection[int], before_id: int | None, statuses: Collection[str] | None
) -> list[Grant]:
    """Every listing's history in one query, newest first; callers slice per listing."""
    query = Grant.filter(listing_id__in=list(listing_ids))
    if (where := status_filter(statuses, clock.now())) is not None:
        query = query.filter(where)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id")


async def count_grants_of_listings(
    listing_ids: Collection[int], statuses: Collection[str] | None
) -> dict[int, int]:
    query = Grant.filter(listing_id__in=list(listing_ids))
    if (where := status_filter(statuses, clock.now())) is not None:
        query = query.filter(where)
    rows = await query.annotate(n=Count("id")).group_by("listing_id").values("listing_id", "n")
    return {int(r["listing_id"]): int(r["n"]) for r in rows}


def _received(account_id: int, statuses: Collection[str] | None) -> Q:
    where = Q(grantee_id=account_id)
    extra = status_filter(statuses, clock.now())
    return where & extra if extra is not None else where


async def contractor_grants(
    account_id: int, limit: int, before_id: int | None, statuses: Collection[str] | None
) -> list[Grant]:
    query = Grant.filter(_received(account_id, statuses))
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(limit)


async def count_contractor_grants(account_id: int, statuses: Collection[str] | None) -> int:
    return await Grant.filter(_received(account_id, statuses)).count()


async def visible_grant(account: Account, grant_pk: int) -> Grant | None:
    """A grant the account made (agent) or received (contractor); None for anything else."""
    owner = (
        Q(granted_by_id=account.id)
        if account.kind == AccountKind.AGENT
        else Q(grantee_id=account.id)
    )
    return await Grant.filter(owner, id=grant_pk).first()
