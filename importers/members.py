"""`keybin import members`: the association roster (RESO Member JSON) as agent accounts."""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from importers.report import ImportReport, RowError
from importers.sources import BATCH_SIZE, json_object, optional, required, reso_values
from models.accounts import Account, AccountEvent
from models.enums import AccountEventKind, AccountKind, AccountStatus
from resolvers.errors import DomainError
from resolvers.phones import normalize_phone

STATUSES = {
    "active": AccountStatus.ACTIVE,
    "inactive": AccountStatus.INACTIVE,
    "suspended": AccountStatus.SUSPENDED,
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# What a re-import may change; everything else (Key ID, password, PIN) is the agent's own.
ROSTER_FIELDS = ("first_name", "last_name", "email", "phone", "status")
# A batch whose insert collides with a concurrent writer is re-planned this many times.
ATTEMPTS = 3

Key = tuple[str, str]  # (association, MLS id): who an agent is across imports


@dataclass
class Member:
    index: int
    association: str
    mls_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    status: AccountStatus

    @property
    def key(self) -> Key:
        return (self.association, self.mls_id)

    def roster(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ROSTER_FIELDS}


def parse_member(index: int, value: Any, report: ImportReport) -> Member:
    row = json_object(value)
    email = optional(row, "MemberEmail", 254)
    if email is not None and not _EMAIL.fullmatch(email):
        report.warn(index, f"MemberEmail {email!r} is not an email address: left empty")
        email = None
    raw_phone = optional(row, "MemberMobilePhone", 32)
    phone = None
    if raw_phone is not None:
        try:
            phone = normalize_phone(raw_phone)
        except DomainError:
            report.warn(index, f"MemberMobilePhone {raw_phone!r} is not a phone number: left empty")
    raw_status = optional(row, "MemberStatus", 32)
    return Member(
        index=index,
        association=optional(row, "OriginatingSystemName", 128) or "",
        mls_id=required(row, "MemberMlsId", 64),
        first_name=required(row, "MemberFirstName", 100),
        last_name=required(row, "MemberLastName", 100),
        email=email.lower() if email else None,
        phone=phone,
        status=STATUSES.get((raw_status or "").lower(), AccountStatus.INACTIVE),
    )


async def import_members(path: Path, report: ImportReport) -> ImportReport:
    """Create or update one agent per roster row; new agents get a Key ID."""
    report.position = "index"
    values = reso_values(path)
    progress = report.progress("members", len(values))
    for start in range(0, len(values), BATCH_SIZE):
        members: dict[Key, Member] = {}
        repeats = 0
        for index in range(start, min(start + BATCH_SIZE, len(values))):
            try:
                member = parse_member(index, values[index], report)
            except RowError as error:
                report.skip(index, str(error))
                continue
            # The same agent twice in one batch: the later row wins, as a re-import would.
            repeats += member.key in members
            members[member.key] = member
        created, updated = await _write(members, report)
        report.created += created
        report.updated += updated + repeats
        progress.update(min(start + BATCH_SIZE, len(values)))
    progress.finish(len(values))
    return report


async def _write(members: Mapping[Key, Member], report: ImportReport) -> tuple[int, int]:
    for attempt in range(1, ATTEMPTS + 1):
        left_alone: list[Member] = []
        try:
            async with in_transaction():
                created, updated = await _upsert(members, left_alone)
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise
            continue
        for member in left_alone:
            report.warn(member.index, f"agent {member.mls_id} deleted their account: left alone")
        return created, updated
    raise AssertionError("unreachable")


async def _upsert(members: Mapping[Key, Member], left_alone: list[Member]) -> tuple[int, int]:
    """Write one batch; returns (created, updated) and lists rows it would not apply."""
    if not members:
        return 0, 0
    existing = {
        (account.association, account.mls_id or ""): account
        for account in await Account.filter(
            kind=AccountKind.AGENT,
            association__in={key[0] for key in members},
            mls_id__in={key[1] for key in members},
        )
    }
    new = [member for key, member in members.items() if key not in existing]
    changed: list[Account] = []
    events: list[AccountEvent] = []
    for key, member in members.items():
        account = existing.get(key)
        if account is None:
            continue
        if account.deleted_at is not None:
            # A deleted account stays wiped: the roster must not bring its data back.
            left_alone.append(member)
            continue
        differences = [name for name, value in member.roster().items()
                       if getattr(account, name) != value]
        if differences:
            account.update_from_dict(member.roster())
            changed.append(account)
            events.append(_event(account.id, "roster update: " + ", ".join(differences)))
    if changed:
        await Account.bulk_update(changed, fields=list(ROSTER_FIELDS))
    if new:
        key_ids = await _new_key_ids(len(new))
        await Account.bulk_create(
            [
                Account(kind=AccountKind.AGENT, key_id=key_id, association=member.association,
                        mls_id=member.mls_id, **member.roster())
                for member, key_id in zip(new, key_ids, strict=True)
            ]
        )
        # bulk_create does not hand back primary keys: read them by the unique Key IDs.
        for account_id, association in await Account.filter(key_id__in=key_ids).values_list(
            "id", "association"
        ):
            events.append(_event(account_id, f"imported from the {association or 'MLS'} roster"))
    if events:
        await AccountEvent.bulk_create(events)
    return len(new), len(members) - len(new) - len(left_alone)


def _event(account_id: int, detail: str) -> AccountEvent:
    # The same entry resolvers.events.record writes, made in bulk for large rosters.
    return AccountEvent(account_id=account_id, kind=AccountEventKind.IMPORTED.value,
                        detail=detail[:500])


async def _new_key_ids(count: int) -> list[str]:
    """Unique random 9-digit Key IDs (no leading zero), drawn again where one is taken."""
    chosen: set[str] = set()
    while len(chosen) < count:
        candidates = {new_key_id() for _ in range(count - len(chosen))} - chosen
        taken = await _taken(candidates)
        chosen |= candidates - taken
    return sorted(chosen)


async def _taken(key_ids: Collection[str]) -> set[str]:
    return set(await Account.filter(key_id__in=key_ids).values_list("key_id", flat=True))


def new_key_id() -> str:
    return str(100_000_000 + secrets.randbelow(900_000_000))
