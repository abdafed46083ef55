"""reportLockboxEvents: access records phones bring back from lockboxes, checked and stored."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from ble.outcomes import AccessOutcome as RecordOutcome
from ble.records import MAX_UPLOAD, AccessRecord, InvalidRecord, verify_record
from ble.secret import InvalidSecret
from ble.serials import normalize_serial, same_serial
from core.errors import DomainError
from core.ids import global_pk
from models.access import AccessEvent
from models.accounts import Account
from models.enums import AccessMethod, AccessOutcome, MessageKind
from models.grants import Grant
from models.listings import Listing, Lockbox
from notify import outbox
from resolvers.lockboxes import MAX_SERIAL
from resolvers.notifications import post_message

# One upload is what a lockbox keeps between visits; far more means something is wrong.
MAX_RECORDS = MAX_UPLOAD
_MAX_SEQ = 2**31 - 1  # the column is a 32-bit integer
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)
_ATTEMPTS = 3


@dataclass(frozen=True)
class Report:
    accepted: int
    duplicates: int
    lockbox_serial: str
    # Every seq of the upload now on the server, new or already there: what a receipt names.
    stored: frozenset[int] = frozenset()


async def report_lockbox_events(serial: str, tokens: Sequence[str]) -> Report:
    """Store the records a lockbox signed. Trusted by their HMAC, whoever uploads them."""
    if len(tokens) > MAX_RECORDS:
        raise DomainError(
            "INVALID_INPUT",
            f"Upload at most {MAX_RECORDS} records at a time.",
            ["input", "records"],
        )
    lockbox = await _lockbox(serial)
    records = _verified(lockbox, tokens)
    for attempt in range(_ATTEMPTS):
        try:
            report = await _store(lockbox, records)
        except IntegrityError:
            # Another phone uploaded some of the same records meanwhile: they are now
            # duplicates, which the next attempt sees and skips.
            if attempt == _ATTEMPTS - 1:
                raise
            continue
        outbox.wake()
        return report
    raise AssertionError("unreachable")


async def _lockbox(serial: str) -> Lockbox:
    lockbox = None
    serial = normalize_serial(serial)
    # Longer than the column: no lockbox has it (and the ORM refuses to look it up).
    if serial and "\x00" not in serial and len(serial) <= MAX_SERIAL:
        lockbox = await Lockbox.get_or_none(serial_number=serial).select_related("region")
    if lockbox is None:
        raise DomainError(
            "NOT_FOUND", "No lockbox has this serial number.", ["input", "lockboxSerial"]
        )
    return lockbox


def _verified(lockbox: Lockbox, tokens: Sequence[str]) -> list[AccessRecord]:
    """Every record checked before anything is written: one bad record refuses the upload."""
    records = []
    for index, token in enumerate(tokens):
        try:
            record = verify_record(token, lockbox.secret)
        except (InvalidRecord, InvalidSecret):
            record = None
        if record is None or not _plausible(record, lockbox):
            raise DomainError(
                "INVALID_RECORD",
                f"Record {index + 1} was not signed by lockbox {lockbox.serial_number}; "
                "nothing was stored.",
                ["input", "records", str(index)],
            )
        records.append(record)
    return records


def _plausible(record: AccessRecord, lockbox: Lockbox) -> bool:
    in_range = record.seq <= _MAX_SEQ and 0 <= record.at < _LATEST.timestamp()
    return same_serial(record.serial, lockbox.serial_number) and in_range


@dataclass(frozen=True)
class _Filing:
    """Where a record goes: the listing it happened at, and the agent whose record it is."""

    listing: Listing | None
    agent_id: int | None


_NOWHERE = _Filing(None, None)


async def _store(lockbox: Lockbox, records: list[AccessRecord]) -> Report:
    fresh, duplicates = await _new_records(lockbox, records)
    grants = await _grants(lockbox, fresh)
    listings = await _listings(lockbox, grants.values()) if fresh else {}
    actors = await _actors(fresh)
    filings = {record.seq: _filing(lockbox, record, grants, listings) for record in fresh}
    async with in_transaction():
        for record in fresh:
            grant = grants.get(_pk(record.jti, "Grant") or 0)
            actor = actors.get(_pk(record.sub, "Agent", "Contractor") or 0)
            listing = filings[record.seq].listing
            await AccessEvent.create(
                lockbox_id=lockbox.id,
                seq=record.seq,
                listing_id=listing.id if listing else None,
                grant_id=grant.id if grant else None,
                actor_id=actor.id if actor else None,
                actor_name=actor.full_name if actor else "",
                method=AccessMethod(record.method.value),
                outcome=AccessOutcome(record.outcome.value),
                occurred_at=_time(record),
            )
        opened = [record for record in fresh if record.outcome is RecordOutcome.OPENED]
        if opened:
            await _note_openings(lockbox, opened, filings, grants, actors)
    return Report(
        accepted=len(fresh),
        duplicates=duplicates,
        lockbox_serial=lockbox.serial_number,
        stored=frozenset(record.seq for record in records),
    )


def _filing(
    lockbox: Lockbox,
    record: AccessRecord,
    grants: dict[int, Grant],
    listings: dict[int, Listing],
) -> _Filing:
    """A record may arrive long after it was made, the lockbox since moved to another listing
    or agent: it belongs where the lockbox was at the record's time, never where it is now."""
    grant = grants.get(_pk(record.jti, "Grant") or 0)
    if grant is not None:
        listing = listings.get(grant.listing_id)  # type: ignore[attr-defined]
        return _Filing(listing, grant.granted_by_id)  # type: ignore[attr-defined]
    # No grant (an agent's key, a One Day Code, a forged credential): only the lockbox's
    # present holder and listing are known, and only since when they began.
    at = _time(record)
    listing = listings.get(lockbox.listing_id or 0)  # type: ignore[attr-defined]
    if listing is not None and _began_by(lockbox.listed_at, at):
        return _Filing(listing, listing.agent_id)  # type: ignore[attr-defined]
    holder = lockbox.assigned_to_id  # type: ignore[attr-defined]
    if holder is not None and _began_by(lockbox.assigned_at, at):
        return _Filing(None, holder)
    return _NOWHERE  # before the present holder: whose it was is not known, so no one's


def _began_by(since: datetime | None, at: datetime) -> bool:
    # Records count whole seconds: one made in the second a stay began may be from before.
    return since is not None and since <= at


async def _listings(lockbox: Lockbox, grants: Iterable[Grant]) -> dict[int, Listing]:
    """The lockbox's present listing and those of the records' grants."""
    ids = {grant.listing_id for grant in grants}  # type: ignore[attr-defined]
    if lockbox.listing_id:  # type: ignore[attr-defined]
        ids.add(lockbox.listing_id)  # type: ignore[attr-defined]
    rows = await Listing.filter(id__in=ids) if ids else []
    return {row.id: row for row in rows}


async def _new_records(
    lockbox: Lockbox, records: list[AccessRecord]
) -> tuple[list[AccessRecord], int]:
    seqs = {record.seq for record in records}
    rows = await AccessEvent.filter(lockbox_id=lockbox.id, seq__in=seqs).values_list(
        "seq", flat=True
    )
    known = {cast(int, seq) for seq in rows}
    fresh: dict[int, AccessRecord] = {}
    for record in records:
        if record.seq not in known and record.seq not in fresh:
            fresh[record.seq] = record
    return sorted(fresh.values(), key=lambda r: r.seq), len(records) - len(fresh)


async def _grants(lockbox: Lockbox, records: Iterable[AccessRecord]) -> dict[int, Grant]:
    ids = {pk for record in records if (pk := _pk(record.jti, "Grant"))}
    if not ids:
        return {}
    # Only a grant on this very lockbox: a record names the grant its credential carried.
    rows = await Grant.filter(id__in=ids, lockbox_id=lockbox.id)
    return {row.id: row for row in rows}


async def _actors(records: Iterable[AccessRecord]) -> dict[int, Account]:
    ids = {pk for record in records if (pk := _pk(record.sub, "Agent", "Contractor"))}
    if not ids:
        return {}
    rows = await Account.filter(id__in=ids, deleted_at__isnull=True)
    return {row.id: row for row in rows}


async def _note_openings(
    lockbox: Lockbox,
    opened: list[AccessRecord],
    filings: dict[int, _Filing],
    grants: dict[int, Grant],
    actors: dict[int, Account],
) -> None:
    # The last access its present holder sees: only openings since they took it (one from
    # before is another agent's). Conditional, so an older upload never moves it back.
    theirs = [_time(r) for r in opened if _began_by(lockbox.assigned_at, _time(r))]
    if theirs:
        latest = max(theirs)
        await Lockbox.filter(
            Q(last_access_at__isnull=True) | Q(last_access_at__lt=latest), id=lockbox.id
        ).update(last_access_at=latest)
    zone = ZoneInfo(lockbox.region.time_zone) if lockbox.region else UTC
    for record in opened:
        filing = filings[record.seq]
        recipient = filing.agent_id
        actor = actors.get(_pk(record.sub, "Agent", "Contractor") or 0)
        if recipient is None or (actor is not None and actor.id == recipient):
            continue  # no one known to tell, or the agent's own visit
        place = _place(lockbox, filing.listing)
        who = actor.full_name if actor and actor.full_name else "Someone"
        grant = grants.get(_pk(record.jti, "Grant") or 0)
        when = _time(record).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        await post_message(
            recipient,
            MessageKind.ACCESS_USED,
            f"Access used: {place}",
            f"{who} opened the lockbox at {place} on {when}.",
            grant_id=grant.id if grant else None,
        )


def _place(lockbox: Lockbox, listing: Listing | None) -> str:
    if listing is None:
        return f"lockbox {lockbox.serial_number}"
    return f"{listing.line1}, {listing.city}"


def _time(record: AccessRecord) -> datetime:
    return datetime.fromtimestamp(record.at, UTC)


def _pk(global_id: str | None, *type_names: str) -> int | None:
    return global_pk(global_id, type_names) if global_id else None
